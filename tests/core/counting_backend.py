"""A backend for testing the core's poller: it counts queries and completes jobs on request.

It stands in for no scheduler; the backends' own tests run against real SLURM and HTCondor.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence

from esap_executors.backends import Backend, Capabilities, FoundJob, Submission
from esap_executors.states import JobState, JobStatus

_STATES: dict[str, JobState] = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count(1)


class CountingBackend(Backend):
    name = "counting"
    polls = 0

    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        ids = []
        with _LOCK:
            for _ in jobs:
                native = f"c{next(_COUNTER)}"
                _STATES[native] = JobState.RUNNING
                ids.append(native)
        return ids

    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        self.query_count += 1
        type(self).polls += 1
        with _LOCK:
            return {n: JobStatus(_STATES[n], exit_code=0 if _STATES[n] is JobState.COMPLETED else None)
                    for n in native_ids}

    def cancel(self, native_ids: Sequence[str]) -> None:
        with _LOCK:
            for native in native_ids:
                _STATES[native] = JobState.CANCELLED

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        self.query_count += 1
        return []


def finish_all() -> None:
    with _LOCK:
        for native in _STATES:
            if _STATES[native] is JobState.RUNNING:
                _STATES[native] = JobState.COMPLETED


class TransferringBackend(CountingBackend):
    """A new backend that only declares what it can do: file transfer, its own authentication methods."""

    name = "transferring"
    capabilities = Capabilities(file_transfer=True, auth_methods=("PASSWORD",))
