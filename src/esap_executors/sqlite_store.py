"""The state store in one SQLite file (the user's state directory): the Store for one machine.

Safe for several processes at once: WAL journal, short transactions that take the write lock
when they begin (BEGIN IMMEDIATE). The queries are sql_store's; the tables and their migrations
belong to state_schema, and opening a store brings an older file up to date.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from . import state_schema
from .errors import EsapError
from .ids import prefix_upper_bound
from .sql_store import SQLStore
from .sqlite_wal import connect_wal
from .store import Store


def open_store(path: str | Path | None = None) -> Store:
    """The store of this process (stores.open_store: $ESAP_STATE_URL, else state.db in the state directory)."""
    from .stores import open_store as open_configured_store

    return open_configured_store(path)


class SQLiteStore(SQLStore):
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        try:
            state_schema.migrate(self.connect())
        except state_schema.NewerDatabase as exc:
            raise EsapError(f"{self.path}: {exc}") from None

    def describe(self) -> str:
        return str(self.path)

    def connect(self) -> sqlite3.Connection:
        """A connection for this thread (WAL, waits up to 30 s for a lock)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = connect_wal(str(self.path), timeout=30)
            self._local.db = db
        return db

    def transaction(self) -> _Transaction:
        return _Transaction(self.connect())

    def list_param(self, values: Sequence[str]) -> object:
        return json.dumps(list(values))

    def prefix_condition(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        return "job_id >= ? AND job_id < ?", (prefix, prefix_upper_bound(prefix))


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
