"""Why a job failed, in one set shared by every backend: the cause a retry policy acts on.

Backends name the cause where their scheduler says it plainly (SLURM's OUT_OF_MEMORY state, the
local supervisor's memory kill); for the rest the cause is read from the reason each backend
already normalises (SLURM state words, HTCondor hold and removal reasons, Rosetta's heartbeat).
"""

from __future__ import annotations

import re
from enum import StrEnum

from .states import JobState, JobStatus


class Cause(StrEnum):
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    CANCELLED = "CANCELLED"
    HELD = "HELD"
    EXIT_CODE = "EXIT_CODE"


# In order: the first that matches the reason wins (a memory kill also says "killed").
_PATTERNS: tuple[tuple[Cause, re.Pattern[str]], ...] = (
    (Cause.OUT_OF_MEMORY, re.compile(
        r"OUT_OF_MEMORY|out of memory|\boom\b|memory (limit|usage) exceeded|exceeded (its |the )?memory"
        r"|memory usage .* exceeded|MemoryExceeded|over (its |the )?(cgroup )?memory limit", re.IGNORECASE)),
    (Cause.TIMEOUT, re.compile(
        r"\bTIMEOUT\b|\bDEADLINE\b|time ?limit|walltime exceeded|duration exceeded|JobDurationExceeded"
        r"|JobExecuteExceeded|allowed (job )?(duration|execute)", re.IGNORECASE)),
    (Cause.PREEMPTED, re.compile(r"PREEMPT|evicted|vacated", re.IGNORECASE)),
    (Cause.NODE_FAIL, re.compile(
        r"NODE_FAIL|BOOT_FAIL|node fail|heartbeat lost|supervisor lost|\bnode .*(down|lost)", re.IGNORECASE)),
)


def cause_of(status: JobStatus) -> Cause | None:
    """The cause of a failed, cancelled or held job (None for any other state)."""
    if status.cause:
        return Cause(status.cause)
    if status.state not in (JobState.FAILED, JobState.CANCELLED, JobState.HELD):
        return None
    reason = status.reason or ""
    for cause, pattern in _PATTERNS:
        if pattern.search(reason):
            return cause
    if status.state is JobState.HELD or reason.startswith("held:"):
        return Cause.HELD
    if status.state is JobState.CANCELLED:
        return Cause.CANCELLED
    return Cause.EXIT_CODE


def parse_cause(text: str, *, field: str = "cause") -> Cause:
    from .errors import BadInput

    try:
        return Cause(text.strip().upper())
    except ValueError:
        raise BadInput(f"{text!r} is not a failure cause (one of {', '.join(Cause)})", field=field) from None
