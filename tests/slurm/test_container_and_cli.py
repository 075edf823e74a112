"""A job in an apptainer container, and `esap run --site ... -- CMD` through the CLI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from esap_executors.job import Container, make_spec
from tests.support import esap

from .conftest import SITES, JobRequest, apptainer_ready

pytestmark = pytest.mark.slurm


@pytest.mark.slurm_host  # apptainer is installed on the host, not in the newer clusters' roots
def test_job_in_apptainer_container(slurm, new_run) -> None:
    why_not = apptainer_ready()
    if why_not:
        pytest.skip(why_not)
    run = new_run()
    check = "test -x /bin/busybox && test ! -e /etc/slurm/slurm.conf && echo inside $(pwd) $GREETING"
    records = run.submit([
        JobRequest(f"{site}-container", make_spec(["sh", "-c", check], container=Container("busybox"),
                                                  env={"GREETING": "hello"}), site=site)
        for site in SITES
    ])
    final = run.wait(timeout=180)
    for record in records:
        done = final[record.job_id]
        assert done.state.value == "completed", (done, Path(done.stderr).read_text()[-2000:])
        assert Path(done.stdout).read_text().split() == ["inside", done.workdir, "hello"]


def test_esap_run_cli(state_dir, site: str) -> None:
    result = esap("run", "--site", site, "--", "/bin/bash", "-c", 'echo "job=$SLURM_JOB_ID"; exit 4',
                  timeout=180)
    assert result.returncode == 1, result.stderr  # the job failed: esap says so
    assert re.search(r"job=\d+", result.stdout), result.stdout
    assert "exit code 4" in result.stderr, result.stderr
    ok = esap("run", "--site", site, "--", "/bin/bash", "-c", 'echo "job=$SLURM_JOB_ID"', timeout=180)
    assert ok.returncode == 0, ok.stderr
    assert re.search(r"job=\d+", ok.stdout), ok.stdout
