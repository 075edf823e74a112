"""Job states: a small set, final states never left, every transition recorded."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    STAGING = "staging"
    RUNNING = "running"
    HELD = "held"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES

    def can_become(self, new: JobState) -> bool:
        """Final states are never left; any other state may move to any state."""
        if self.is_final:
            return False
        return new is not self


FINAL_STATES = frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED})


@dataclass(frozen=True, slots=True)
class JobStatus:
    """What a backend reports about one scheduler job."""

    state: JobState
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None  # the scheduler's words: TIMEOUT, HoldReason, ...
    cause: str | None = None  # causes.Cause of a failure, where the backend knows it for sure
    node: str | None = None  # where the job ran (host or node list), where the backend tells
    stdout_path: str | None = None
    stderr_path: str | None = None
    time: float = field(default_factory=time.time)

    def with_details(self, **changes: Any) -> JobStatus:
        return replace(self, **changes)

    def describe(self) -> str:
        text = self.state.value
        details = []
        if self.cause and self.cause not in (self.reason or ""):
            details.append(self.cause)
        if self.exit_code is not None:
            details.append(f"exit code {self.exit_code}")
        if self.signal:
            details.append(f"signal {self.signal}")
        if self.reason:
            details.append(self.reason)
        if details:
            text += " (" + ", ".join(details) + ")"
        return text
