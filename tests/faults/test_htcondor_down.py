"""The HTCondor collector and schedd stopped mid-run: the run waits for the pool, then ends
with every job completed and run once.

The pool is shared with other tests: the outage is kept under ~30 s and always ended (a
finally turns both daemons on again through the master, which stays up).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.htcondor.conftest import condor_admin, pool_settings, wait_until_pool_is_whole
from tests.support import EXAMPLE_SITES, ROOT, require_service

from .conftest import WORKFLOW, Ledger, final_states, run_counts

JOBS = 4
OUTAGE_S = 12


def master_address() -> str:
    """The master's address (through the shared port, which stays up while the collector is off)."""
    root = pool_settings().get("HTC_ROOT", "") if pool_settings().get("HTC_MODE") == "chroot" else ""
    return Path(f"{root}/var/log/condor/.master_address").read_text().splitlines()[0]


def daemon(action: str, name: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(condor_admin(action, "-addr", master_address(), *options, "-daemon", name),
                          capture_output=True, text=True, timeout=60, check=False)


def wait_until_gone(names: tuple[str, ...], timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in psutil.process_iter(["name"]) if p.info["name"] in names]:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.stops_a_service
def test_collector_and_schedd_down_mid_run(state_dir: Path, ledger: Ledger) -> None:
    ledger.fault = "HTCondor collector and schedd stopped mid-run"
    require_service("htcondor")
    marks = Path("/tmp/esap-htcondor") / f"faults-{uuid.uuid4().hex[:8]}"  # the jobs' owner writes here
    marks.mkdir(parents=True)
    marks.chmod(0o777)
    key = f"faults-htc-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "ESAP_FAULT_KILL_AT"}
    env["FAULT_JOB_SLEEP"] = "6"
    argv = [sys.executable, str(WORKFLOW), str(EXAMPLE_SITES), key, "htcondor-local", str(JOBS), str(marks)]
    workflow = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert workflow.stdout is not None
        assert workflow.stdout.readline().strip() == "SUBMITTED"
        off_schedd = daemon("condor_off", "schedd")  # graceful: running jobs keep their lease and reconnect
        off_collector = daemon("condor_off", "collector")
        assert off_schedd.returncode == 0 and off_collector.returncode == 0, off_schedd.stderr + off_collector.stderr
        assert wait_until_gone(("condor_schedd", "condor_collector")), "the daemons did not stop"
        time.sleep(OUTAGE_S)
    finally:
        daemon("condor_on", "collector")
        daemon("condor_on", "schedd")
    try:
        stdout, stderr = workflow.communicate(timeout=300)
    finally:
        if workflow.poll() is None:
            workflow.kill()
        busy = wait_until_pool_is_whole()  # before the next test's jobs need the slots
    counts = run_counts(marks, JOBS)
    result = ledger.runs("HTCondor collector and schedd stopped mid-run", counts, JOBS,
                         detail=f"htcondor-local, {OUTAGE_S} s outage")
    shutil.rmtree(marks, ignore_errors=True)
    assert workflow.returncode == 0, stderr[-2000:]
    assert final_states(stdout) == {f"job-{i}": "completed" for i in range(JOBS)}, stdout
    assert result == "held", counts
    assert busy == [], f"the pool is not whole after the outage: {busy}"
