"""`esap usage` on HTCondor: the numbers of the schedd's history for the run's finished jobs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.core.test_usage import run_burn
from tests.htcondor.conftest import condor_admin
from tests.support import esap


def test_usage_is_what_the_pool_accounted(state_dir: Path) -> None:
    run_id = run_burn("htcondor-local")
    (row,) = json.loads(esap("usage", run_id, "--json").stdout)
    assert row["site"] == "htcondor-local" and row["memory_mib"] == 400
    cluster = row["native_id"].split(".")[0]
    ad = subprocess.run(
        condor_admin("condor_history", cluster, "-limit", "1", "-af", "RemoteWallClockTime",
                     "RemoteUserCpu", "RemoteSysCpu", "ResidentSetSize"),
        capture_output=True, text=True, check=True).stdout.split()
    wall, user, system, rss_kib = (float(value) for value in ad)
    assert row["wall_s"] == wall >= 4  # the job waited 2 s and burnt 2.5 s of CPU
    # CPU time and memory as the pool accounts them (the Debian 12 test pool, without cgroups in
    # its chroot, accounts neither: both are near 0 there; a real pool's are the job's)
    assert row["cpu_s"] == user + system
    assert row["max_memory_mib"] == -(-int(rss_kib) // 1024)
    assert esap("usage", run_id).returncode == 0
