"""The executor SIGKILLed mid-run: reopening the run reattaches, nothing is submitted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

import pytest

from esap_executors.runs import Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import EXAMPLE_SITES

from .conftest import Cluster, JobRequest, sacct_count, shell

pytestmark = pytest.mark.slurm

CHILD = """
import sys, time
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
run = Run.open(sys.argv[2], catalogue=Catalogue.load(sys.argv[1]), store=open_store())
sites = sys.argv[3].split(",")
run.submit([JobRequest(f"{s}-{i}", make_spec(["/bin/bash", "-c", "sleep 6"]), site=s)
            for s in sites for i in range(5)]
           + [JobRequest(f"{s}-single", make_spec(["/bin/bash", "-c", "sleep 6"], cores=2), site=s) for s in sites])
print("SUBMITTED", flush=True)
time.sleep(600)
"""


def requests(sites: tuple[str, ...]) -> list[JobRequest]:
    spec = shell("sleep 6")
    return ([JobRequest(f"{s}-{i}", spec, site=s) for s in sites for i in range(5)]
            + [JobRequest(f"{s}-single", shell("sleep 6", cores=2), site=s) for s in sites])


def test_sigkilled_executor_resumes_without_resubmitting(cluster: Cluster, state_dir) -> None:
    catalogue = Catalogue.load(EXAMPLE_SITES)  # work_root follows this test's state directory
    key = f"slurm-resume-{uuid.uuid4().hex}"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(EXAMPLE_SITES), key, ",".join(cluster.sites)],
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "SUBMITTED"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()

    run = Run.open(key, catalogue=catalogue, store=open_store())
    try:
        before = {r.key: r.native_id for r in run.snapshot().values()}
        assert len(before) == 12 and all(before.values()), before
        # the scheduler knows every job of the run by its run id (crash-recovery lookup)
        # (both sites are the same cluster: each finds the jobs of both)
        everything = {r.job_id: r.native_id for r in run.snapshot().values()}
        for site in cluster.sites:
            found = {f.job_id: f.native_id for f in run.backend(site).find(run.run_id, since=run.since)}
            assert found == everything, site
        again = run.submit(requests(cluster.sites))
        assert {r.key: r.native_id for r in again} == before  # reattached, not resubmitted
        final = run.wait(timeout=240)
        assert {r.state for r in final.values()} == {JobState.COMPLETED}, final
    finally:
        run.close()
    assert sacct_count(run.run_id, cluster) == 12
