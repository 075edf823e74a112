"""The state store behaves the same on SQLite and on PostgreSQL (ESAP_STATE_URL=postgresql://...)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors import state_schema
from esap_executors.errors import BadInput, EsapError
from esap_executors.job import JobSpec
from esap_executors.states import JobState, JobStatus
from esap_executors.store import JdlJobRow, JobPaths, JobRecord
from esap_executors.stores import open_store


def _record(job_id: str, run_id: str = "r1", created: float = 1.0) -> JobRecord:
    return JobRecord(job_id=job_id, run_id=run_id, key=f"key-{job_id}", name=f"name-{job_id}", site="local",
                     native_id=None, state=JobState.QUEUED, spec=JobSpec(argv=("echo", "a b")),
                     location=JobPaths(workdir="/w", stdout="/w/o", stderr="/w/e"), created=created, updated=created)


def test_runs_are_recorded_once_and_read_back(store_location: str | Path) -> None:
    store = open_store(store_location)
    assert store.ensure_run("r1", "key one", "cli") is True
    assert store.ensure_run("r1", "key one", "cli") is False
    store.ensure_run("r2", "key two", "cwl")
    run = store.run("r1")
    assert run is not None and run[:3] == ("r1", "key one", "cli")
    assert store.run("r") is None  # matched exactly
    assert store.run_created("r1") == run[3]
    assert [r[0] for r in store.latest_runs(1)] == ["r2"]
    store.update_run_metadata("r1", {"workflow": "wf.cwl", "inputs": {"x": 1}})
    store.update_run_metadata("r1", {"outputs": ["o.txt"]})
    assert store.run_metadata("r1") == {"workflow": "wf.cwl", "inputs": {"x": 1}, "outputs": ["o.txt"]}
    assert store.run_metadata("r2") == {}


def test_jobs_are_found_by_exact_id_a_prefix_when_asked_and_scheduler_id(store_location: str | Path) -> None:
    store = open_store(store_location)
    store.ensure_run("r1", "key", "cli")
    store.add_jobs([_record("r1.1", created=1.0), _record("r1.2", created=2.0), _record("r1.10", created=3.0)])
    store.set_native_ids([("r1.1", "501"), ("r1.2", "502")])
    assert store.job("r1.1").native_id == "501"  # the exact id wins over the prefix of r1.10
    assert store.job("r1.2").spec.argv == ("echo", "a b")
    assert store.job("502").job_id == "r1.2"
    assert store.job("r1.10").state is JobState.QUEUED  # recorded, not sent: shown as queued
    with pytest.raises(BadInput, match="no job 'r1.'"):
        store.job("r1.")  # a prefix is not an id ...
    assert store.job("r1.1", prefix=True).job_id == "r1.1"  # ... unless asked for: the exact id still wins
    with pytest.raises(BadInput, match="starts more than one job id"):
        store.job("r1.", prefix=True)
    assert store.job("r1.2", prefix=True).job_id == "r1.2"
    with pytest.raises(BadInput, match="no job 'r9'"):
        store.job("r9")
    with pytest.raises(BadInput, match="no job"):
        store.job("r1_1")  # a wildcard of SQL is no wildcard here
    with pytest.raises(BadInput, match="no job"):
        store.job("r1_", prefix=True)
    for pattern in ("%", "r1%", "", "r1 .1"):
        with pytest.raises(BadInput):
            store.job(pattern, prefix=True)
    assert [r.job_id for r in store.unsent("r1")] == ["r1.10"]
    assert [r.job_id for r in store.live_jobs(["r1"])] == ["r1.1", "r1.2"]
    assert sorted(r.job_id for r in store.jobs_by_ids(["r1.2", "r1.10", "nope"])) == ["r1.10", "r1.2"]
    assert [r.job_id for r in store.jobs_of_run("r1")] == ["r1.1", "r1.2", "r1.10"]
    assert [r.job_id for r in store.latest_jobs(2)] == ["r1.10", "r1.2"]
    assert [b.job_id for b in store.job_states_of_run("r1")] == ["r1.1", "r1.2", "r1.10"]


def test_state_changes_keep_their_history_and_details(store_location: str | Path) -> None:
    store = open_store(store_location)
    store.ensure_run("r1", "key", "cli")
    store.add_jobs([_record("r1.1"), _record("r1.2")])
    store.set_native_ids([("r1.1", "11"), ("r1.2", "12")])
    mark = store.run_change_mark("r1")
    # one call may carry several changes of one job, applied in order
    changed = store.update_states([
        ("r1.1", JobStatus(JobState.RUNNING, time=10.0)),
        ("r1.1", JobStatus(JobState.FAILED, exit_code=3, reason="NonZeroExitCode", time=11.0)),
        ("r1.1", JobStatus(JobState.RUNNING, time=12.0)),  # final states are never left
        ("r1.2", JobStatus(JobState.RUNNING, time=10.5)),
        ("unknown", JobStatus(JobState.RUNNING)),
    ])
    assert changed == ["r1.1", "r1.1", "r1.2"]
    assert store.run_change_mark("r1") != mark
    failed = store.job("r1.1")
    assert (failed.state, failed.exit_code, failed.reason, failed.updated) == (
        JobState.FAILED, 3, "NonZeroExitCode", 11.0)
    assert [(old, new) for old, new, _, _ in store.transitions("r1.1")] == [
        (None, "queued"), ("queued", "running"), ("running", "failed")]
    assert list(store.transitions_of_run("r1")) == ["r1.1", "r1.2"]
    assert store.run_states(["r1", "r0"]) == {"r1": {"failed": 1, "running": 1}, "r0": {}}
    store.fill_details([("r1.1", JobStatus(JobState.FAILED, exit_code=9, signal=15, reason="later"))])
    assert (store.job("r1.1").exit_code, store.job("r1.1").signal) == (3, 15)  # kept where it had one
    store.set_details("r1.2", JobStatus(JobState.RUNNING, reason="on n1"))
    store.set_missing_outputs("r1.2", ["out.txt"])
    assert (store.job("r1.2").reason, store.job("r1.2").missing_outputs) == ("on n1", ("out.txt",))


def test_audit_and_the_fronts_records(store_location: str | Path) -> None:
    store = open_store(store_location)
    store.record_policy_decision("r1", "hpc", "alice", ["/escape"], True, "sites.yaml:4: group /escape")
    store.record_policy_decision("r2", "hpc", None, [], False, "sites.yaml:4: no token")
    assert [(d["subject"], d["groups"], d["allowed"]) for d in store.policy_decisions()] == [
        ("alice", ["/escape"], True), (None, [], False)]
    assert [d["rule"] for d in store.policy_decisions("r2")] == ["sites.yaml:4: no token"]
    assert store.cwl_generation("wf") == 0
    store.end_cwl_generation("wf", 0)
    store.end_cwl_generation("wf", 0)  # a late second ender does not go back
    assert store.cwl_generation("wf") == 1
    row = JdlJobRow("r1", "job", "/j/a.jdl", (("std.out", None), ("big.dat", "gsiftp://se/big")), "/out", 60)
    store.save_jdl_jobs([row])
    store.save_jdl_jobs([row])  # saved again (a resubmission): still one row
    assert store.jdl_job("r1", "job") == row
    assert store.jdl_job("r1", "other") is None


def test_a_store_opened_twice_migrates_once_and_a_newer_one_is_refused(postgres_state_url: str) -> None:
    import psycopg

    open_store(postgres_state_url)
    open_store(postgres_state_url)
    with psycopg.connect(postgres_state_url, autocommit=True) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(state_schema.VERSION,)]
        tables = {r[0] for r in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}
        assert {"runs", "jobs", "transitions", "policy_audit", "cwl_generations", "jdl_jobs", "run_metadata"} <= tables
        db.execute("UPDATE schema_version SET version = %s", (state_schema.VERSION + 1,))
    with pytest.raises(EsapError, match="schema version"):
        open_store(postgres_state_url)


def test_a_store_of_an_older_version_is_brought_up_to_date(postgres_state_url: str) -> None:
    """A server left at version 1 by an older release: its rows stay, the later migrations run."""
    import psycopg

    with psycopg.connect(postgres_state_url, autocommit=True) as db:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (1)")
        for statement in state_schema.POSTGRES_MIGRATIONS[0]:
            db.execute(statement)
        db.execute("INSERT INTO runs(run_id, key, front, created) VALUES ('rold', 'k', 'cli', 1)")
    store = open_store(postgres_state_url)
    assert store.new_job_ids("rold", 2) == ["rold.1", "rold.2"]
    store.update_run_metadata("rold", {"workflow": "w"})
    assert store.run_metadata("rold") == {"workflow": "w"}


def test_causes_retry_notes_and_usage_history_on_both_engines(store_location: str | Path) -> None:
    """Migrations 5 and 6: a failure's cause and node, a retry's note, what a step used."""
    from dataclasses import replace

    from esap_executors.store import UsageRow

    store = open_store(store_location)
    store.ensure_run("r1", "key", "cli")
    store.add_jobs([_record("r1.1"), replace(_record("r1.2"), attempt=1, retry_note="after OUT_OF_MEMORY: x")])
    store.set_native_ids([("r1.1", "501"), ("r1.2", "502")])
    store.update_states([("r1.1", JobStatus(JobState.FAILED, reason="OUT_OF_MEMORY", cause="OUT_OF_MEMORY",
                                            node="n1"))])
    failed, retried = store.jobs_of_run("r1")
    assert (failed.cause, failed.node, failed.retry_note) == ("OUT_OF_MEMORY", "n1", None)
    assert (retried.cause, retried.retry_note) == (None, "after OUT_OF_MEMORY: x")
    store.set_retry_note("r1.2", "not retried: memory is already 64 GiB")
    assert store.job("r1.2").retry_note == "not retried: memory is already 64 GiB"
    store.record_usage([UsageRow("r1.1", "step", "local", 100, 2.5), UsageRow("r1.2", "step", "local", 80, 1.0)])
    store.record_usage([UsageRow("r1.1", "step", "local", 999, 9.9)])  # a job's first row stays
    assert store.usage_history("step", "local") == [UsageRow("r1.2", "step", "local", 80, 1.0),
                                                    UsageRow("r1.1", "step", "local", 100, 2.5)]
    assert store.usage_history("step", "slurm") == []
