"""The state store's queries and the logic around them, once for both engines.

SQLStore implements every Store method in SQL that SQLite and PostgreSQL both understand
(placeholders written `?`, upserts as INSERT ... ON CONFLICT). An engine module subclasses it
with what differs: the connection and its transactions, its placeholder, a few fragments of
its dialect (the class attributes below) and its fastest way to write many rows
(sqlite_store.SQLiteStore, postgres_store.PostgresStore). The tables belong to state_schema.
"""

from __future__ import annotations

import json
import time
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from functools import lru_cache
from typing import Any, Protocol

from .errors import BadInput
from .formats.printable import shown
from .ids import checked_id
from .states import JobState, JobStatus
from .store import (
    JOB_COLUMNS,
    SUBMITTING,
    JdlJobRow,
    JobBrief,
    JobRecord,
    Store,
    UsageRow,
    job_id_of,
    record_of_row,
)

TRANSITION_COLUMNS = "job_id, old_state, new_state, time, reason"
# (state, exit_code, signal, reason, cause, node, updated, job_id): one change of a job's row.
JobUpdate = tuple[str, int | None, int | None, str | None, str | None, str | None, float, str]
Transition = tuple[str | None, str, float, str | None]

_UPDATE_JOB = (
    "UPDATE jobs SET state=?, exit_code=COALESCE(?, exit_code), signal=COALESCE(?, signal), "
    "reason=COALESCE(?, reason), cause=COALESCE(?, cause), node=COALESCE(?, node), updated=? WHERE job_id=?"
)
_STATES = {state.value: state for state in JobState} | {SUBMITTING: JobState.QUEUED}


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def executemany(self, query: str, rows: Iterable[Sequence[Any]], /) -> object: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """What the shared queries need of a connection (sqlite3's, psycopg's in autocommit mode)."""

    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Cursor: ...

    def cursor(self) -> Cursor: ...


@lru_cache(maxsize=512)
def _percent_placeholders(query: str) -> str:
    return query.replace("?", "%s")


class SQLStore(Store):
    """Store on a SQL engine; outside a transaction each statement commits by itself."""

    PLACEHOLDER = "?"  # the engine's: the queries here are written with "?"
    ROW_ORDER = "rowid"  # the column that orders rows of tables without a key in insertion order
    GREATEST = "MAX"  # the larger of two values
    IN_LIST = "IN (SELECT value FROM json_each(?))"  # a column's value is one of a list_param
    LOCK_ROWS = ""  # after a SELECT in a transaction: its rows stay as read until the commit

    @abstractmethod
    def connect(self) -> Connection:
        """This thread's connection."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Connection]:
        """A write transaction on this thread's connection: committed, or rolled back on an error."""

    @abstractmethod
    def list_param(self, values: Sequence[str]) -> object:
        """The parameter of IN_LIST for these values."""

    @abstractmethod
    def prefix_condition(self, prefix: str) -> tuple[str, tuple[str, ...]]:
        """A condition on job_id that holds where it starts with `prefix`, and its parameters
        (never a LIKE pattern: `%` and `_` are characters like any other)."""

    def sql(self, query: str) -> str:
        return query if self.PLACEHOLDER == "?" else _percent_placeholders(query)

    def _rows(self, query: str, params: Sequence[object] = ()) -> list[Any]:
        return self.connect().execute(self.sql(query), params).fetchall()

    def _row(self, query: str, params: Sequence[object] = ()) -> Any:
        return self.connect().execute(self.sql(query), params).fetchone()

    def _write(self, query: str, params: Sequence[object]) -> int:
        """One statement, committed by itself; the number of rows it changed."""
        return self.connect().execute(self.sql(query), params).rowcount

    def _write_many(self, db: Connection, query: str, rows: Iterable[Sequence[object]]) -> None:
        cursor = db.cursor()
        try:
            cursor.executemany(self.sql(query), rows)
        finally:
            cursor.close()

    def insert_rows(self, db: Connection, table: str, columns: str, rows: Iterable[Sequence[object]]) -> None:
        """Add rows to the table within a transaction (an engine may have a faster bulk insert)."""
        marks = ",".join("?" * len(columns.split(",")))
        self._write_many(db, f"INSERT INTO {table}({columns}) VALUES ({marks})", rows)

    def _records(self, where: str, params: Sequence[object] = ()) -> list[JobRecord]:
        return [record_of_row(r) for r in self._rows(f"SELECT {JOB_COLUMNS} FROM jobs {where}", params)]

    # runs
    def ensure_run(self, run_id: str, key: str, front: str) -> bool:
        return self._write(
            "INSERT INTO runs(run_id, key, front, created) VALUES (?,?,?,?) ON CONFLICT (run_id) DO NOTHING",
            (run_id, key, front, time.time()),
        ) == 1

    def run_created(self, run_id: str) -> float | None:
        row = self._row("SELECT created FROM runs WHERE run_id=?", (run_id,))
        return None if row is None else float(row[0])

    def run(self, run_id: str) -> tuple[str, str, str, float] | None:
        row = self._row("SELECT run_id, key, front, created FROM runs WHERE run_id=?", (run_id,))
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def update_run_metadata(self, run_id: str, values: dict[str, object]) -> None:
        with self.transaction() as db:
            db.execute(self.sql("INSERT INTO run_metadata(run_id, data) VALUES (?, ?) ON CONFLICT (run_id) "
                                "DO NOTHING"), (run_id, "{}"))
            row = db.execute(self.sql(f"SELECT data FROM run_metadata WHERE run_id=?{self.LOCK_ROWS}"),
                             (run_id,)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update(values)
            db.execute(self.sql("UPDATE run_metadata SET data=? WHERE run_id=?"), (json.dumps(data), run_id))

    def run_metadata(self, run_id: str) -> dict[str, object]:
        row = self._row("SELECT data FROM run_metadata WHERE run_id=?", (run_id,))
        return {} if row is None else dict(json.loads(row[0]))

    def run_change_mark(self, run_id: str) -> tuple[int, float]:
        row = self._row("SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM jobs WHERE run_id=?", (run_id,))
        return int(row[0]), float(row[1])

    def latest_runs(self, limit: int = 20) -> list[tuple[str, str, str, float]]:
        rows = self._rows("SELECT run_id, key, front, created FROM runs ORDER BY created DESC LIMIT ?", (limit,))
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def run_states(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        rows = self._rows(
            f"SELECT run_id, state, COUNT(*) FROM jobs WHERE run_id {self.IN_LIST} GROUP BY run_id, state",
            (self.list_param(run_ids),),
        )
        counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
        for run_id, state, count in rows:
            counts[str(run_id)][str(state)] = int(count)
        return counts

    def new_job_ids(self, run_id: str, count: int) -> list[str]:
        # One statement: the write lock of the run's row serializes allocators (on every host).
        rows = self._rows(
            "UPDATE runs SET next_job = next_job + ? WHERE run_id=? RETURNING next_job - ?", (count, run_id, count)
        )
        if not rows:
            raise KeyError(f"run {run_id} is not recorded")
        first = int(rows[0][0])
        return [job_id_of(run_id, number) for number in range(first, first + count)]

    # jobs
    def add_jobs(self, records: Iterable[JobRecord]) -> None:
        records = records if isinstance(records, Sequence) else list(records)
        spec_json: dict[int, str] = {}  # records sharing a spec share its JSON text

        def row(rec: JobRecord) -> tuple[object, ...]:
            text = spec_json.get(id(rec.spec))
            if text is None:
                text = spec_json[id(rec.spec)] = rec.spec.to_json()
            paths = rec.paths  # made when read (see JobRecord.location)
            return (rec.job_id, rec.run_id, rec.key, rec.name, rec.site, None, SUBMITTING, text,
                    paths.workdir, paths.stdout, paths.stderr, None, None, None, rec.attempt, "[]",
                    rec.created, rec.updated, None, None, rec.retry_note)

        with self.transaction() as db:  # generators: one row at a time, however many jobs
            self.insert_rows(db, "jobs", JOB_COLUMNS, (row(rec) for rec in records))
            self.insert_rows(db, "transitions", TRANSITION_COLUMNS, (
                (rec.job_id, None, JobState.QUEUED.value, rec.created, "recorded before submission")
                for rec in records))

    def set_native_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        now = time.time()
        with self.transaction() as db:
            self._write_many(
                db,
                "UPDATE jobs SET native_id=?, state=CASE WHEN state=? THEN ? ELSE state END, updated=? WHERE job_id=?",
                ((native, SUBMITTING, JobState.QUEUED.value, now, job_id) for job_id, native in pairs),
            )

    def unsent(self, run_id: str) -> list[JobRecord]:
        return self._records("WHERE run_id=? AND state=? ORDER BY created, job_id", (run_id, SUBMITTING))

    def update_states(self, changes: Iterable[tuple[str, JobStatus]]) -> list[str]:
        """Apply status changes; final states are never left. Returns the job ids changed.

        The jobs' rows are read under the write transaction (on PostgreSQL locked, in id order,
        so two workers never deadlock): no other process changes them between that read and
        the update."""
        changes = list(changes)
        if not changes:
            return []
        changed: list[str] = []
        updates: list[JobUpdate] = []
        transitions: list[tuple[str, str, str, float, str | None]] = []
        with self.transaction() as db:
            rows = db.execute(
                self.sql(f"SELECT job_id, state FROM jobs WHERE job_id {self.IN_LIST} ORDER BY job_id"
                         f"{self.LOCK_ROWS}"),
                (self.list_param(sorted({job_id for job_id, _ in changes})),),
            ).fetchall()
            current = {str(job_id): str(state) for job_id, state in rows}
            for job_id, status in changes:
                old_text = current.get(job_id)
                if old_text is None:
                    continue
                old = _STATES[old_text]
                if (old == status.state and old_text != SUBMITTING) or old.is_final:
                    continue
                updates.append((status.state.value, status.exit_code, status.signal, status.reason,
                                status.cause, status.node, status.time, job_id))
                transitions.append((job_id, old.value, status.state.value, status.time, status.reason))
                current[job_id] = status.state.value
                changed.append(job_id)
            if updates:
                self.update_jobs(db, updates)
                self.insert_rows(db, "transitions", TRANSITION_COLUMNS, transitions)
        return changed

    def update_jobs(self, db: Connection, updates: list[JobUpdate]) -> None:
        """Apply the changes in order, within update_states' transaction."""
        self._write_many(db, _UPDATE_JOB, updates)

    def set_details(self, job_id: str, status: JobStatus) -> None:
        self._write(
            "UPDATE jobs SET exit_code=COALESCE(?, exit_code), signal=COALESCE(?, signal), "
            "reason=COALESCE(?, reason), cause=COALESCE(?, cause), node=COALESCE(?, node) WHERE job_id=?",
            (status.exit_code, status.signal, status.reason, status.cause, status.node, job_id),
        )

    def fill_details(self, changes: Iterable[tuple[str, JobStatus]]) -> None:
        with self.transaction() as db:
            self._write_many(
                db,
                "UPDATE jobs SET exit_code=COALESCE(exit_code, ?), signal=COALESCE(signal, ?), "
                "reason=COALESCE(reason, ?), cause=COALESCE(cause, ?), node=COALESCE(node, ?) WHERE job_id=?",
                [(s.exit_code, s.signal, s.reason, s.cause, s.node, job_id) for job_id, s in changes],
            )

    def set_retry_note(self, job_id: str, note: str) -> None:
        self._write("UPDATE jobs SET retry_note=? WHERE job_id=?", (note, job_id))

    def set_missing_outputs(self, job_id: str, missing: Sequence[str]) -> None:
        self._write("UPDATE jobs SET missing_outputs=? WHERE job_id=?", (json.dumps(list(missing)), job_id))

    def jobs_of_run(self, run_id: str) -> list[JobRecord]:
        return self._records("WHERE run_id=? ORDER BY created, job_id", (run_id,))

    def live_jobs(self, run_ids: Sequence[str]) -> list[JobRecord]:
        return self._records(
            f"WHERE run_id {self.IN_LIST} AND native_id IS NOT NULL AND state NOT IN (?, ?, ?) "
            "ORDER BY created, job_id",
            (self.list_param(run_ids), JobState.COMPLETED.value, JobState.FAILED.value, JobState.CANCELLED.value),
        )

    def jobs_by_ids(self, job_ids: Sequence[str]) -> list[JobRecord]:
        return self._records(f"WHERE job_id {self.IN_LIST}", (self.list_param(job_ids),))

    def job(self, ident: str, *, prefix: bool = False) -> JobRecord:
        """A job by its esap id or its scheduler id, exactly; with `prefix`, by a unique prefix of its id."""
        checked_id(ident)
        records = self._records("WHERE job_id=?", (ident,))
        if not records and prefix:
            condition, params = self.prefix_condition(ident)
            records = self._records(f"WHERE {condition} LIMIT 2", params)
        if not records:
            records = self._records("WHERE native_id=? LIMIT 2", (ident,))
        if not records:
            raise BadInput(f"no job {shown(ident)} in the state store {self.describe()}", field="ID")
        if len(records) > 1:
            what = "starts more than one job id; give more of it" if prefix else "is the scheduler id of more " \
                "than one job (on different sites); give the esap id"
            raise BadInput(f"{shown(ident)} {what}", field="ID")
        return records[0]

    def latest_jobs(self, limit: int = 50) -> list[JobRecord]:
        return self._records("ORDER BY created DESC, job_id DESC LIMIT ?", (limit,))

    def job_states_of_run(self, run_id: str) -> list[JobBrief]:
        rows = self._rows(
            "SELECT job_id, name, site, native_id, state, reason, created, updated FROM jobs WHERE run_id=? "
            "ORDER BY created, job_id", (run_id,)
        )
        return [JobBrief(r[0], r[1], r[2], r[3], _STATES[r[4]], r[5], r[6], r[7]) for r in rows]

    def transitions_of_run(self, run_id: str) -> dict[str, list[Transition]]:
        rows = self._rows(
            "SELECT t.job_id, t.old_state, t.new_state, t.time, t.reason FROM transitions t "
            f"JOIN jobs j ON j.job_id = t.job_id WHERE j.run_id=? ORDER BY t.{self.ROW_ORDER}",
            (run_id,),
        )
        found: dict[str, list[Transition]] = {}
        for job_id, old, new, when, reason in rows:
            found.setdefault(str(job_id), []).append((old, str(new), float(when), reason))
        return found

    def transitions(self, job_id: str) -> list[Transition]:
        rows = self._rows(
            f"SELECT old_state, new_state, time, reason FROM transitions WHERE job_id=? ORDER BY {self.ROW_ORDER}",
            (job_id,),
        )
        return [(r[0], str(r[1]), float(r[2]), r[3]) for r in rows]

    # usage history
    def record_usage(self, rows: Iterable[UsageRow]) -> None:
        now = time.time()
        with self.transaction() as db:
            self._write_many(
                db,
                "INSERT INTO usage_history(job_id, step, site, max_memory_mib, wall_s, recorded) "
                "VALUES (?,?,?,?,?,?) ON CONFLICT (job_id) DO NOTHING",
                [(r.job_id, r.step, r.site, r.max_memory_mib, r.wall_s, now) for r in rows],
            )

    def usage_history(self, step: str, site: str, limit: int = 50) -> list[UsageRow]:
        rows = self._rows(
            "SELECT job_id, step, site, max_memory_mib, wall_s FROM usage_history WHERE step=? AND site=? "
            f"ORDER BY recorded DESC, {self.ROW_ORDER} DESC LIMIT ?", (step, site, limit),
        )
        return [UsageRow(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    # audit
    def record_policy_decision(
        self, run_id: str, site: str, subject: str | None, groups: Sequence[str], allowed: bool, rule: str
    ) -> None:
        self._write(
            "INSERT INTO policy_audit(time, run_id, site, subject, groups, allowed, rule) VALUES (?,?,?,?,?,?,?)",
            (time.time(), run_id, site, subject, json.dumps(list(groups)), int(allowed), rule),
        )

    def policy_decisions(self, run_id: str | None = None) -> list[dict[str, object]]:
        where, params = ("WHERE run_id=? ", (run_id,)) if run_id else ("", ())
        rows = self._rows(
            f"SELECT time, run_id, site, subject, groups, allowed, rule FROM policy_audit {where}"
            f"ORDER BY {self.ROW_ORDER}", params,
        )
        return [
            {"time": r[0], "run_id": r[1], "site": r[2], "subject": r[3],
             "groups": json.loads(r[4]), "allowed": bool(r[5]), "rule": r[6]}
            for r in rows
        ]

    # the fronts' records
    def cwl_generation(self, base_key: str) -> int:
        row = self._row("SELECT generation FROM cwl_generations WHERE base_key=?", (base_key,))
        return int(row[0]) if row else 0

    def end_cwl_generation(self, base_key: str, generation: int) -> None:
        self._write(
            "INSERT INTO cwl_generations (base_key, generation) VALUES (?, ?) ON CONFLICT (base_key) "
            f"DO UPDATE SET generation = {self.GREATEST}(cwl_generations.generation, excluded.generation)",
            (base_key, generation + 1),
        )

    def save_jdl_jobs(self, rows: Sequence[JdlJobRow]) -> None:
        with self.transaction() as db:
            self._write_many(
                db,
                "INSERT INTO jdl_jobs(run_id, key, jdl, outputs, output_dir, perusal) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT (run_id, key) DO UPDATE SET jdl=excluded.jdl, outputs=excluded.outputs, "
                "output_dir=excluded.output_dir, perusal=excluded.perusal",
                [(r.run_id, r.key, r.jdl, json.dumps([list(o) for o in r.outputs]), r.output_dir,
                  r.perusal_interval) for r in rows],
            )

    def jdl_job(self, run_id: str, key: str) -> JdlJobRow | None:
        row = self._row("SELECT jdl, outputs, output_dir, perusal FROM jdl_jobs WHERE run_id=? AND key=?",
                        (run_id, key))
        if row is None:
            return None
        outputs = tuple((str(name), None if dest is None else str(dest)) for name, dest in json.loads(row[1]))
        return JdlJobRow(run_id, key, str(row[0]), outputs, str(row[2]), row[3])
