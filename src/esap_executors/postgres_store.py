"""The state store on a PostgreSQL server: the Store that a platform's workers share across hosts.

Selected by ESAP_STATE_URL=postgresql://... (stores.open_store). The tables and their migrations
belong to state_schema; opening a store brings an older database up to date. Safe for many
processes on many hosts: job numbers are handed out by one UPDATE of the run's row (its row lock
serializes the allocators), and a state change locks the job's row before it reads the old
state, so a final state is never left whatever other workers do at the same time.

Each thread (and each process after a fork) gets its own connection, in autocommit mode with
explicit transactions. The password is never part of a message: see redacted_url.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import state_schema
from .errors import BadInput, EsapError
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

if TYPE_CHECKING:
    import psycopg

SCHEMES = ("postgresql", "postgres")
_FINAL = [JobState.COMPLETED.value, JobState.FAILED.value, JobState.CANCELLED.value]
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


class PostgresStore(Store):
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

    # runs
    def ensure_run(self, run_id: str, key: str, front: str) -> bool:
        cur = self.connect().execute(
            "INSERT INTO runs(run_id, key, front, created) VALUES (%s,%s,%s,%s) ON CONFLICT (run_id) DO NOTHING",
            (run_id, key, front, time.time()),
        )
        return cur.rowcount == 1

    def run_created(self, run_id: str) -> float | None:
        row = self.connect().execute("SELECT created FROM runs WHERE run_id=%s", (run_id,)).fetchone()
        return None if row is None else float(row[0])

    def run(self, run_id: str) -> tuple[str, str, str, float] | None:
        row = self.connect().execute(
            "SELECT run_id, key, front, created FROM runs WHERE run_id=%s", (run_id,)
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]), float(row[3]))

    def update_run_metadata(self, run_id: str, values: dict[str, object]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO run_metadata(run_id, data) VALUES (%s, '{}') ON CONFLICT (run_id) DO NOTHING", (run_id,)
            )
            row = db.execute("SELECT data FROM run_metadata WHERE run_id=%s FOR UPDATE", (run_id,)).fetchone()
            data = json.loads(row[0]) if row else {}
            data.update(values)
            db.execute("UPDATE run_metadata SET data=%s WHERE run_id=%s", (json.dumps(data), run_id))

    def run_metadata(self, run_id: str) -> dict[str, object]:
        row = self.connect().execute("SELECT data FROM run_metadata WHERE run_id=%s", (run_id,)).fetchone()
        return {} if row is None else dict(json.loads(row[0]))

    def run_change_mark(self, run_id: str) -> tuple[int, float]:
        row = self.connect().execute(
            "SELECT COUNT(*), COALESCE(MAX(updated), 0) FROM jobs WHERE run_id=%s", (run_id,)
        ).fetchone()
        assert row is not None
        return int(row[0]), float(row[1])

    def latest_runs(self, limit: int = 20) -> list[tuple[str, str, str, float]]:
        rows = self.connect().execute(
            "SELECT run_id, key, front, created FROM runs ORDER BY created DESC LIMIT %s", (limit,)
        ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    def run_states(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        rows = self.connect().execute(
            "SELECT run_id, state, COUNT(*) FROM jobs WHERE run_id = ANY(%s) GROUP BY run_id, state",
            (list(run_ids),),
        ).fetchall()
        counts: dict[str, dict[str, int]] = {run_id: {} for run_id in run_ids}
        for run_id, state, count in rows:
            counts[str(run_id)][str(state)] = int(count)
        return counts

    def new_job_ids(self, run_id: str, count: int) -> list[str]:
        # One statement: the row lock of the UPDATE serializes allocators on every host.
        row = self.connect().execute(
            "UPDATE runs SET next_job = next_job + %s WHERE run_id=%s RETURNING next_job - %s",
            (count, run_id, count),
        ).fetchone()
        if row is None:
            raise KeyError(f"run {run_id} is not recorded")
        first = int(row[0])
        return [job_id_of(run_id, number) for number in range(first, first + count)]

    # jobs
    def add_jobs(self, records: Iterable[JobRecord]) -> None:
        records = list(records)
        with self.transaction() as db, db.cursor() as cur:
            with cur.copy(f"COPY jobs({JOB_COLUMNS}) FROM STDIN") as copy:
                spec_json: dict[int, str] = {}  # records sharing a spec share its JSON text
                for rec in records:
                    text = spec_json.get(id(rec.spec))
                    if text is None:
                        text = spec_json[id(rec.spec)] = rec.spec.to_json()
                    paths = rec.paths  # made when read (see JobRecord.location)
                    copy.write_row((
                        rec.job_id, rec.run_id, rec.key, rec.name, rec.site, None, SUBMITTING,
                        text, paths.workdir, paths.stdout, paths.stderr, None, None, None,
                        rec.attempt, "[]", rec.created, rec.updated, None, None, rec.retry_note,
                    ))
            with cur.copy("COPY transitions(job_id, old_state, new_state, time, reason) FROM STDIN") as copy:
                for rec in records:
                    copy.write_row((rec.job_id, None, JobState.QUEUED.value, rec.created, "recorded before submission"))

    def set_native_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        pairs = list(pairs)
        if not pairs:
            return
        self.connect().execute(
            "UPDATE jobs AS j SET native_id=c.native_id, state=CASE WHEN j.state=%s THEN %s ELSE j.state END, "
            "updated=%s FROM unnest(%s::text[], %s::text[]) AS c(job_id, native_id) WHERE j.job_id = c.job_id",
            (SUBMITTING, JobState.QUEUED.value, time.time(), [p[0] for p in pairs], [p[1] for p in pairs]),
        )

    def unsent(self, run_id: str) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE run_id=%s AND state=%s ORDER BY created, job_id",
            (run_id, SUBMITTING),
        ).fetchall()
        return [record_of_row(r) for r in rows]

    def update_states(self, changes: Iterable[tuple[str, JobStatus]]) -> list[str]:
        """Apply status changes; final states are never left. Returns the job ids changed.

        The jobs' rows are locked (in id order, so two workers never deadlock) before their old
        states are read: no other worker can change them between that read and the update."""
        changes = list(changes)
        if not changes:
            return []
        changed: list[str] = []
        with self.transaction() as db, db.cursor() as cur:
            rows = cur.execute(
                "SELECT job_id, state FROM jobs WHERE job_id = ANY(%s) ORDER BY job_id FOR UPDATE",
                (sorted({job_id for job_id, _ in changes}),),
            ).fetchall()
            current = {str(job_id): str(state) for job_id, state in rows}
            updates: list[tuple[object, ...]] = []
            transitions: list[tuple[object, ...]] = []
            for job_id, status in changes:
                old_text = current.get(job_id)
                if old_text is None:
                    continue
                old = JobState.QUEUED if old_text == SUBMITTING else JobState(old_text)
                if (old == status.state and old_text != SUBMITTING) or old.is_final:
                    continue
                updates.append((status.state.value, status.exit_code, status.signal, status.reason,
                                status.cause, status.node, status.time, job_id))
                transitions.append((job_id, old.value, status.state.value, status.time, status.reason))
                current[job_id] = status.state.value
                changed.append(job_id)
            if updates and len({update[-1] for update in updates}) == len(updates):  # one statement
                cur.execute(
                    "UPDATE jobs AS j SET state=c.state, exit_code=COALESCE(c.exit_code, j.exit_code), "
                    "signal=COALESCE(c.signal, j.signal), reason=COALESCE(c.reason, j.reason), "
                    "cause=COALESCE(c.cause, j.cause), node=COALESCE(c.node, j.node), updated=c.updated "
                    "FROM unnest(%s::text[], %s::int[], %s::int[], %s::text[], %s::text[], %s::text[], %s::float8[], "
                    "%s::text[]) AS c(state, exit_code, signal, reason, cause, node, updated, job_id) "
                    "WHERE j.job_id = c.job_id",
                    [list(column) for column in zip(*updates, strict=True)],
                )
            elif updates:  # several changes of one job: one after the other, in order
                cur.executemany(
                    "UPDATE jobs SET state=%s, exit_code=COALESCE(%s, exit_code), signal=COALESCE(%s, signal), "
                    "reason=COALESCE(%s, reason), cause=COALESCE(%s, cause), node=COALESCE(%s, node), updated=%s "
                    "WHERE job_id=%s",
                    updates,
                )
            if transitions:
                with cur.copy("COPY transitions(job_id, old_state, new_state, time, reason) FROM STDIN") as copy:
                    for transition in transitions:
                        copy.write_row(transition)
        return changed

    def set_details(self, job_id: str, status: JobStatus) -> None:
        self.connect().execute(
            "UPDATE jobs SET exit_code=COALESCE(%s, exit_code), signal=COALESCE(%s, signal), "
            "reason=COALESCE(%s, reason), cause=COALESCE(%s, cause), node=COALESCE(%s, node) WHERE job_id=%s",
            (status.exit_code, status.signal, status.reason, status.cause, status.node, job_id),
        )

    def fill_details(self, changes: Iterable[tuple[str, JobStatus]]) -> None:
        with self.transaction() as db, db.cursor() as cur:
            cur.executemany(
                "UPDATE jobs SET exit_code=COALESCE(exit_code, %s), signal=COALESCE(signal, %s), "
                "reason=COALESCE(reason, %s), cause=COALESCE(cause, %s), node=COALESCE(node, %s) WHERE job_id=%s",
                [(s.exit_code, s.signal, s.reason, s.cause, s.node, job_id) for job_id, s in changes],
            )

    def set_retry_note(self, job_id: str, note: str) -> None:
        self.connect().execute("UPDATE jobs SET retry_note=%s WHERE job_id=%s", (note, job_id))

    # usage history
    def record_usage(self, rows: Iterable[UsageRow]) -> None:
        now = time.time()
        with self.transaction() as db, db.cursor() as cur:
            cur.executemany(
                "INSERT INTO usage_history(job_id, step, site, max_memory_mib, wall_s, recorded) "
                "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (job_id) DO NOTHING",
                [(r.job_id, r.step, r.site, r.max_memory_mib, r.wall_s, now) for r in rows],
            )

    def usage_history(self, step: str, site: str, limit: int = 50) -> list[UsageRow]:
        rows = self.connect().execute(
            "SELECT job_id, step, site, max_memory_mib, wall_s FROM usage_history WHERE step=%s AND site=%s "
            "ORDER BY recorded DESC, id DESC LIMIT %s", (step, site, limit),
        ).fetchall()
        return [UsageRow(str(r[0]), str(r[1]), str(r[2]), r[3], r[4]) for r in rows]

    def set_missing_outputs(self, job_id: str, missing: Sequence[str]) -> None:
        self.connect().execute(
            "UPDATE jobs SET missing_outputs=%s WHERE job_id=%s", (json.dumps(list(missing)), job_id)
        )

    def jobs_of_run(self, run_id: str) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE run_id=%s ORDER BY created, job_id", (run_id,)
        ).fetchall()
        return [record_of_row(r) for r in rows]

    def live_jobs(self, run_ids: Sequence[str]) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE run_id = ANY(%s) AND native_id IS NOT NULL "
            "AND state <> ALL(%s) ORDER BY created, job_id",
            (list(run_ids), _FINAL),
        ).fetchall()
        return [record_of_row(r) for r in rows]

    def jobs_by_ids(self, job_ids: Sequence[str]) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ANY(%s)", (list(job_ids),)
        ).fetchall()
        return [record_of_row(r) for r in rows]

    def job(self, ident: str, *, prefix: bool = False) -> JobRecord:
        """A job by its esap id or its scheduler id, exactly; with `prefix`, by a unique prefix of its id."""
        checked_id(ident)
        db = self.connect()
        rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE job_id=%s", (ident,)).fetchall()
        if not rows and prefix:  # starts_with: no pattern characters, whatever the collation
            rows = db.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE starts_with(job_id, %s) LIMIT 2", (ident,)
            ).fetchall()
        if not rows:
            rows = db.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE native_id=%s LIMIT 2", (ident,)).fetchall()
        if not rows:
            raise BadInput(f"no job {shown(ident)} in the state store {self.describe()}", field="ID")
        if len(rows) > 1:
            what = "starts more than one job id; give more of it" if prefix else "is the scheduler id of more " \
                "than one job (on different sites); give the esap id"
            raise BadInput(f"{shown(ident)} {what}", field="ID")
        return record_of_row(rows[0])

    def latest_jobs(self, limit: int = 50) -> list[JobRecord]:
        rows = self.connect().execute(
            f"SELECT {JOB_COLUMNS} FROM jobs ORDER BY created DESC, job_id DESC LIMIT %s", (limit,)
        ).fetchall()
        return [record_of_row(r) for r in rows]

    def job_states_of_run(self, run_id: str) -> list[JobBrief]:
        rows = self.connect().execute(
            "SELECT job_id, name, site, native_id, state, reason, created, updated FROM jobs WHERE run_id=%s "
            "ORDER BY created, job_id", (run_id,)
        ).fetchall()
        states = {state.value: state for state in JobState}
        states[SUBMITTING] = JobState.QUEUED
        return [JobBrief(r[0], r[1], r[2], r[3], states[r[4]], r[5], r[6], r[7]) for r in rows]

    def transitions_of_run(self, run_id: str) -> dict[str, list[tuple[str | None, str, float, str | None]]]:
        rows = self.connect().execute(
            "SELECT t.job_id, t.old_state, t.new_state, t.time, t.reason FROM transitions t "
            "JOIN jobs j ON j.job_id = t.job_id WHERE j.run_id=%s ORDER BY t.id",
            (run_id,),
        ).fetchall()
        found: dict[str, list[tuple[str | None, str, float, str | None]]] = {}
        for job_id, old, new, when, reason in rows:
            found.setdefault(str(job_id), []).append((old, str(new), float(when), reason))
        return found

    def transitions(self, job_id: str) -> list[tuple[str | None, str, float, str | None]]:
        rows = self.connect().execute(
            "SELECT old_state, new_state, time, reason FROM transitions WHERE job_id=%s ORDER BY id", (job_id,)
        ).fetchall()
        return [(r[0], str(r[1]), float(r[2]), r[3]) for r in rows]

    # audit
    def record_policy_decision(
        self, run_id: str, site: str, subject: str | None, groups: Sequence[str], allowed: bool, rule: str
    ) -> None:
        self.connect().execute(
            "INSERT INTO policy_audit(time, run_id, site, subject, groups, allowed, rule) "
            "VALUES (%s,%s,%s,%s,%s,%s,%s)",
            (time.time(), run_id, site, subject, json.dumps(list(groups)), int(allowed), rule),
        )

    def policy_decisions(self, run_id: str | None = None) -> list[dict[str, object]]:
        query = "SELECT time, run_id, site, subject, groups, allowed, rule FROM policy_audit"
        params: tuple[str, ...] = ()
        if run_id:
            query += " WHERE run_id=%s"
            params = (run_id,)
        rows = self.connect().execute(query + " ORDER BY id", params).fetchall()
        return [
            {"time": r[0], "run_id": r[1], "site": r[2], "subject": r[3],
             "groups": json.loads(r[4]), "allowed": bool(r[5]), "rule": r[6]}
            for r in rows
        ]

    # the fronts' records
    def cwl_generation(self, base_key: str) -> int:
        row = self.connect().execute(
            "SELECT generation FROM cwl_generations WHERE base_key=%s", (base_key,)
        ).fetchone()
        return int(row[0]) if row else 0

    def end_cwl_generation(self, base_key: str, generation: int) -> None:
        self.connect().execute(
            "INSERT INTO cwl_generations (base_key, generation) VALUES (%s, %s) ON CONFLICT (base_key) "
            "DO UPDATE SET generation = GREATEST(cwl_generations.generation, excluded.generation)",
            (base_key, generation + 1),
        )

    def save_jdl_jobs(self, rows: Sequence[JdlJobRow]) -> None:
        with self.transaction() as db, db.cursor() as cur:
            cur.executemany(
                "INSERT INTO jdl_jobs(run_id, key, jdl, outputs, output_dir, perusal) VALUES (%s,%s,%s,%s,%s,%s) "
                "ON CONFLICT (run_id, key) DO UPDATE SET jdl=excluded.jdl, outputs=excluded.outputs, "
                "output_dir=excluded.output_dir, perusal=excluded.perusal",
                [(r.run_id, r.key, r.jdl, json.dumps([list(o) for o in r.outputs]), r.output_dir,
                  r.perusal_interval) for r in rows],
            )

    def jdl_job(self, run_id: str, key: str) -> JdlJobRow | None:
        row = self.connect().execute(
            "SELECT jdl, outputs, output_dir, perusal FROM jdl_jobs WHERE run_id=%s AND key=%s", (run_id, key)
        ).fetchone()
        if row is None:
            return None
        outputs = tuple((str(name), None if dest is None else str(dest)) for name, dest in json.loads(row[1]))
        return JdlJobRow(run_id, key, str(row[0]), outputs, str(row[2]), row[3])
