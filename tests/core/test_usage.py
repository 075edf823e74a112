"""`esap usage`: what finished jobs used against their requests, as each scheduler accounted it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import esap, require_service

# Holds 80 MiB, waits 2 s, then burns 2.5 s of CPU on one core: about a quarter of 2 cores' time
# (one line: HTCondor arguments carry no newline).
BURN = ("import time; block = bytearray(b'x') * (80 * 1024 * 1024); time.sleep(2); "
        "t = time.process_time(); exec('while time.process_time() - t < 2.5: pass')")
SERVICES = {"local": None, "slurm-local": "slurm", "slurm-rest": "slurm"}  # HTCondor: tests/htcondor/test_usage.py


def run_burn(site: str) -> str:
    ran = esap("run", "--json", "--site", site, "--cores", "2", "--mem", "400M", "--walltime", "5m",
               "--", "python3", "-c", BURN, cwd="/tmp")
    assert ran.returncode == 0, ran.stderr
    return str(json.loads(ran.stdout)["run"])


@pytest.mark.parametrize("site", sorted(SERVICES))
def test_usage_shows_cpu_and_memory_against_the_request(state_dir: Path, site: str) -> None:
    service = SERVICES[site]
    if service:
        require_service(service)
    run_id = run_burn(site)

    (row,) = json.loads(esap("usage", run_id, "--json").stdout)
    assert (row["site"], row["cores"], row["memory_mib"]) == (site, 2, 400)
    assert 2.3 <= row["cpu_s"] <= row["wall_s"] - 1, row
    # the share of the requested cores' time that was used (how long the job waited for a busy machine varies)
    assert row["cpu_efficiency"] == pytest.approx(row["cpu_s"] / (2 * row["wall_s"]), rel=0.02), row
    assert row["cpu_efficiency"] <= 0.45, row
    assert 80 <= row["max_memory_mib"] <= 200, row
    assert row["memory_efficiency"] == pytest.approx(row["max_memory_mib"] / 400)

    table = esap("usage", run_id)
    assert table.returncode == 0, table.stderr
    assert "used less than 50% of their cores: ask for fewer" in table.stdout
    assert "used less than 50% of their memory: ask for less" in table.stdout


def test_usage_of_an_unknown_run_says_so(state_dir: Path) -> None:
    result = esap("usage", "r000000000000")
    assert result.returncode != 0
    assert "r000000000000" in result.stderr
