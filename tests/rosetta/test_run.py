"""`esap run` on the Rosetta sites: a step runs as a Rosetta task of the runner image on the
SLURM computing (sbatch over SSH) and on the standalone host; exit codes come back; the task
is stopped and deleted; bad credentials, unknown computings and a Rosetta that is down are
refused before anything starts."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from tests.support import EXAMPLE_SITES, esap

from .conftest import run_tasks

pytestmark = pytest.mark.rosetta


def _run_id(stderr: str) -> str:
    match = re.search(r"submitted (r[0-9a-f]+)\.", stderr)
    assert match, stderr
    return match.group(1)


@pytest.mark.parametrize("site", ["rosetta-slurm", "rosetta-standalone"])
def test_step_output_and_exit_zero(client: RosettaClient, state_dir: Path, tmp_path: Path, site: str) -> None:
    result = esap("run", "--site", site, "--", "sh", "-c", "echo hello from a rosetta task; echo note >&2",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "hello from a rosetta task" in result.stdout
    assert "completed (exit code 0)" in result.stderr
    assert run_tasks(client, _run_id(result.stderr)) == []  # stopped and deleted in Rosetta


def test_exit_three_is_failed_with_code_three(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    result = esap("run", "--site", "rosetta-slurm", "--", "sh", "-c", "echo partial; echo broken >&2; exit 3",
                  cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "failed (EXIT_CODE, exit code 3" in result.stderr
    assert "partial" in result.stdout and "broken" in result.stderr
    assert run_tasks(client, _run_id(result.stderr)) == []


def _sites_with(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE_SITES.read_text()
    assert old in text
    path = tmp_path / "sites.yaml"
    path.write_text(text.replace(old, new))
    return path


def test_wrong_password_exit_3_one_line_nothing_started(client: RosettaClient, state_dir: Path,
                                                        tmp_path: Path) -> None:
    secret = "definitely-wrong-password"
    (tmp_path / "pw").write_text(secret)
    sites = _sites_with(tmp_path, "/var/lib/rosetta-ci/password", str(tmp_path / "pw"))
    before = {t.uuid for t in client.tasks("")}
    result = esap("run", "--site", "rosetta-slurm", "--", "true", sites=sites, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the login" in lines[0], result.stderr
    assert secret not in result.stderr + result.stdout
    assert {t.uuid for t in client.tasks("")} <= before


def test_unknown_computing_exit_2_nothing_started(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    sites = _sites_with(tmp_path, "computing: slurm-ssh", "computing: no-such-computing")
    before = {t.uuid for t in client.tasks("")}
    result = esap("run", "--site", "rosetta-slurm", "--", "true", sites=sites, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "no computing 'no-such-computing'" in result.stderr
    assert "options.computing" in result.stderr
    assert {t.uuid for t in client.tasks("")} <= before


def test_rosetta_down_exit_3(rosetta: None, state_dir: Path, tmp_path: Path) -> None:
    sites = _sites_with(tmp_path, "url: http://127.0.0.1:8710", "url: http://127.0.0.1:9")
    result = esap("run", "--site", "rosetta-slurm", "--", "true", sites=sites, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "unreachable" in result.stderr


def test_discovery_publishes_the_computing_for_matchmaking(rosetta: None, state_dir: Path) -> None:
    sites = esap("sites", "--discover")
    assert sites.returncode == 0, sites.stderr
    block = sites.stdout.split("rosetta-slurm", 1)[1].split("rosetta-standalone", 1)[0]
    assert "RosettaComputingType = cluster" in block and "IsCluster = True" in block
    assert "RosettaComputings = slurm-ssh,standalone-ssh" in block
    software = re.search(r"RosettaSoftware = (\S+)", block)
    assert software and {"esap-broken", "esap-httpd", "esap-runner"} <= set(software.group(1).split(","))
    match = esap("match", "--requirements", 'other.RosettaComputingType == "standalone"')
    assert match.returncode == 0, match.stderr
    assert match.stdout.splitlines()[0].startswith("1. rosetta-standalone")
    assert ('rejected rosetta-slurm: fails other.RosettaComputingType == "standalone" '
            '(RosettaComputingType = "cluster")') in match.stdout


def test_walltime_enforced_by_the_runner_and_usage_reported(client: RosettaClient, state_dir: Path,
                                                             tmp_path: Path) -> None:
    slow = esap("run", "--site", "rosetta-slurm", "--walltime", "5s", "--", "sh", "-c", "echo begun; sleep 120",
                cwd=tmp_path, timeout=180)
    assert slow.returncode == 1, slow.stderr
    assert "walltime exceeded (TIMEOUT)" in slow.stderr and "begun" in slow.stdout
    assert run_tasks(client, _run_id(slow.stderr)) == []

    busy = esap("run", "--site", "rosetta-slurm", "--", "sh", "-c",
                "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo counted", cwd=tmp_path)
    assert busy.returncode == 0, busy.stderr
    usage = esap("usage", _run_id(busy.stderr), "--json")
    assert usage.returncode == 0, usage.stderr
    (row,) = json.loads(usage.stdout)
    assert row["site"] == "rosetta-slurm" and row["wall_s"] is not None
    assert row["cpu_s"] > 0  # the runner's own measure of the step's processes


def test_start_failure_in_rosetta_is_rosettas_text(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    before = {t.uuid for t in client.tasks("")}
    result = esap("run", "--site", "rosetta-slurm", "--partition", "no-such-partition", "--", "true", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "Rosetta: start task esap-r" in result.stderr and "sbatch: error" in result.stderr
    assert {t.uuid for t in client.tasks("")} <= before  # Rosetta deleted the task it could not start


def test_runner_that_never_starts_fails_with_rosettas_log(client: RosettaClient, state_dir: Path,
                                                          tmp_path: Path) -> None:
    sites = _sites_with(tmp_path, "    software: esap-runner\n", "    software: esap-broken\n    start_timeout: 20\n")
    result = esap("run", "--site", "rosetta-slurm", "--", "true", sites=sites, cwd=tmp_path, timeout=240)
    assert result.returncode == 1, result.stderr
    assert "the runner did not start within 20 s; Rosetta's task log:" in result.stderr
    assert run_tasks(client, _run_id(result.stderr)) == []


def test_esap_submit_then_cancel_from_another_process(client: RosettaClient, state_dir: Path,
                                                      tmp_path: Path) -> None:
    submitted = esap("submit", "--site", "rosetta-slurm", "--", "sh", "-c", "sleep 300", cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    run_id = job_id.split(".")[0]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and "running" not in esap("status", job_id).stdout:
        time.sleep(2)
    assert run_tasks(client, run_id), "the step's task is not in Rosetta"
    cancelled = esap("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert run_tasks(client, run_id) == []  # stopped and deleted in Rosetta
    status = esap("status", job_id)
    assert "cancelled" in status.stdout, status.stdout
