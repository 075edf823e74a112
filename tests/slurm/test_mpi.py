"""MPI jobs on SLURM: `tasks` becomes --ntasks; the command starts its ranks with srun."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.slurm.conftest import cluster_of
from tests.support import esap

RANKS = ["srun", "sh", "-c", 'echo "rank $SLURM_PROCID of $SLURM_NTASKS on $SLURMD_NODENAME"']


def test_four_tasks_are_four_ranks(state_dir, site: str) -> None:
    result = esap("run", "--json", "--site", site, "--tasks", "4", "--mem", "400M", "--", *RANKS,
                  timeout=180)
    assert result.returncode == 0, result.stderr
    job = json.loads(result.stdout)
    lines = sorted(open(job["stdout"]).read().splitlines())
    assert [line.split(" on ")[0] for line in lines] == [f"rank {i} of 4" for i in range(4)], lines
    expected = ("4|400M", "4|100Mc")  # 100 MiB per core for 4 cores, as sacct versions show it
    deadline = time.monotonic() + 60
    while True:  # the accounting database lags the controller (an early row shows "16?")
        accounting = subprocess.run(
            [cluster_of(site).command("sacct"), "-n", "-X", "-P", "-j", job["native_id"], "-o", "NCPUS,ReqMem"],
            capture_output=True, text=True, check=True).stdout.split()
        if accounting and accounting[0] in expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert accounting[0] in expected, accounting


def test_two_tasks_of_two_cores(state_dir, site: str) -> None:
    result = esap("run", "--json", "--site", site, "--tasks", "2", "--cores", "4", "--",
                  "srun", "sh", "-c", 'echo "$SLURM_PROCID:$SLURM_CPUS_PER_TASK"', timeout=180)
    assert result.returncode == 0, result.stderr
    assert sorted(open(json.loads(result.stdout)["stdout"]).read().split()) == ["0:2", "1:2"]


@pytest.mark.slurm_host
def test_cores_that_tasks_cannot_share_evenly_are_refused(slurm, state_dir) -> None:
    result = esap("run", "--site", "slurm-local", "--tasks", "2", "--cores", "3", "--", "true")
    assert result.returncode == 2
    assert "3 cores cannot be shared evenly by 2 tasks" in result.stderr


@pytest.mark.slurm_host
def test_more_cores_than_the_partition_has_are_refused(slurm, state_dir) -> None:
    result = esap("run", "--site", "slurm-local", "--tasks", "40", "--", "true")
    assert result.returncode == 2
    assert "40 cores for 40 tasks: partition 'debug' has 32 in all" in result.stderr
