"""The state store's interface: runs, jobs, backend ids, every state transition, the policy audit
and the fronts' own records (CWL generations, JDL sandboxes).

One store object is opened per process, at its entry point (the `esap` commands, esap-cwltool,
the Snakemake plugin, the local supervisor), and handed to everything that needs it. This
interface says nothing about how the store keeps its data: `sqlite_store.SQLiteStore` is the
implementation for one user's machine, `postgres_store.PostgresStore` the one that a platform's
workers on several hosts share (both run `sql_store.SQLStore`'s queries); `stores.open_store()`
chooses between them.

A job is recorded before its submission is sent, so a crash never loses a submitted job.
"""

from __future__ import annotations

import json
import posixpath
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import NamedTuple

from .job import JobSpec
from .states import JobState, JobStatus

# Marks a job recorded whose submission has not been confirmed by the backend yet.
SUBMITTING = "submitting"

# Job numbers of 8 decimal digits are skipped: releases before job numbers gave jobs ids
# ending in 8 hexadecimal digits, and such a number could spell one of them.
_FIRST_SKIPPED = 10_000_000
_SKIP = 90_000_000


def job_id_of(run_id: str, number: int) -> str:
    """The esap id of the run's job number `number` (1, 2, ...), e.g. "r1a2b3c4d5e6.7"."""
    return f"{run_id}.{number if number < _FIRST_SKIPPED else number + _SKIP}"


@dataclass(frozen=True, slots=True)
class JobPaths:
    """Where a job runs and where its standard streams go (paths on its site)."""

    workdir: str
    stdout: str
    stderr: str


def derived_paths(work_root: str, job_id: str, spec: JobSpec) -> JobPaths:
    """A job's paths from its site's work root: its own directory `<work root>/<run>/<n>` holds
    the default std streams and is the working directory unless the job names one (like sbatch,
    the CLI runs a job where it was submitted from). `work_root` is normalised (see work_root_of).
    """
    home = job_home(work_root, job_id)
    workdir = spec.cwd or home
    return JobPaths(
        workdir=workdir,
        stdout=_stream_path(workdir, spec.stdout, home, "esap.out"),
        stderr=_stream_path(workdir, spec.stderr, home, "esap.err"),
    )


def work_root_of(work_root: str) -> str:
    """A site's work root as derived_paths expects it (normalised once per site, then shared)."""
    return str(PurePosixPath(work_root))


def job_home(work_root: str, job_id: str) -> str:
    run_id, _, number = job_id.partition(".")
    if work_root == ".":  # PurePosixPath("") (a relative work root, the current directory)
        return f"{run_id}/{number}"
    return posixpath.join(work_root, run_id, number)


def _stream_path(workdir: str, given: str | None, home: str, default: str) -> str:
    if not given:
        return posixpath.join(home, default)
    return given if given.startswith("/") else str(PurePosixPath(workdir) / given)


@dataclass(frozen=True, slots=True)
class JobRecord:
    job_id: str
    run_id: str
    key: str
    name: str
    site: str
    native_id: str | None
    state: JobState
    spec: JobSpec
    # Where the job's files are: the paths as recorded, or the normalised work root of its site
    # from which they follow (derived_paths). A run of 100,000 jobs then holds no path strings
    # per job: they are made when read.
    location: JobPaths | str
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    attempt: int = 0
    missing_outputs: tuple[str, ...] = ()
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    cause: str | None = None  # causes.Cause of a failure
    node: str | None = None  # where it ran, where the backend tells
    retry_note: str | None = None  # a retry: what changed in its request; a failure: why no retry

    @property
    def short_id(self) -> str:
        return self.job_id

    @property
    def paths(self) -> JobPaths:
        if isinstance(self.location, JobPaths):
            return self.location
        return derived_paths(self.location, self.job_id, self.spec)

    @property
    def workdir(self) -> str:
        return self.paths.workdir

    @property
    def stdout(self) -> str:
        return self.paths.stdout

    @property
    def stderr(self) -> str:
        return self.paths.stderr

    def status(self) -> JobStatus:
        paths = self.paths
        return JobStatus(
            state=self.state,
            exit_code=self.exit_code,
            signal=self.signal,
            reason=self.reason,
            cause=self.cause,
            node=self.node,
            stdout_path=paths.stdout,
            stderr_path=paths.stderr,
            time=self.updated,
        )


@dataclass(frozen=True)
class JdlJobRow:
    """What `esap output` needs to know about a JDL job."""

    run_id: str
    key: str
    jdl: str  # the JDL file
    outputs: tuple[tuple[str, str | None], ...]  # (file in the sandbox, destination URI or None)
    output_dir: str
    perusal_interval: int | None


class UsageRow(NamedTuple):
    job_id: str
    step: str  # the workflow step, Snakemake rule or job name
    site: str
    max_memory_mib: int | None
    wall_s: float | None


class JobBrief(NamedTuple):
    """A job's place and state without its description, as `esap status --watch` reads it."""

    job_id: str
    name: str
    site: str
    native_id: str | None
    state: JobState
    reason: str | None
    created: float
    updated: float


# The columns of table jobs in the order of record_of_row.
JOB_COLUMNS = (
    "job_id, run_id, key, name, site, native_id, state, spec, workdir, stdout, stderr, "
    "exit_code, signal, reason, attempt, missing_outputs, created, updated, cause, node, retry_note"
)


def record_of_row(row: Sequence[object]) -> JobRecord:
    """A JobRecord from the JOB_COLUMNS of a row of table jobs (either engine)."""
    state_text = str(row[6])
    return JobRecord(
        job_id=str(row[0]),
        run_id=str(row[1]),
        key=str(row[2]),
        name=str(row[3]),
        site=str(row[4]),
        native_id=None if row[5] is None else str(row[5]),
        state=JobState.QUEUED if state_text == SUBMITTING else JobState(state_text),
        spec=JobSpec.from_json(str(row[7])),
        location=JobPaths(workdir=str(row[8]), stdout=str(row[9]), stderr=str(row[10])),
        exit_code=None if row[11] is None else int(str(row[11])),
        signal=None if row[12] is None else int(str(row[12])),
        reason=None if row[13] is None else str(row[13]),
        attempt=int(str(row[14])),
        missing_outputs=tuple(json.loads(str(row[15]))),
        created=float(str(row[16])),
        updated=float(str(row[17])),
        cause=None if row[18] is None else str(row[18]),
        node=None if row[19] is None else str(row[19]),
        retry_note=None if row[20] is None else str(row[20]),
    )


class Store(ABC):
    """Where runs and jobs are recorded; safe for several processes at once."""

    @abstractmethod
    def describe(self) -> str:
        """Where the store is, for messages (a file, a server)."""

    # runs
    @abstractmethod
    def ensure_run(self, run_id: str, key: str, front: str) -> bool:
        """Record the run; True when it is new."""

    @abstractmethod
    def run_created(self, run_id: str) -> float | None: ...

    @abstractmethod
    def run(self, run_id: str) -> tuple[str, str, str, float] | None:
        """(run id, key, front, created) of a run, matched exactly; None when unknown."""

    @abstractmethod
    def update_run_metadata(self, run_id: str, values: dict[str, object]) -> None:
        """Merge what a front knows of its run (workflow file, inputs, outputs) into its record."""

    @abstractmethod
    def run_metadata(self, run_id: str) -> dict[str, object]: ...

    @abstractmethod
    def run_change_mark(self, run_id: str) -> tuple[int, float]:
        """(jobs, latest change) of a run: equal marks, nothing changed (one cheap query)."""

    @abstractmethod
    def latest_runs(self, limit: int = 20) -> list[tuple[str, str, str, float]]:
        """(run id, key, front, created) of the newest runs."""

    @abstractmethod
    def run_states(self, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
        """How many jobs of each run are in each state."""

    @abstractmethod
    def new_job_ids(self, run_id: str, count: int) -> list[str]:
        """`count` job ids of the run never handed out before, by any process (see job_id_of)."""

    # jobs
    @abstractmethod
    def add_jobs(self, records: Iterable[JobRecord]) -> None:
        """Record jobs before their submission is sent (state 'submitting')."""

    @abstractmethod
    def set_native_ids(self, pairs: Iterable[tuple[str, str]]) -> None:
        """(job id, scheduler id) of jobs whose submission the backend confirmed."""

    @abstractmethod
    def unsent(self, run_id: str) -> list[JobRecord]:
        """Jobs recorded but never confirmed as submitted (a crash between record and send)."""

    @abstractmethod
    def update_states(self, changes: Iterable[tuple[str, JobStatus]]) -> list[str]:
        """Apply status changes; final states are never left. Returns the job ids changed."""

    @abstractmethod
    def set_details(self, job_id: str, status: JobStatus) -> None:
        """Exit code, signal and reason of a job, kept where the status has none."""

    @abstractmethod
    def fill_details(self, changes: Iterable[tuple[str, JobStatus]]) -> None:
        """Exit code, signal and reason where the row has none yet (its state is left alone)."""

    @abstractmethod
    def set_retry_note(self, job_id: str, note: str) -> None:
        """Why a failed job was not retried (its retry would exceed a limit)."""

    @abstractmethod
    def set_missing_outputs(self, job_id: str, missing: Sequence[str]) -> None: ...

    @abstractmethod
    def jobs_of_run(self, run_id: str) -> list[JobRecord]: ...

    @abstractmethod
    def live_jobs(self, run_ids: Sequence[str]) -> list[JobRecord]:
        """The jobs of these runs that are sent and not final yet."""

    @abstractmethod
    def jobs_by_ids(self, job_ids: Sequence[str]) -> list[JobRecord]: ...

    @abstractmethod
    def job(self, ident: str, *, prefix: bool = False) -> JobRecord:
        """A job by its esap id or its scheduler id, matched exactly (ids.checked_id first); with
        `prefix`, by a prefix of its esap id that starts no other id. BadInput otherwise. Never a
        pattern (no SQL LIKE: `%` and `_` are characters like any other)."""

    @abstractmethod
    def latest_jobs(self, limit: int = 50) -> list[JobRecord]: ...

    @abstractmethod
    def job_states_of_run(self, run_id: str) -> list[JobBrief]:
        """The run's jobs without their descriptions (cheap enough to read every second)."""

    @abstractmethod
    def transitions_of_run(self, run_id: str) -> dict[str, list[tuple[str | None, str, float, str | None]]]:
        """Every recorded transition of the run's jobs, by job id, in order (one query)."""

    @abstractmethod
    def transitions(self, job_id: str) -> list[tuple[str | None, str, float, str | None]]:
        """(old state, new state, time, reason) of each change of the job, oldest first."""

    # usage history (right-sizing)
    @abstractmethod
    def record_usage(self, rows: Iterable[UsageRow]) -> None:
        """What ended jobs used, per (step, site); a job recorded twice keeps its first row."""

    @abstractmethod
    def usage_history(self, step: str, site: str, limit: int = 50) -> list[UsageRow]:
        """The newest recorded usage of a step on a site."""

    # audit
    @abstractmethod
    def record_policy_decision(
        self, run_id: str, site: str, subject: str | None, groups: Sequence[str], allowed: bool, rule: str
    ) -> None: ...

    @abstractmethod
    def policy_decisions(self, run_id: str | None = None) -> list[dict[str, object]]: ...

    # the fronts' records
    @abstractmethod
    def cwl_generation(self, base_key: str) -> int:
        """The current generation of a CWL workflow run (0 until one ended)."""

    @abstractmethod
    def end_cwl_generation(self, base_key: str, generation: int) -> None:
        """The generation ended: the next run of the same workflow starts generation + 1."""

    @abstractmethod
    def save_jdl_jobs(self, rows: Sequence[JdlJobRow]) -> None: ...

    @abstractmethod
    def jdl_job(self, run_id: str, key: str) -> JdlJobRow | None: ...
