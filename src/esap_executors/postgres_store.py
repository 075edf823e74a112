"""The state store on a PostgreSQL server: the Store that a platform's workers share across hosts.

Selected by ESAP_STATE_URL=postgresql://... (stores.open_store). The tables and their migrations
belong to state_schema; opening a store brings an older database up to date. Safe for many
processes on many hosts: job numbers are handed out by one UPDATE of the run's row (its row lock
serializes the allocators), and a state change locks the job's row before it reads the old
state, so a final state is never left whatever other workers do at the same time.

Each thread (and each process after a fork) gets its own connection, in autocommit mode with
explicit transactions. The queries are sql_store's. The password is never part of a message: see redacted_url.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import state_schema
from .errors import BadInput, EsapError
from .sql_store import Connection, JobUpdate, SQLStore
from .states import JobState
from .store import SUBMITTING

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
# Seconds to wait for the server when the URL does not say (libpq waits forever by default).
_CONNECT_TIMEOUT_S = 10


def redacted_url(url: str) -> str:
    """The URL as messages show it: a password, in the user part or as a parameter, is '***'."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        user_part, host_part = netloc.rsplit("@", 1)
        if ":" in user_part:
            user_part = user_part.split(":", 1)[0] + ":***"
        netloc = f"{user_part}@{host_part}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="/*:")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _first_line(error: Exception, secret: str | None) -> str:
    """libpq's message as one line ("connection to server ... failed: FATAL: ..."), no secret."""
    text = " ".join(str(error).split())
    text = text.removeprefix("connection failed: ")
    if secret:
        text = text.replace(secret, "***")
    return text or type(error).__name__


class PostgresStore(SQLStore):
    PLACEHOLDER = "%s"
    ROW_ORDER = "id"  # an identity column (state_schema)
    GREATEST = "GREATEST"
    IN_LIST = "= ANY(?)"
    LOCK_ROWS = " FOR UPDATE"

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise BadInput(
                f"{redacted_url(url)}: a PostgreSQL state store needs psycopg: "
                "pip install 'esap-executors[postgres]'",
                field="ESAP_STATE_URL",
            ) from None
        self._psycopg = psycopg
        self.url = url
        self._password = urlsplit(url).password or dict(parse_qsl(urlsplit(url).query)).get("password")
        self._local = threading.local()
        try:
            state_schema.migrate_postgres(self.connect())
        except state_schema.NewerDatabase as exc:
            raise EsapError(f"{self.describe()}: {exc}") from None
        except psycopg.Error as exc:
            raise BadInput(f"{self.describe()}: {_first_line(exc, self._password)}", field="ESAP_STATE_URL") from None

    def describe(self) -> str:
        return redacted_url(self.url)

    def connect(self) -> psycopg.Connection[Any]:
        """This thread's connection (a new one after a fork or when the old one broke). A connection
        inherited through fork is left alone: psycopg closes a connection only in its own process."""
        db: psycopg.Connection[Any] | None = getattr(self._local, "db", None)
        if db is None or db.closed or db.broken or getattr(self._local, "pid", None) != os.getpid():
            db = self._open()
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def _open(self) -> psycopg.Connection[Any]:
        psycopg = self._psycopg
        try:
            given = psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as exc:
            raise BadInput(f"{self.describe()}: {_first_line(exc, self._password)}", field="ESAP_STATE_URL") from None
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in given:
            options["connect_timeout"] = _CONNECT_TIMEOUT_S
        if "application_name" not in given:
            options["application_name"] = "esap"
        try:
            return psycopg.connect(self.url, **options)
        except psycopg.Error as exc:
            raise BadInput(
                f"{self.describe()}: cannot connect: {_first_line(exc, self._password)}", field="ESAP_STATE_URL"
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        db = self.connect()
        with db.transaction():
            yield db

    def list_param(self, values: Sequence[str]) -> object:
        return list(values)

    def prefix_condition(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        return "starts_with(job_id, ?)", (prefix,)  # no pattern characters, whatever the collation

    def insert_rows(self, db: Connection, table: str, columns: str, rows: Iterable[Sequence[object]]) -> None:
        server = cast("psycopg.Connection[Any]", db)
        with server.cursor() as cur, cur.copy(f"COPY {table}({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def set_native_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        if not pairs:
            return
        self.connect().execute(
            "UPDATE jobs AS j SET native_id=c.native_id, state=CASE WHEN j.state=%s THEN %s ELSE j.state END, "
            "updated=%s FROM unnest(%s::text[], %s::text[]) AS c(job_id, native_id) WHERE j.job_id = c.job_id",
            (SUBMITTING, JobState.QUEUED.value, time.time(), [p[0] for p in pairs], [p[1] for p in pairs]),
        )

    def update_jobs(self, db: Connection, updates: list[JobUpdate]) -> None:
        if len({update[-1] for update in updates}) < len(updates):  # several changes of a job: in order
            super().update_jobs(db, updates)
            return
        db.execute(  # one statement
            "UPDATE jobs AS j SET state=c.state, exit_code=COALESCE(c.exit_code, j.exit_code), "
            "signal=COALESCE(c.signal, j.signal), reason=COALESCE(c.reason, j.reason), "
            "cause=COALESCE(c.cause, j.cause), node=COALESCE(c.node, j.node), updated=c.updated "
            "FROM unnest(%s::text[], %s::int[], %s::int[], %s::text[], %s::text[], %s::text[], %s::float8[], "
            "%s::text[]) AS c(state, exit_code, signal, reason, cause, node, updated, job_id) "
            "WHERE j.job_id = c.job_id",
            [list(column) for column in zip(*updates, strict=True)],
        )
