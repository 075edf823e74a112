"""The executor SIGKILLed while its step runs as a Rosetta task, then rerun with the same run
key: it reattaches to the task (found by its run-scoped name or its native id) and starts no
second task; the step's output and exit code come back."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from esap_executors.runs import run_id_for
from tests.support import EXAMPLE_SITES, VENV_BIN, esap

from .conftest import run_tasks

pytestmark = pytest.mark.rosetta


def slurm_jobs_since(start: str) -> int:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-u", "esaprosetta", "-S", start, "-o", "JobID"],
                         capture_output=True, text=True, check=True).stdout
    return len([line for line in out.splitlines() if line.strip()])


def test_sigkill_then_rerun_starts_no_second_task(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    key = f"rosetta-restart-{uuid.uuid4().hex}"
    run_id = run_id_for(key)
    start = time.strftime("%Y-%m-%dT%H:%M:%S")
    command = ["run", "--site", "rosetta-slurm", "--run-id", key, "--", "sh", "-c", "sleep 15; echo survived"]
    first = subprocess.Popen([str(VENV_BIN / "esap"), "--sites", str(EXAMPLE_SITES), *command], cwd=tmp_path,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        names: list[str] = []
        while time.monotonic() < deadline and not names:
            time.sleep(1)
            names = run_tasks(client, run_id)
        assert names and first.poll() is None, "no Rosetta task appeared while esap ran"
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    second = esap(*command, cwd=tmp_path, timeout=240)
    assert second.returncode == 0, second.stderr
    assert "survived" in second.stdout
    assert slurm_jobs_since(start) == 1  # one task, one SLURM job: the rerun started nothing
    assert run_tasks(client, run_id) == []  # and that task was stopped and deleted
