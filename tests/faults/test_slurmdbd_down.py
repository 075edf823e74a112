"""slurmdbd and MariaDB stopped mid-run: status comes from the controller, accounting waits.

On the Slurm 26.05 cluster (site slurm-2605) so the host cluster other tests use is not
disturbed; the outage lasts the few seconds the run's jobs take and is always ended (a
finally restarts what is down with scripts/services/slurm.sh start 26.05).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from esap_executors.runs import run_id_for
from tests.slurm.conftest import CLUSTERS, require_cluster
from tests.support import EXAMPLE_SITES, ROOT, esap

from .conftest import WORKFLOW, Ledger, final_states, run_counts

CLUSTER = CLUSTERS["26.05"]
PIDS = Path("/opt/slurm-2605/var/lib/slurm-ci-2605/run")  # slurm-next.sh's pid files for 26.05
SLURM_SH = ROOT / "scripts" / "services" / "slurm.sh"
JOBS = 4
pytestmark = pytest.mark.slurm_2605_outage


def stop(name: str) -> None:
    process = psutil.Process(int((PIDS / f"{name}.pid").read_text()))
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def restore() -> None:
    subprocess.run(["bash", str(SLURM_SH), "start", "26.05"], capture_output=True, text=True, timeout=300,
                   cwd=ROOT, check=False)


def test_accounting_down_mid_run(state_dir: Path, tmp_path: Path, ledger: Ledger) -> None:
    ledger.fault = "slurmdbd and MariaDB stopped mid-run"
    require_cluster(CLUSTER)
    marks = tmp_path / "marks"
    marks.mkdir()
    key = f"faults-dbd-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if k != "ESAP_FAULT_KILL_AT"}
    env["FAULT_JOB_SLEEP"] = "4"
    argv = [sys.executable, str(WORKFLOW), str(EXAMPLE_SITES), key, "slurm-2605", str(JOBS), str(marks)]
    workflow = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    try:
        assert workflow.stdout is not None
        assert workflow.stdout.readline().strip() == "SUBMITTED", workflow.stderr.read() if workflow.stderr else ""
        stop("slurmdbd")
        stop("mariadbd")
        stdout, stderr = workflow.communicate(timeout=240)  # the jobs end while accounting is down
        counts = run_counts(marks, JOBS)
        ledger.runs("slurmdbd and MariaDB stopped mid-run", counts, JOBS, detail="slurm-2605 (CLI)")
        assert workflow.returncode == 0, stderr[-2000:]
        assert final_states(stdout) == {f"job-{i}": "completed" for i in range(JOBS)}, stdout
        assert set(counts.values()) == {1}, counts

        during = esap("usage", "--json", run_id_for(key), timeout=120)
        assert "Traceback" not in during.stderr and "internal error" not in during.stderr, during.stderr
        assert during.returncode in (0, 3), during.stderr
    finally:
        if workflow.poll() is None:
            workflow.kill()
        restore()
    require_cluster(CLUSTER)
    deadline = time.monotonic() + 120  # slurmctld hands the accounting it kept to slurmdbd
    walls: list[object] = []
    while time.monotonic() < deadline:
        after = esap("usage", "--json", run_id_for(key), timeout=120)
        assert after.returncode == 0, after.stderr
        walls = [row.get("wall_s") for row in json.loads(after.stdout)]
        if len(walls) == JOBS and all(isinstance(w, (int, float)) and w >= 3 for w in walls):
            break
        time.sleep(2)
    assert len(walls) == JOBS and all(isinstance(w, (int, float)) and w >= 3 for w in walls), walls
