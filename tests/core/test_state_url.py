"""ESAP_STATE_URL: a store that cannot be used is one clear line and exit code 2, never the password."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT, VENV_BIN, esap, postgres_url, require_service

SECRET = "Not-The-Password-42"


def _refused(url: str, *words: str) -> None:
    result = esap("runs", env={"ESAP_STATE_URL": url})
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esap: error: ESAP_STATE_URL: "), lines
    for word in words:
        assert word in lines[0], lines
    assert SECRET not in result.stderr + result.stdout


def test_another_scheme_is_refused() -> None:
    _refused(f"mysql://esap:{SECRET}@127.0.0.1/esap", "mysql://esap:***@127.0.0.1/esap", "postgresql://")


def test_an_unreachable_server_is_refused_without_the_password() -> None:
    _refused(f"postgresql://esap:{SECRET}@127.0.0.1:1/esap?connect_timeout=3",
             "postgresql://esap:***@127.0.0.1:1/esap", "cannot connect", "Connection refused")


def test_credentials_the_server_refuses_are_named_without_the_password(tmp_path: Path) -> None:
    require_service("postgres")
    good = postgres_url()
    assert good
    base = good.split("?")[0]
    host_port = base.split("@", 1)[1].split("/", 1)[0]
    _refused(base.replace("postgresql://esap@", f"postgresql://esap:{SECRET}@"), "password authentication failed")
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"{host_port}:*:esap:{SECRET}\n")
    passfile.chmod(0o600)
    _refused(f"{base}?passfile={passfile}", "password authentication failed", f"passfile={passfile}")


def test_a_postgresql_store_is_used_by_the_cli(postgres_state_url: str, state_dir: Path) -> None:
    env = {"ESAP_STATE_URL": postgres_state_url}
    ran = esap("run", "--json", "--run-id", "pg-cli", "--", "echo", "on postgres", env=env)
    assert ran.returncode == 0, ran.stderr
    job = json.loads(ran.stdout)
    shown = esap("status", "--json", job["id"], env=env)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "completed"
    listed = esap("runs", "--json", env=env)
    assert [run["run"] for run in json.loads(listed.stdout)] == [job["run"]], listed.stdout
    # the same state directory without the URL is the user's own SQLite store: the run is not there
    assert json.loads(esap("status", "--json").stdout) == []


@pytest.mark.parametrize("url", ["sqlite:///", "http://example.org/state"])
def test_urls_that_name_no_store(url: str) -> None:
    _refused(url)


def test_esap_cwltool_refuses_a_bad_url_before_anything_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(VENV_BIN / "esap-cwltool"), "--outdir", str(tmp_path), str(ROOT / "tests/cwl/data/echo.cwl")],
        env={**os.environ, "ESAP_STATE_URL": f"postgresql://esap:{SECRET}@127.0.0.1:1/esap"},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "esap-cwltool: ESAP_STATE_URL: postgresql://esap:***@127.0.0.1:1/esap: cannot connect: connection to "
        'server at "127.0.0.1", port 1 failed: Connection refused Is the server running on that host and '
        "accepting TCP/IP connections?"
    ]
    assert list(tmp_path.iterdir()) == []
