"""The state store in one SQLite file (the user's state directory): the Store for one machine.

Safe for several processes at once: WAL journal and short transactions. The tables and their
migrations belong to state_schema; opening a store brings an older file up to date.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from . import state_schema
from .errors import BadInput, EsapError
from .formats.printable import shown
from .ids import checked_id, prefix_upper_bound
from .sqlite_wal import connect_wal
from .states import JobState, JobStatus
from .store import JOB_COLUMNS as _COLUMNS
from .store import SUBMITTING, JdlJobRow, JobBrief, JobRecord, Store, UsageRow, job_id_of
from .store import record_of_row as _record


def open_store(path: str | Path | None = None) -> Store:
    """The store of this process (stores.open_store: $ESAP_STATE_URL, else state.db in the state directory)."""
    from .stores import open_store as open_configured_store

    return open_configured_store(path)


class SQLiteStore(Store):
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

    # runs
    def ensure_run(self, run_id: str, key: str, front: str) -> bool:
        """Record the run; True when it is new."""
        with self.transaction() as db:
            cur = db.execute(
                "INSERT OR IGNORE INTO runs(run_id, key, front, created) VALUES (?,?,?,?)",
                (run_id, key, front, time.time()),
            )
            return cur.rowcount == 1

    def run_created(self, run_id: str) -> float | None:
        row = self.connect().execute("SELECT created FROM runs WHERE run_id=?", (run_id,)).fetchone()
        return None if row is None else float(row[0])

    def latest_runs(self, limit: int = 20) -> list[tuple[str, str, str, float]]:
        rows = self.connect().execute(
            "SELECT run_id, key, front, created FROM runs ORDER BY created DESC LIMIT ?", (limit,)
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def run_states(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many jobs of each run are in each state (one query)."""
        rows = self.connect().execute(
            "SELECT run_id, state, COUNT(*) FROM jobs WHERE run_id IN (SELECT value FROM json_each(?)) "
            "GROUP BY run_id, state",
            (json.dumps(list(run_ids)),),
        ).fetchall()
        counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
        for run_id, state, count in rows:
            counts[str(run_id)][str(state)] = int(count)
        return counts

    def new_job_ids(self, run_id: str, count: int) -> list[str]:
        with self.transaction() as db:
            row = db.execute("SELECT next_job FROM runs WHERE run_id=?", (run_id,)).fetchone()
            if row is None:
                raise KeyError(f"run {run_id} is not recorded")
            first = int(row[0])
            db.execute("UPDATE runs SET next_job=? WHERE run_id=?", (first + count, run_id))
        return [job_id_of(run_id, number) for number in range(first, first + count)]

    # jobs
    def add_jobs(self, records: Iterable[JobRecord]) -> None:
        """Record jobs before their submission is sent (state 'submitting')."""
        records = records if isinstance(records, Sequence) else list(records)
        spec_json: dict[int, str] = {}  # records sharing a spec share its JSON text

        def row(rec: JobRecord) -> tuple[object, ...]:
            text = spec_json.get(id(rec.spec))
            if text is None:
                text = spec_json[id(rec.spec)] = rec.spec.to_json()
            paths = rec.paths
            return (rec.job_id, rec.run_id, rec.key, rec.name, rec.site, None, SUBMITTING, text,
                    paths.workdir, paths.stdout, paths.stderr, None, None, None, rec.attempt, "[]",
                    rec.created, rec.updated, None, None, rec.retry_note)

        with self.transaction() as db:  # generators: one row at a time, however many jobs
            db.executemany(
                f"INSERT INTO jobs({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (row(rec) for rec in records),
            )
            db.executemany(
                "INSERT INTO transitions(job_id, old_state, new_state, time, reason) VALUES (?,?,?,?,?)",
                ((rec.job_id, None, JobState.QUEUED.value, rec.created, "recorded before submission")
                 for rec in records),
            )

    def set_native_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "UPDATE jobs SET native_id=?, state=CASE WHEN state=? THEN ? ELSE state END, updated=? "
                "WHERE job_id=?",
                ((native, SUBMITTING, JobState.QUEUED.value, now, job_id) for job_id, native in pairs),
            )

    def unsent(self, run_id: str) -> list[JobRecord]:
        """Jobs recorded but never confirmed as submitted (a crash between record and send)."""
        rows = self.connect().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE run_id=? AND state=?", (run_id, SUBMITTING)
        ).fetchall()
        return [_record(r) for r in rows]

    def update_states(self, changes: Iterable[tuple[str, JobStatus]]) -> list[str]:
        """Apply status changes; final states are never left. Returns the job ids changed."""
        changed: list[str] = []
        with self.transaction() as db:
            for job_id, status in changes:
                row = db.execute("SELECT state FROM jobs WHERE job_id=?", (job_id,)).fetchone()
                if row is None:
                    continue
                old_text = str(row[0])
                old = JobState.QUEUED if old_text == SUBMITTING else JobState(old_text)
                if old == status.state and old_text != SUBMITTING:
                    continue
                if old.is_final:
                    continue
                db.execute(
                    "UPDATE jobs SET state=?, exit_code=COALESCE(?, exit_code), signal=COALESCE(?, signal), "
                    "reason=COALESCE(?, reason), cause=COALESCE(?, cause), node=COALESCE(?, node), updated=? "
                    "WHERE job_id=?",
                    (status.state.value, status.exit_code, status.signal, status.reason, status.cause,
                     status.node, status.time, job_id),
                )
                db.execute(
                    "INSERT INTO transitions(job_id, old_state, new_state, time, reason) VALUES (?,?,?,?,?)",
                    (job_id, old.value, status.state.value, status.time, status.reason),
                )
                changed.append(job_id)
        return changed

    def set_details(self, job_id: str, status: JobStatus) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE jobs SET exit_code=COALESCE(?, exit_code), signal=COALESCE(?, signal), "
                "reason=COALESCE(?, reason), cause=COALESCE(?, cause), node=COALESCE(?, node) WHERE job_id=?",
                (status.exit_code, status.signal, status.reason, status.cause, status.node, job_id),
            )

    def fill_details(self, changes: Iterable[tuple[str, JobStatus]]) -> None:
        with self.transaction() as db:
            db.executemany(
                "UPDATE jobs SET exit_code=COALESCE(exit_code, ?), signal=COALESCE(signal, ?), "
                "reason=COALESCE(reason, ?), cause=COALESCE(cause, ?), node=COALESCE(node, ?) WHERE job_id=?",
                [(s.exit_code, s.signal, s.reason, s.cause, s.node, job_id) for job_id, s in changes],
            )

    def set_retry_note(self, job_id: str, note: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET retry_note=? WHERE job_id=?", (note, job_id))

    def set_missing_outputs(self, job_id: str, missing: Sequence[str]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE jobs SET missing_outputs=? WHERE job_id=?", (json.dumps(list(missing)), job_id))

    def jobs_of_run(self, run_id: str) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE run_id=? ORDER BY created, job_id", (run_id,)
        ).fetchall()
        return [_record(r) for r in rows]

    def live_jobs(self, run_ids: Sequence[str]) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE run_id IN (SELECT value FROM json_each(?)) "
            "AND native_id IS NOT NULL AND state NOT IN (?, ?, ?) ORDER BY created, job_id",
            (json.dumps(list(run_ids)), JobState.COMPLETED.value, JobState.FAILED.value, JobState.CANCELLED.value),
        ).fetchall()
        return [_record(r) for r in rows]

    def jobs_by_ids(self, job_ids: Sequence[str]) -> list[JobRecord]:
        records: list[JobRecord] = []
        db = self.connect()
        for start in range(0, len(job_ids), 500):
            chunk = list(job_ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id IN ({marks})", chunk).fetchall()
            records.extend(_record(r) for r in rows)
        return records

    def job(self, ident: str, *, prefix: bool = False) -> JobRecord:
        """A job by its esap id or its scheduler id, exactly; with `prefix`, by a unique prefix of its id."""
        checked_id(ident)
        db = self.connect()
        rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE job_id=?", (ident,)).fetchall()
        if not rows and prefix:
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE job_id >= ? AND job_id < ? LIMIT 2",
                (ident, prefix_upper_bound(ident)),
            ).fetchall()
        if not rows:
            rows = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE native_id=? LIMIT 2", (ident,)).fetchall()
        if not rows:
            raise BadInput(f"no job {shown(ident)} in the state store {self.describe()}", field="ID")
        if len(rows) > 1:
            what = "starts more than one job id; give more of it" if prefix else "is the scheduler id of more " \
                "than one job (on different sites); give the esap id"
            raise BadInput(f"{shown(ident)} {what}", field="ID")
        return _record(rows[0])

    def latest_jobs(self, limit: int = 50) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC, job_id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_record(r) for r in rows]

    def run(self, run_id: str) -> tuple[str, str, str, float] | None:
        row = self.connect().execute(
            "SELECT run_id, key, front, created FROM runs WHERE run_id=?", (run_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def update_run_metadata(self, run_id: str, values: dict[str, object]) -> None:
        with self.transaction() as db:
            row = db.execute("SELECT data FROM run_metadata WHERE run_id=?", (run_id,)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update(values)
            db.execute("INSERT OR REPLACE INTO run_metadata(run_id, data) VALUES (?,?)", (run_id, json.dumps(data)))

    def run_metadata(self, run_id: str) -> dict[str, object]:
        row = self.connect().execute("SELECT data FROM run_metadata WHERE run_id=?", (run_id,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def run_change_mark(self, run_id: str) -> tuple[int, float]:
        row = self.connect().execute(
            "SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM jobs WHERE run_id=?", (run_id,)
        ).fetchone()
        return int(row[0]), float(row[1])

    def job_states_of_run(self, run_id: str) -> list[JobBrief]:
        rows = self.connect().execute(
            "SELECT job_id, name, site, native_id, state, reason, created, updated FROM jobs WHERE run_id=? "
            "ORDER BY created, job_id", (run_id,)
        ).fetchall()
        states = {state.value: state for state in JobState}
        states[SUBMITTING] = JobState.QUEUED
        return [JobBrief(r[0], r[1], r[2], r[3], states[r[4]], r[5], r[6], r[7]) for r in rows]

    def transitions_of_run(self, run_id: str) -> dict[str, list[tuple[str | None, str, float, str | None]]]:
        rows = self.connect().execute(
            "SELECT t.job_id, t.old_state, t.new_state, t.time, t.reason FROM transitions t "
            "JOIN jobs j ON j.job_id = t.job_id WHERE j.run_id=? ORDER BY t.rowid",
            (run_id,),
        ).fetchall()
        found: dict[str, list[tuple[str | None, str, float, str | None]]] = {}
        for job_id, old, new, when, reason in rows:
            found.setdefault(str(job_id), []).append((old, str(new), float(when), reason))
        return found

    def transitions(self, job_id: str) -> list[tuple[str | None, str, float, str | None]]:
        rows = self.connect().execute(
            "SELECT old_state, new_state, time, reason FROM transitions WHERE job_id=? ORDER BY rowid",
            (job_id,),
        ).fetchall()
        return [(r[0], str(r[1]), float(r[2]), r[3]) for r in rows]

    # usage history
    def record_usage(self, rows: Iterable[UsageRow]) -> None:
        now = time.time()
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO usage_history(job_id, step, site, max_memory_mib, wall_s, recorded) "
                "VALUES (?,?,?,?,?,?)",
                [(r.job_id, r.step, r.site, r.max_memory_mib, r.wall_s, now) for r in rows],
            )

    def usage_history(self, step: str, site: str, limit: int = 50) -> list[UsageRow]:
        rows = self.connect().execute(
            "SELECT job_id, step, site, max_memory_mib, wall_s FROM usage_history WHERE step=? AND site=? "
            "ORDER BY recorded DESC, rowid DESC LIMIT ?", (step, site, limit),
        ).fetchall()
        return [UsageRow(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    # audit
    def record_policy_decision(
        self, run_id: str, site: str, subject: str | None, groups: Sequence[str], allowed: bool, rule: str
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO policy_audit(time, run_id, site, subject, groups, allowed, rule) "
                "VALUES (?,?,?,?,?,?,?)",
                (time.time(), run_id, site, subject, json.dumps(list(groups)), int(allowed), rule),
            )

    def policy_decisions(self, run_id: str | None = None) -> list[dict[str, object]]:
        query = "SELECT time, run_id, site, subject, groups, allowed, rule FROM policy_audit"
        params: tuple[str, ...] = ()
        if run_id:
            query += " WHERE run_id=?"
            params = (run_id,)
        rows = self.connect().execute(query + " ORDER BY rowid", params).fetchall()
        return [
            {"time": r[0], "run_id": r[1], "site": r[2], "subject": r[3],
             "groups": json.loads(r[4]), "allowed": bool(r[5]), "rule": r[6]}
            for r in rows
        ]

    # the fronts' records
    def cwl_generation(self, base_key: str) -> int:
        row = self.connect().execute(
            "SELECT generation FROM cwl_generations WHERE base_key = ?", (base_key,)
        ).fetchone()
        return int(row[0]) if row else 0

    def end_cwl_generation(self, base_key: str, generation: int) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO cwl_generations (base_key, generation) VALUES (?, ?) "
                "ON CONFLICT(base_key) DO UPDATE SET generation = MAX(generation, excluded.generation)",
                (base_key, generation + 1),
            )

    def save_jdl_jobs(self, rows: Sequence[JdlJobRow]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO jdl_jobs(run_id, key, jdl, outputs, output_dir, perusal) "
                "VALUES (?,?,?,?,?,?)",
                [(r.run_id, r.key, r.jdl, json.dumps([list(o) for o in r.outputs]), r.output_dir,
                  r.perusal_interval) for r in rows],
            )

    def jdl_job(self, run_id: str, key: str) -> JdlJobRow | None:
        row = self.connect().execute(
            "SELECT jdl, outputs, output_dir, perusal FROM jdl_jobs WHERE run_id=? AND key=?", (run_id, key)
        ).fetchone()
        if row is None:
            return None
        outputs = tuple((str(name), None if dest is None else str(dest)) for name, dest in json.loads(row[1]))
        return JdlJobRow(run_id, key, str(row[0]), outputs, str(row[2]), row[3])


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
