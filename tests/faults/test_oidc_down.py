"""The OIDC provider down while a token must be refreshed: a clear error, nothing submitted;
jobs already running keep running to their end.

Uses a PRIVATE provider (scripts/services/oidc.sh with its own directory and port), never the
shared one on :9400 that other tests use.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from esap_executors.auth import jwt_check, oidc
from esap_executors.auth.config import AuthConfig
from esap_executors.auth.oidc import OidcClient
from esap_executors.auth.tokens import TokenCache
from esap_executors.sqlite_store import open_store
from tests.auth.sites_for_tests import policy_sites
from tests.support import IN_CI, ROOT, esap

from .conftest import Ledger

OIDC_SH = ROOT / "scripts" / "services" / "oidc.sh"
APPROVER = ROOT / "scripts" / "services" / "oidc" / "device_approve.py"
PORT = 9417
ISSUER = f"http://127.0.0.1:{PORT}"
PROVIDER_ENV = {"OIDC_DIR": "/var/lib/oidc-ci-faults", "OIDC_PORT": str(PORT)}


def provider(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(OIDC_SH), action], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **PROVIDER_ENV}, cwd=ROOT, check=False)


@pytest.fixture
def private_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    started = provider("start")
    if "OIDC READY" not in started.stdout + started.stderr:
        message = f"the private OIDC provider on :{PORT} did not start: {started.stderr[-500:]}"
        (pytest.fail if IN_CI else pytest.skip)(message)
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "ESAP_OIDC_CLIENT_SECRET", "ESAP_AUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("ESAP_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("ESAP_OIDC_CLIENT_ID", "ci-short")  # access tokens live 5 s: refreshes come soon
    oidc._DISCOVERY_CACHE.clear()
    jwt_check._JWKS_CACHE.clear()
    try:
        yield ISSUER
    finally:
        provider("stop")


def private_policy_sites(directory: Path) -> Path:
    path = policy_sites(directory, work_root=directory / "work")
    sites = yaml.safe_load(path.read_text())
    for block in sites.values():
        block["policy"]["issuer"] = f"{ISSUER}/"
    path.write_text(yaml.safe_dump(sites, sort_keys=False))
    return path


def test_provider_down_at_refresh_submits_nothing_and_running_jobs_go_on(
        private_provider: str, state_dir: Path, tmp_path: Path, ledger: Ledger) -> None:
    ledger.fault = "OIDC provider down at token refresh"
    sites = private_policy_sites(tmp_path)
    client = OidcClient(AuthConfig(issuer=private_provider, client_id="ci-short"))
    device = client.start_device_login("openid offline_access", "urn:ci:api")
    subprocess.run([sys.executable, str(APPROVER), device.uri_for_user, "alice"], check=True,
                   capture_output=True, text=True, timeout=60)
    tokens = client.wait_device_login(device, scope="openid offline_access", audience="urn:ci:api")
    assert tokens.refresh_token
    TokenCache().save(tokens)
    mark = tmp_path / "ran"
    running = esap("submit", "--json", "--site", "local-policy", "--", "/bin/sh", "-c",
                   f"sleep 12; echo ran >> {mark}", sites=sites)
    assert running.returncode == 0, running.stderr
    job_id = json.loads(running.stdout)["id"]

    stopped = provider("stop")
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(max(0.0, tokens.expires_at - time.time()) + 1.5)  # the access token has expired
    refused = esap("submit", "--site", "local-policy", "--", "/bin/sh", "-c", f"echo late >> {mark}", sites=sites)
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 3, refused.stderr
    assert len(lines) == 1 and "internal error" not in lines[0] and "Traceback" not in refused.stderr, lines
    assert ISSUER in lines[0] or "127.0.0.1" in lines[0], lines  # names the provider it could not reach
    assert tokens.refresh_token not in refused.stderr and tokens.access_token not in refused.stderr
    assert len(open_store().jobs_of_run(open_store().job(job_id).run_id)) == 1
    assert int(open_store().connect().execute("SELECT count(*) FROM jobs").fetchone()[0]) == 1  # nothing recorded

    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        status = esap("status", "--json", job_id, sites=sites)
        assert status.returncode == 0, status.stderr
        shown = json.loads(status.stdout)
        state = (shown[0] if isinstance(shown, list) else shown)["state"]
        if state in ("completed", "failed", "cancelled"):
            break
        time.sleep(1)
    ran = len(mark.read_text().splitlines()) if mark.exists() else 0
    ledger.runs("OIDC provider down at token refresh", {"running job": ran}, 1,
                detail="local-policy, private provider :9417, ci-short 5 s tokens")
    assert state == "completed"
    assert mark.read_text() == "ran\n"  # the running job ended; the refused one never ran
