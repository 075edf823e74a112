"""`esap uws` refuses bad input in one line, exit code 2, before it contacts the gateway."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import VENV_BIN


def esap_uws(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "ESAP_GATEWAY_URL": "http://127.0.0.1:9/esap-api/",
           "BEARER_TOKEN": "a-token-that-never-leaves", "ESAP_UWS_WORKER_KEY": str(tmp_path / "none.pem")}
    return subprocess.run([str(VENV_BIN / "esap"), "uws", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)


def test_a_missing_workflow_file_is_named(tmp_path: Path) -> None:
    done = esap_uws("submit", "--front", "cwl", str(tmp_path / "nothere.cwl"), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"esap: error: {tmp_path}/nothere.cwl: WORKFLOW: no such file"]


def test_a_job_id_must_be_a_number(tmp_path: Path) -> None:
    done = esap_uws("status", "12a", tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["esap: error: ID: '12a' is not a UWS job id (a number)"]


def test_without_the_workers_key_nothing_is_submitted(tmp_path: Path) -> None:
    workflow = tmp_path / "w.cwl"
    workflow.write_text("cwlVersion: v1.2\n")
    done = esap_uws("submit", "--front", "cwl", str(workflow), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"esap: error: {tmp_path}/none.pem: ESAP_UWS_WORKER_KEY: no such file"]
    assert "a-token-that-never-leaves" not in done.stderr


def test_the_gateway_is_given_as_esap_like_every_esap_command_or_as_gateway(tmp_path: Path) -> None:
    closed = "http://127.0.0.1:9/esap-api/"
    for option in ("--esap", "--gateway"):
        done = esap_uws("status", "7", option, closed, tmp_path=tmp_path)
        assert done.returncode == 3, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"esap: error: ESAP UWS (to read job 7) unreachable at {closed}uws/jobs/7/: ConnectionError"]


def test_without_a_gateway_the_option_and_the_variable_are_named(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BEARER_TOKEN": "a-token-that-never-leaves"}
    done = subprocess.run([str(VENV_BIN / "esap"), "uws", "status", "7"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "esap: error: --esap: no ESAP gateway: give --esap URL or set $ESAP_GATEWAY_URL"]
