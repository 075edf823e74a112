"""slurmctld restarted in the middle of a run: every job still tracked, none falsely failed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from esap_executors.states import JobState

from .conftest import SITES, SLURM_SH, JobRequest, shell

pytestmark = pytest.mark.slurm

CTLD_PID = Path(os.environ.get("SLURM_CI_DIR", "/var/lib/slurm-ci")) / "run" / "slurmctld.pid"


@pytest.mark.slurm_host
@pytest.mark.stops_a_service
def test_slurmctld_restart_mid_run(slurm, new_run) -> None:
    if os.geteuid() != 0 or not CTLD_PID.exists():
        pytest.skip("restarting slurmctld needs root and the cluster of scripts/services/slurm.sh")
    run = new_run()
    seen: list[tuple[str, JobState]] = []
    run.add_listener(lambda record, status: seen.append((record.key, status.state)))
    requests = [JobRequest(f"{site}-{i}", shell("sleep 6"), site=site) for site in SITES for i in range(12)]
    requests += [JobRequest(f"{site}-single", shell("sleep 8", cores=3), site=site) for site in SITES]
    run.submit(requests)

    # restart while jobs run (on a cluster busy with other work, restart anyway after a while:
    # queued jobs must survive it too)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(s is JobState.RUNNING for _, s in seen):
        time.sleep(0.3)

    os.kill(int(CTLD_PID.read_text()), signal.SIGTERM)
    time.sleep(4)  # the poller keeps asking (sacct / slurmdb answer without slurmctld)
    started = subprocess.run(["bash", str(SLURM_SH), "start", "host"], capture_output=True, text=True, timeout=180,
                             check=False)
    assert started.returncode == 0, started.stderr[-2000:]
    assert "SLURM READY" in started.stdout

    final = run.wait(timeout=300)
    assert {r.state for r in final.values()} == {JobState.COMPLETED}, {r.key: r.state for r in final.values()}
    assert not [k for k, s in seen if s in (JobState.FAILED, JobState.CANCELLED, JobState.UNKNOWN)], seen
