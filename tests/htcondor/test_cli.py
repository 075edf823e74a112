"""`esap run --site htcondor-local -- CMD`: a real HTCondor job, by root and by a normal user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.htcondor.conftest import pool_settings, running_as_root
from tests.support import EXAMPLE_SITES, esap

COMMAND = ["sh", "-c", 'echo "job ad: $_CONDOR_JOB_AD"; echo "user: $(id -un)"']


def check_output(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("job ad: /") and lines[0].endswith(".job.ad"), result.stdout
    assert lines[1] != "user: root"
    assert "completed (exit code 0)" in result.stderr


def test_esap_run_on_htcondor_local(state_dir: Path) -> None:
    check_output(esap("run", "--site", "htcondor-local", "--", *COMMAND, timeout=300))


def test_esap_run_as_an_unprivileged_user() -> None:
    settings = pool_settings()
    user = settings.get("HTC_USER", "esapuser")
    venv_esap = Path(settings.get("HTC_VENV", "/opt/htcondor-ci-venv")) / "bin" / "esap"
    if not running_as_root():
        pytest.skip("needs root to switch to the pool's submit user")
    if not venv_esap.exists():
        pytest.skip(f"{venv_esap} missing: htcondor.sh start installs this project there for {user}")
    account = pwd.getpwnam(user)
    state = tempfile.mkdtemp(prefix="esap-user-state-", dir="/tmp")
    sites = Path(state) / "sites.yaml"  # the user may not be able to read the checkout
    shutil.copy(EXAMPLE_SITES, sites)
    for path in (state, sites):
        os.chown(path, account.pw_uid, account.pw_gid)
    try:
        env = {"HOME": account.pw_dir, "PATH": "/usr/local/bin:/usr/bin:/bin", "ESAP_STATE_DIR": state,
               "LANG": "C.UTF-8", "ESAP_POLL_START": "0.5", "ESAP_POLL_FLOOR": "0.2"}
        result = subprocess.run(
            ["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
             str(venv_esap), "--sites", str(sites), "run", "--site", "htcondor-local", "--", *COMMAND],
            capture_output=True, text=True, timeout=300, check=False, cwd="/tmp",
        )
        check_output(result)
        assert f"user: {user}" in result.stdout
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_root_submitting_from_a_directory_the_owner_cannot_enter(state_dir: Path, tmp_path: Path) -> None:
    if not running_as_root():
        pytest.skip("only root submits for the pool's owner")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    result = esap("run", "--site", "htcondor-local", "--", "sh", "-c", "pwd", cwd=private, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith("/tmp/esap-htcondor/")  # the job's own directory
