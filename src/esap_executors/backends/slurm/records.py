"""What the scheduler says about one job, whichever way it was asked, and its JobState."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import BadInput
from ...formats.hostlists import expand_index_ranges
from ...formats.memory import sacct_memory_mib
from ...states import JobState, JobStatus

QUEUED_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "RESIZING"}
HELD_STATES = {"SUSPENDED", "STOPPED", "REQUEUE_HOLD", "RESV_DEL_HOLD"}
RUNNING_STATES = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "POWER_UP_NODE", "UPDATE_DB"}
FAILED_STATES = {
    "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "PREEMPTED",
    "SPECIAL_EXIT",
}
CANCELLED_STATES = {"CANCELLED", "REVOKED"}
# SLURM's failure states that name their cause (causes.Cause values)
STATE_CAUSES = {
    "TIMEOUT": "TIMEOUT", "DEADLINE": "TIMEOUT", "OUT_OF_MEMORY": "OUT_OF_MEMORY",
    "NODE_FAIL": "NODE_FAIL", "BOOT_FAIL": "NODE_FAIL", "PREEMPTED": "PREEMPTED",
}


@dataclass(frozen=True)
class SlurmRecord:
    """One scheduler job (an array task counts as one), as sacct or slurmdb reports it."""

    native_id: str  # "123" or "123_4"
    state: str  # SLURM's word, upper case, without "by <uid>"
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    comment: str = ""
    name: str = ""
    node_list: str = ""
    elapsed: str = ""
    max_rss: str = ""  # the batch step's peak (sacct's MaxRSS)
    total_cpu: str = ""
    req_mem: str = ""  # the job's memory request per node (sacct's ReqMem)
    stdout: str | None = None
    stderr: str | None = None


def normal_state(text: str) -> str:
    """'CANCELLED by 0' -> 'CANCELLED'; REST lists like ['COMPLETED'] are joined earlier."""
    return text.strip().split(" ", 1)[0].upper() if text else ""


def job_state(slurm_state: str, reason: str | None = None) -> JobState:
    state = normal_state(slurm_state)
    if state in QUEUED_STATES:
        if reason and reason.startswith("JobHeld"):
            return JobState.HELD
        return JobState.QUEUED
    if state in RUNNING_STATES:
        return JobState.RUNNING
    if state == "COMPLETED":
        return JobState.COMPLETED
    if state in FAILED_STATES:
        return JobState.FAILED
    if state in CANCELLED_STATES:
        return JobState.CANCELLED
    if state in HELD_STATES:
        return JobState.HELD
    return JobState.UNKNOWN  # never taken for success


def exited_by_itself(record: SlurmRecord) -> bool:
    """SLURM's FAILED for a job whose program ended with a non-zero exit code (no signal)."""
    return normal_state(record.state) == "FAILED" and record.exit_code not in (None, 0) and not record.signal


def killed_for_memory(record: SlurmRecord) -> bool:
    """A job SLURM killed for using more memory than it requested.

    Where memory is enforced by accounting (JobAcctGatherParams=OverMemoryKill, no cgroups),
    slurmstepd kills the step with SIGKILL and the job ends FAILED 0:9, not OUT_OF_MEMORY as
    cgroup enforcement says: a job so ended whose peak RSS reached its request ran out of memory.
    """
    if normal_state(record.state) != "FAILED" or record.signal != 9:
        return False
    try:
        used = sacct_memory_mib(record.max_rss, field="MaxRSS")
        requested = sacct_memory_mib(record.req_mem.rstrip("nN"), field="ReqMem")  # "50Mn" before 21.08
    except BadInput:
        return False
    return used is not None and requested is not None and requested > 0 and used >= requested


def to_status(record: SlurmRecord) -> JobStatus:
    state = job_state(record.state, record.reason)
    if exited_by_itself(record):
        # SLURM calls every non-zero exit code a failure. Whether it is one is for the job's
        # success codes (CWL successCodes) to say: the Tracker maps exit codes to states.
        state = JobState.COMPLETED
    reason = None
    cause = STATE_CAUSES.get(normal_state(record.state)) if state is JobState.FAILED else None
    if state is JobState.FAILED and cause is None and killed_for_memory(record):
        cause = reason = "OUT_OF_MEMORY"
    elif state is JobState.FAILED:
        reason = record.state if record.state != "FAILED" else (record.reason or None)
        if reason in (None, "None"):
            reason = "FAILED"
    elif state is JobState.HELD or state is JobState.UNKNOWN:
        reason = record.reason or record.state
    elif state is JobState.CANCELLED:
        reason = "CANCELLED"
    return JobStatus(
        state=state,
        exit_code=record.exit_code if state.is_final else None,
        signal=record.signal or None,
        reason=reason,
        cause=cause,
        stdout_path=record.stdout,
        stderr_path=record.stderr,
    )


def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """sacct's 'code:signal' -> (code, signal)."""
    if not text or ":" not in text:
        return None, None
    code, _, signal = text.partition(":")
    try:
        return int(code), int(signal)
    except ValueError:
        return None, None


def decode_wait_status(value: int) -> tuple[int | None, int | None]:
    """slurmctld's raw exit status (a wait(2) status) -> (exit code, signal)."""
    if value & 0x7F:
        return None, value & 0x7F
    return (value >> 8) & 0xFF, None


_PENDING_ARRAY = re.compile(r"^(\d+)_\[([^\]]+)\]$")


def expand_array_id(job_id: str) -> list[str]:
    """'123_[0-3,7%2]' (tasks not yet started) -> ['123_0', ..., '123_3', '123_7']."""
    match = _PENDING_ARRAY.match(job_id)
    if not match:
        return [job_id]
    base = match.group(1)
    return [f"{base}_{index}" for index in expand_index_ranges(match.group(2), field="JobID")]
