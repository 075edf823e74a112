"""The one set of failure causes, from the words each backend uses (the local supervisor's kills,
SLURM's states, HTCondor's hold reasons, Rosetta's runner)."""

from __future__ import annotations

from esap_executors.backends.local_supervisor import CANCEL_REASON, LOST_REASON, MEMORY_REASON, WALLTIME_REASON
from esap_executors.causes import Cause, cause_of
from esap_executors.states import JobState, JobStatus


def test_each_backends_words_name_one_cause() -> None:
    failed = JobState.FAILED
    cases = [
        (JobStatus(failed, reason=MEMORY_REASON.format(used=300, limit=200)), Cause.OUT_OF_MEMORY),
        (JobStatus(failed, reason=WALLTIME_REASON), Cause.TIMEOUT),
        (JobStatus(failed, reason=LOST_REASON), Cause.NODE_FAIL),
        (JobStatus(JobState.CANCELLED, reason=CANCEL_REASON), Cause.CANCELLED),
        (JobStatus(failed, reason="TIMEOUT: on n1 after 00:01:27"), Cause.TIMEOUT),
        (JobStatus(failed, reason="held: Job has gone over memory limit of 128 megabytes."), Cause.OUT_OF_MEMORY),
        (JobStatus(failed, reason="held: The job exceeded allowed execute duration of 00:00:20"), Cause.TIMEOUT),
        (JobStatus(failed, reason="held: Error from slot1@vm: Failed to execute '/x': No such file"), Cause.HELD),
        (JobStatus(failed, reason="heartbeat lost: the runner stopped reporting 40 s ago (killed, out of memory "
                                  "or time limit)", cause="NODE_FAIL"), Cause.NODE_FAIL),
        (JobStatus(failed, exit_code=3, reason="exit code"), Cause.EXIT_CODE),
        (JobStatus(failed, signal=9, reason="killed by signal 9"), Cause.EXIT_CODE),
    ]
    assert [cause_of(status) for status, _ in cases] == [cause for _, cause in cases]
    assert cause_of(JobStatus(JobState.COMPLETED)) is None
