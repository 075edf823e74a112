from __future__ import annotations

from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.states import JobState, JobStatus
from esap_executors.store import JobPaths, JobRecord
from esap_executors.stores import open_store


def _record(job_id: str) -> JobRecord:
    return JobRecord(job_id=job_id, run_id="r1", key=job_id, name=job_id, site="local", native_id=None,
                     state=JobState.QUEUED, spec=JobSpec(argv=("true",)),
                     location=JobPaths(workdir="/tmp", stdout="/tmp/o", stderr="/tmp/e"))


def test_final_states_are_never_left_and_requeue_is_allowed(store_location: str | Path) -> None:
    store = open_store(store_location)
    store.ensure_run("r1", "key", "test")
    store.add_jobs([_record("r1.a")])
    store.set_native_ids([("r1.a", "42")])
    assert store.update_states([("r1.a", JobStatus(JobState.RUNNING))]) == ["r1.a"]
    assert store.update_states([("r1.a", JobStatus(JobState.QUEUED, reason="requeued"))]) == ["r1.a"]
    assert store.update_states([("r1.a", JobStatus(JobState.HELD))]) == ["r1.a"]
    assert store.update_states([("r1.a", JobStatus(JobState.COMPLETED, exit_code=0))]) == ["r1.a"]
    assert store.update_states([("r1.a", JobStatus(JobState.FAILED, exit_code=1))]) == []
    assert store.update_states([("r1.a", JobStatus(JobState.RUNNING))]) == []
    job = store.job("r1.a")
    assert job.state is JobState.COMPLETED and job.exit_code == 0
    history = [new for _, new, _, _ in store.transitions("r1.a")]
    assert history == ["queued", "running", "queued", "held", "completed"]


def test_job_recorded_before_submission_is_visible_as_unsent(store_location: str | Path) -> None:
    store = open_store(store_location)
    store.ensure_run("r1", "key", "test")
    store.add_jobs([_record("r1.b")])
    assert [r.job_id for r in store.unsent("r1")] == ["r1.b"]
    store.set_native_ids([("r1.b", "7")])
    assert store.unsent("r1") == []
    assert store.job("7").job_id == "r1.b"  # found by scheduler id too


def test_state_helpers() -> None:
    assert JobState.COMPLETED.is_final and not JobState.HELD.is_final
    assert not JobState.FAILED.can_become(JobState.RUNNING)
    assert JobState.RUNNING.can_become(JobState.QUEUED)
    assert "exit code 3" in JobStatus(JobState.FAILED, exit_code=3, reason="FAILED").describe()
