"""Many jobs: one schedd transaction, status with no schedd query, a bounded fallback."""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path

from esap_executors.backends import backend_class
from esap_executors.backends.base import Submission
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT, with_options


def test_300_jobs_go_in_one_transaction_and_complete_without_queries(catalogue: Catalogue, store: Store) -> None:
    requests = [JobRequest(key=f"j{i}", spec=make_spec(["sh", "-c", f"echo {i}"])) for i in range(300)]
    with Run.open(f"htc-300-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        records = run.submit(requests)
        backend = run.backend("htcondor-local")
        assert backend.action_count == 1  # one schedd submission for all 300
        clusters = {r.native_id.split(".")[0] for r in records if r.native_id}
        assert len(clusters) == 1
        assert sorted(int((r.native_id or "").split(".")[1]) for r in records) == list(range(300))
        final = run.wait(timeout=600)  # generous: the pool may be shared with other work
        queries = backend.query_count
    assert all(r.state is JobState.COMPLETED for r in final.values()), {r.state for r in final.values()}
    by_key = {r.key: r for r in final.values()}
    assert Path(by_key["j123"].stdout).read_text().strip() == "123"
    assert queries == 0


def test_max_array_size_splits_same_shaped_jobs_into_smaller_clusters(catalogue: Catalogue, store: Store) -> None:
    site = catalogue.get("htcondor-local")
    catalogue.sites["htcondor-local"] = dataclasses.replace(
        site, limits=dataclasses.replace(site.limits, max_array_size=3))
    requests = [JobRequest(key=f"j{i}", spec=make_spec(["sh", "-c", f"echo {i}"])) for i in range(7)]
    with Run.open(f"htc-split-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        records = run.submit(requests)
        final = run.wait(timeout=WAIT)
    assert [r.state for r in final.values()] == [JobState.COMPLETED] * 7
    procs: dict[str, int] = {}
    for record in records:
        cluster_id = str(record.native_id).split(".")[0]
        procs[cluster_id] = procs.get(cluster_id, 0) + 1
    assert sorted(procs.values()) == [1, 3, 3]  # never more than 3 procs in one cluster
    assert Path({r.key: r for r in final.values()}["j6"].stdout).read_text() == "6\n"


def test_fallback_costs_two_queries_per_poll_however_many_jobs(catalogue: Catalogue, store: Store) -> None:
    """With the event log considered silent at once, each poll makes one queue query and at
    most one history query for all jobs."""
    with_options(catalogue, "htcondor-local", log_silence=0)
    site = catalogue.get("htcondor-local")
    backend = backend_class("htcondor")(site)
    run_id = "rfallback" + uuid.uuid4().hex[:6]
    jobs = []
    for i in range(20):
        workdir = f"{site.work_root}/{run_id}/{i}"
        jobs.append(Submission(job_id=f"{run_id}.{i}", run_id=run_id, name="f", spec=make_spec(["sleep", "1"]),
                               workdir=workdir, stdout=f"{workdir}/out", stderr=f"{workdir}/err"))
    backend.validate(jobs)
    natives = backend.submit(jobs)
    since = time.time() - 5
    per_poll = []
    states: dict[str, JobState] = {}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        before = backend.query_count
        statuses = backend.poll(natives, run_id=run_id, since=since)
        per_poll.append(backend.query_count - before)
        states = {n: s.state for n, s in statuses.items()}
        if all(s.is_final for s in states.values()):
            break
        time.sleep(0.5)
    backend.close()
    assert all(s is JobState.COMPLETED for s in states.values()), states
    assert max(per_poll) <= 2 and sum(per_poll) >= 1, per_poll


def test_fallback_alone_sees_completion_when_the_log_is_lost(catalogue: Catalogue, store: Store,
                                                            work_root: Path) -> None:
    """A log that was lost (or never reached this machine): queue + history settle the run."""
    with_options(catalogue, "htcondor-local", log_silence=0.5)
    site = catalogue.get("htcondor-local")
    backend = backend_class("htcondor")(site)
    run_id = "rlost" + uuid.uuid4().hex[:6]
    jobs = []
    for i in range(3):
        workdir = f"{site.work_root}/{run_id}/{i}"
        spec = make_spec(["sh", "-c", f"exit {i}"])
        jobs.append(Submission(job_id=f"{run_id}.{i}", run_id=run_id, name="l", spec=spec,
                               workdir=workdir, stdout=f"{workdir}/out", stderr=f"{workdir}/err"))
    natives = backend.submit(jobs)
    since = time.time() - 5
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # done, as its own event log says
        if all(s.state.is_final for s in backend.poll(natives, run_id=run_id, since=since).values()):
            break
        time.sleep(0.5)
    backend.close()
    elsewhere = dataclasses.replace(site, work_root=str(work_root / "no-log-here"))
    fresh = backend_class("htcondor")(elsewhere)
    statuses = {}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        statuses = fresh.poll(natives, run_id=run_id, since=since)
        if all(s.state.is_final for s in statuses.values()):
            break
        time.sleep(0.6)
    fresh.close()
    assert [statuses[n].state for n in natives] == [JobState.COMPLETED] * 3
    assert [statuses[n].exit_code for n in natives] == [0, 1, 2]
    assert fresh.query_count >= 2  # the queue (they left it), then the history


def test_a_job_the_schedd_never_heard_of_is_unknown_not_queued(catalogue: Catalogue) -> None:
    with_options(catalogue, "htcondor-local", log_silence=0)
    backend = backend_class("htcondor")(catalogue.get("htcondor-local"))
    run_id = "rnone" + uuid.uuid4().hex[:6]
    status = backend.poll(["999999.0"], run_id=run_id, since=time.time() - 5)["999999.0"]
    backend.close()
    assert status.state is JobState.UNKNOWN
    assert status.reason and "neither in the schedd's queue nor in its history" in status.reason
    assert backend.query_count == 2
