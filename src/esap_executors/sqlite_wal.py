"""Open a SQLite database in WAL mode, safely when several processes open a new file at once."""

from __future__ import annotations

import sqlite3
import time

# Switching a fresh file to WAL takes an exclusive lock, and SQLite does not call the busy
# handler for it: a second process opening the same new file gets "database is locked" at
# once instead of waiting. Retry that step ourselves for as long as the connection would wait.
_RETRY_S = 0.02


def connect_wal(path: str, timeout: float) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    deadline = time.monotonic() + timeout
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                db.close()
                raise
            time.sleep(_RETRY_S)
    db.execute("PRAGMA synchronous=NORMAL")
    return db
