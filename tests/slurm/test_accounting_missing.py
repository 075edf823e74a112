"""Slurm 24.05+ over REST: the controller's jobs/state says a job failed but not its exit code,
which accounting (slurmdbd) gives. A job whose accounting record never comes (no slurmdbd, or one
down for long) must still end: FAILED, "exit code unknown", after the site's accounting_wait.

Accounting is made to miss without stopping the shared slurmdbd: the backend asks it for the
job's run in a time window that starts tomorrow, where it holds no record."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from esap_executors.backends.slurm import NO_ACCOUNTING, SlurmBackend
from esap_executors.sites import Catalogue
from esap_executors.states import JobState

from .conftest import CLUSTERS, JobRequest, require_cluster, shell


@pytest.mark.slurm_version
@pytest.mark.parametrize("version", ["24.11", "26.05"])  # jobs/state: Slurm 24.05 and later
def test_a_failed_job_without_an_accounting_record_ends_failed_with_its_exit_code_unknown(
        new_run, catalogue: Catalogue, version: str) -> None:
    cluster = CLUSTERS[version]
    require_cluster(cluster)
    site_name = cluster.sites[1]  # the REST site
    run = new_run()
    (job,) = run.submit([JobRequest("fails", shell("exit 3", walltime="1m"), site=site_name)])
    assert job.native_id is not None
    site = catalogue.get(site_name)
    backend = SlurmBackend(replace(site, options={**site.options, "accounting_wait": 3}))
    tomorrow = time.time() + 86400
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = backend.poll([job.native_id], run_id=run.run_id, since=tomorrow)[job.native_id]
        seen.append(status.state)
        if status.state.is_final:
            break
        time.sleep(0.5)
    assert seen[-1] is JobState.FAILED, seen
    assert status.reason == NO_ACCOUNTING and status.exit_code is None
    # the run itself, whose accounting answers, has the exit code
    final = run.wait(timeout=120)
    assert [(r.state, r.exit_code) for r in final.values()] == [(JobState.FAILED, 3)]
