"""Runs survive a schedd restart and an executor killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import htcondor2 as htcondor
import pytest

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT, condor_admin, wait_until_pool_is_whole
from tests.support import ROOT


def wait_for(predicate: object, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.2)
    return False


@pytest.mark.stops_a_service
def test_jobs_complete_across_a_schedd_restart(catalogue: Catalogue, store: Store) -> None:
    requests = [JobRequest(key=f"r{i}", spec=make_spec(["sh", "-c", f"sleep 6; echo done {i}"])) for i in range(4)]
    with Run.open(f"htc-restart-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-local") as run:
        records = run.submit(requests)
        assert wait_for(lambda: any(r.state is JobState.RUNNING for r in run.snapshot().values()))
        restarted = subprocess.run(condor_admin("condor_restart", "-daemon", "schedd"),
                                   capture_output=True, text=True, timeout=60, check=False)
        assert restarted.returncode == 0, restarted.stderr
        final = run.wait(timeout=WAIT)
        # HTCondor runs a job at least once: one that finished while the schedd was down may
        # be started again after the restart (its directory gone by then); not ours to keep
        backend = run.backend("htcondor-local")
        backend.connection.run("cleanup", lambda schedd: schedd.act(
            htcondor.JobAction.Remove, f'EsapRunId == "{run.run_id}"'))
    assert wait_until_pool_is_whole() == [], "the pool is not whole after the schedd restart"
    assert [final[r.job_id].state for r in records] == [JobState.COMPLETED] * 4, \
        [(r.state, r.reason) for r in final.values()]
    for record in records:
        index = record.key[1:]
        assert Path(final[record.job_id].stdout).read_text().strip() == f"done {index}"


def test_killed_executor_resumes_without_resubmitting(catalogue: Catalogue, store: Store, work_root: Path) -> None:
    key = f"htc-kill-{uuid.uuid4()}"
    site_root = catalogue.get("htcondor-local").work_root
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.htcondor.child_run", key, site_root, "3"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert line.startswith("SUBMITTED"), line
    submitted = line.split()[1:]
    with Run.open(key, catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        assert sorted(r.native_id or "" for r in run.snapshot().values()) == sorted(submitted)
        again = run.submit([JobRequest(key=f"k{i}", spec=make_spec(["sleep", "4"])) for i in range(3)])
        final = run.wait(timeout=WAIT)
        backend = run.backend("htcondor-local")
        assert backend.action_count == 0  # nothing was sent again
        found = backend.find(run.run_id, since=run.since)
    assert sorted(r.native_id or "" for r in again) == sorted(submitted)
    assert all(r.state is JobState.COMPLETED for r in final.values())
    assert sorted(f.native_id for f in found) == sorted(submitted)  # the schedd has exactly these


def test_jobs_sent_but_not_recorded_are_found_not_sent_again(catalogue: Catalogue, store: Store) -> None:
    """A crash between the schedd's answer and the store: the run finds them by its run id."""
    from esap_executors.runs import _submission

    key = f"htc-lost-ids-{uuid.uuid4()}"
    requests = [JobRequest(key=f"k{i}", spec=make_spec(["sh", "-c", f"echo {i}"])) for i in range(3)]
    with Run.open(key, catalogue=catalogue, store=store, default_site="htcondor-local") as crashed:
        records, _ = crashed.prepare(requests)
        store.add_jobs(records)  # recorded before sending, as the core does
        for record in records:
            Path(record.workdir).mkdir(parents=True, exist_ok=True)
        natives = crashed.backend("htcondor-local").submit([_submission(r) for r in records])
        # ... and the process dies before the native ids reach the store
    with Run.open(key, catalogue=catalogue, store=store, default_site="htcondor-local") as resumed:
        backend = resumed.backend("htcondor-local")
        assert backend.action_count == 0  # found by find(), nothing sent again
        assert sorted(r.native_id or "" for r in resumed.snapshot().values()) == sorted(natives)
        final = resumed.wait(timeout=WAIT)
    assert all(r.state is JobState.COMPLETED for r in final.values())
