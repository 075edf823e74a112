"""A backend for testing the core's status path: the test decides when a job fails.

Like slurmrestd v0.0.38, its poll reports states only; the exit code and reason come from
`explain`. The first backend made (the run's) waits for `release` before each poll, so a test
can let another reader (`esap status`) see a change first. It stands in for no scheduler.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from esap_executors.backends import Backend, FoundJob, Submission
from esap_executors.states import JobState, JobStatus

EXIT_CODE = 3
REASON = "NonZeroExitCode"


class ScriptedBackend(Backend):
    name = "scripted"
    instances: list[ScriptedBackend] = []
    states: dict[str, JobState] = {}
    release = threading.Event()
    others_explain = True  # False: a reader that records the failure without its details
    counter = itertools.count(1)
    lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.instances, cls.states, cls.release = [], {}, threading.Event()
        cls.others_explain = True

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        with self.lock:
            self.instances.append(self)

    @property
    def is_runs(self) -> bool:
        return self.instances[0] is self

    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        ids = []
        with self.lock:
            for _ in jobs:
                native = f"s{next(self.counter)}"
                # the first job runs until the test fails it; later attempts succeed
                self.states[native] = JobState.RUNNING if not self.states else JobState.COMPLETED
                ids.append(native)
        return ids

    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        if self.is_runs:
            self.release.wait(timeout=60)
        self.query_count += 1
        with self.lock:
            return {n: JobStatus(self.states[n]) for n in native_ids if n in self.states}

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not self.is_runs and not self.others_explain:
            return {}
        return {n: JobStatus(JobState.FAILED, exit_code=EXIT_CODE, reason=REASON) for n in native_ids}

    def cancel(self, native_ids: Sequence[str]) -> None:
        with self.lock:
            for native in native_ids:
                self.states[native] = JobState.CANCELLED

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        return []


def fail(native_id: str) -> None:
    with ScriptedBackend.lock:
        ScriptedBackend.states[native_id] = JobState.FAILED


def finish(native_id: str) -> None:
    with ScriptedBackend.lock:
        ScriptedBackend.states[native_id] = JobState.COMPLETED
