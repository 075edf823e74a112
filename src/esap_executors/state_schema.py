"""The schema of the state store, on both engines: every table, and the ordered migrations between versions.

This module is the only owner of the store's tables. Migration N brings a store from version
N-1 to N, on SQLite and on PostgreSQL alike (one version number means the same tables on both).

SQLite keeps the version in `PRAGMA user_version`. Migration 1 is the schema of the releases
before versioning (they left user_version at 0): it creates what is missing and adds the
local_jobs columns that those releases added with ALTER TABLE, so a database of any earlier
release reaches version 1 unchanged in content.

PostgreSQL keeps it in the one row of table schema_version, and migrates under an advisory
lock, so several workers on several hosts opening the store at once run each migration once.
The local backend's queue (local_slots, local_batches, local_jobs) belongs to one machine and
stays in that machine's SQLite file: the PostgreSQL migrations create the other tables, and
migration 3 (local_jobs.changed) has nothing to do there.

Standard library only: the local supervisor process opens the database with it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

_VERSION_1 = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    front TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    site TEXT NOT NULL,
    native_id TEXT,
    state TEXT NOT NULL,
    spec TEXT NOT NULL,
    workdir TEXT NOT NULL,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    exit_code INTEGER,
    signal INTEGER,
    reason TEXT,
    attempt INTEGER NOT NULL DEFAULT 0,
    missing_outputs TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_run ON jobs(run_id, key);
CREATE TABLE IF NOT EXISTS transitions (
    job_id TEXT NOT NULL,
    old_state TEXT,
    new_state TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS transitions_by_job ON transitions(job_id);
CREATE TABLE IF NOT EXISTS policy_audit (
    time REAL NOT NULL,
    run_id TEXT NOT NULL,
    site TEXT NOT NULL,
    subject TEXT,
    groups TEXT NOT NULL,
    allowed INTEGER NOT NULL,
    rule TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cwl_generations (
    base_key TEXT PRIMARY KEY,
    generation INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jdl_jobs (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    jdl TEXT NOT NULL,
    outputs TEXT NOT NULL,
    output_dir TEXT NOT NULL,
    perusal INTEGER,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS local_slots (
    site TEXT PRIMARY KEY,
    max_cores INTEGER NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS local_batches (
    batch TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    created REAL NOT NULL,
    supervisor_pid INTEGER,
    supervisor_start INTEGER,
    finished REAL,
    cpu_s REAL
);
CREATE TABLE IF NOT EXISTS local_jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    batch TEXT NOT NULL,
    site TEXT NOT NULL,
    job_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    argv TEXT NOT NULL,
    env TEXT NOT NULL,
    workdir TEXT NOT NULL,
    stdin TEXT,
    stdout TEXT NOT NULL,
    stderr TEXT NOT NULL,
    cores INTEGER NOT NULL,
    memory_mib INTEGER,
    cpu_used_s REAL,
    max_memory_mib INTEGER,
    walltime_s INTEGER,
    success_codes TEXT NOT NULL,
    state TEXT NOT NULL,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    exit_code INTEGER,
    signal INTEGER,
    reason TEXT,
    submitted REAL NOT NULL,
    started REAL,
    ended REAL
);
CREATE INDEX IF NOT EXISTS local_jobs_queue ON local_jobs(site, state);
CREATE INDEX IF NOT EXISTS local_jobs_batch ON local_jobs(batch, state);
CREATE INDEX IF NOT EXISTS local_jobs_run ON local_jobs(run_id);
CREATE INDEX IF NOT EXISTS local_jobs_job ON local_jobs(job_id);
"""

# Columns that releases before versioning added to local_jobs with ALTER TABLE.
_LATE_LOCAL_JOBS_COLUMNS = {"memory_mib": "INTEGER", "cpu_used_s": "REAL", "max_memory_mib": "INTEGER"}


def _to_version_1(db: sqlite3.Connection) -> None:
    for statement in _statements(_VERSION_1):
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(local_jobs)")}
    for name, kind in _LATE_LOCAL_JOBS_COLUMNS.items():
        if name not in columns:
            db.execute(f"ALTER TABLE local_jobs ADD COLUMN {name} {kind}")


def _to_version_2(db: sqlite3.Connection) -> None:
    """Job ids become numbers handed out per run (runs.next_job), unique by construction."""
    db.execute("ALTER TABLE runs ADD COLUMN next_job INTEGER NOT NULL DEFAULT 1")


def _to_version_3(db: sqlite3.Connection) -> None:
    """local_jobs.changed: a counter advanced on every state change of a local job, in commit
    order (writes are serialized), so a poll reads only the rows changed since its last one."""
    db.execute("ALTER TABLE local_jobs ADD COLUMN changed INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX local_jobs_changed ON local_jobs(changed)")
    db.execute(
        "CREATE TRIGGER local_jobs_state_changed AFTER UPDATE OF state, started, ended ON local_jobs "
        "BEGIN UPDATE local_jobs SET changed = (SELECT MAX(changed) FROM local_jobs) + 1 "
        "WHERE id = NEW.id; END"
    )


def _to_version_4(db: sqlite3.Connection) -> None:
    """run_metadata: what a front knows of its run (workflow file, inputs, outputs, the process
    that follows it), one JSON object per run, for esap report --ro-crate and esap status --watch."""
    db.execute("CREATE TABLE IF NOT EXISTS run_metadata (run_id TEXT PRIMARY KEY, data TEXT NOT NULL)")


def _to_version_5(db: sqlite3.Connection) -> None:
    """Runs that heal themselves: each job's failure cause (causes.Cause) and the node it ran on,
    read by the retry policy, and on a retry attempt what changed in its request (or, on a failed
    attempt, why no retry was made)."""
    db.execute("ALTER TABLE jobs ADD COLUMN cause TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN node TEXT")
    db.execute("ALTER TABLE jobs ADD COLUMN retry_note TEXT")


def _to_version_6(db: sqlite3.Connection) -> None:
    """usage_history: what ended jobs used, per (workflow step or rule, site), for --right-size."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS usage_history (job_id TEXT PRIMARY KEY, step TEXT NOT NULL, "
        "site TEXT NOT NULL, max_memory_mib INTEGER, wall_s REAL, recorded REAL NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS usage_history_by_step ON usage_history(step, site)")


# In order: MIGRATIONS[i] takes a database from version i to version i + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _to_version_1, _to_version_2, _to_version_3, _to_version_4, _to_version_5,
    _to_version_6,
)
VERSION = len(MIGRATIONS)


# PostgreSQL: the same tables with the server's types (REAL is DOUBLE PRECISION); the tables
# whose rows SQLite orders by rowid get an identity column `id` for that order; job lookups by
# id prefix and by scheduler id get indexes (many jobs, several workers).
_POSTGRES_VERSION_1 = (
    "CREATE TABLE runs (run_id TEXT PRIMARY KEY, key TEXT NOT NULL, front TEXT NOT NULL, "
    "created DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, run_id TEXT NOT NULL, key TEXT NOT NULL, name TEXT NOT NULL, "
    "site TEXT NOT NULL, native_id TEXT, state TEXT NOT NULL, spec TEXT NOT NULL, workdir TEXT NOT NULL, "
    "stdout TEXT NOT NULL, stderr TEXT NOT NULL, exit_code INTEGER, signal INTEGER, reason TEXT, "
    "attempt INTEGER NOT NULL DEFAULT 0, missing_outputs TEXT NOT NULL DEFAULT '[]', "
    "created DOUBLE PRECISION NOT NULL, updated DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX jobs_by_run ON jobs(run_id, key)",
    "CREATE INDEX jobs_by_id_prefix ON jobs(job_id text_pattern_ops)",
    "CREATE INDEX jobs_by_native_id ON jobs(native_id)",
    "CREATE TABLE transitions (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job_id TEXT NOT NULL, "
    "old_state TEXT, new_state TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, reason TEXT)",
    "CREATE INDEX transitions_by_job ON transitions(job_id)",
    "CREATE TABLE policy_audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "time DOUBLE PRECISION NOT NULL, run_id TEXT NOT NULL, site TEXT NOT NULL, subject TEXT, "
    "groups TEXT NOT NULL, allowed INTEGER NOT NULL, rule TEXT NOT NULL)",
    "CREATE TABLE cwl_generations (base_key TEXT PRIMARY KEY, generation INTEGER NOT NULL)",
    "CREATE TABLE jdl_jobs (run_id TEXT NOT NULL, key TEXT NOT NULL, jdl TEXT NOT NULL, outputs TEXT NOT NULL, "
    "output_dir TEXT NOT NULL, perusal INTEGER, PRIMARY KEY (run_id, key))",
)

# In order, as MIGRATIONS: the statements of each, run in one transaction.
POSTGRES_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    _POSTGRES_VERSION_1,
    ("ALTER TABLE runs ADD COLUMN next_job BIGINT NOT NULL DEFAULT 1",),
    (),  # local_jobs.changed: the local backend's queue is in the machine's SQLite file
    ("CREATE TABLE run_metadata (run_id TEXT PRIMARY KEY, data TEXT NOT NULL)",),
    ("ALTER TABLE jobs ADD COLUMN cause TEXT", "ALTER TABLE jobs ADD COLUMN node TEXT",
     "ALTER TABLE jobs ADD COLUMN retry_note TEXT"),
    ("CREATE TABLE usage_history (id BIGINT GENERATED ALWAYS AS IDENTITY, job_id TEXT PRIMARY KEY, "
     "step TEXT NOT NULL, site TEXT NOT NULL, max_memory_mib INTEGER, wall_s DOUBLE PRECISION, "
     "recorded DOUBLE PRECISION NOT NULL)",
     "CREATE INDEX usage_history_by_step ON usage_history(step, site)"),
)
assert len(POSTGRES_MIGRATIONS) == VERSION

# Taken (per database) while a PostgreSQL store is migrated: any constant, the same in every release.
_POSTGRES_MIGRATION_LOCK = 0x65_73_61_70_5F_73_74_6F  # "esap_sto"


class NewerDatabase(Exception):
    """The database was written by a newer release of esap."""


class PostgresConnection(Protocol):
    """What migrate_postgres needs of a connection (psycopg 3's, in autocommit mode)."""

    def execute(self, query: Any, params: Sequence[object] | None = ..., /) -> Any: ...

    def transaction(self) -> AbstractContextManager[Any]: ...


def migrate_postgres(db: PostgresConnection) -> int:
    """Bring a PostgreSQL store (the schema of the connection's search path) to VERSION; returns
    the old version. Each migration in its own transaction, under the advisory lock."""
    start: int | None = None
    while True:
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_POSTGRES_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            db.execute("INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS (SELECT FROM schema_version)")
            current = int(db.execute("SELECT version FROM schema_version").fetchone()[0])
            start = current if start is None else start
            if current > VERSION:
                raise NewerDatabase(
                    f"the state database has schema version {current}; this esap knows up to {VERSION}"
                )
            if current == VERSION:
                return start
            for statement in POSTGRES_MIGRATIONS[current]:
                db.execute(statement)
            db.execute("UPDATE schema_version SET version = %s", (current + 1,))


def version_of(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to VERSION, each migration in its own transaction; returns the old version.

    Safe when several processes open the same database at once: the version is read again
    under the write lock, so each migration runs exactly once.
    """
    start = version_of(db)
    if start == VERSION:
        return start
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            current = version_of(db)
            if current > VERSION:
                raise NewerDatabase(
                    f"the state database has schema version {current}; this esap knows up to {VERSION}"
                )
            if current == VERSION:
                db.execute("COMMIT")
                return start
            MIGRATIONS[current](db)
            db.execute(f"PRAGMA user_version = {current + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
