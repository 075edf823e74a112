"""The test provider behaves like ESCAPE IAM where a client can tell (reference iam.md §9)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import requests

from esap_executors.auth.config import AuthConfig
from esap_executors.auth.jwt_check import verify_token
from esap_executors.auth.oidc import OidcClient, discover
from tests.support import ROOT

from .conftest import ISSUER, approve, login


def test_discovery_lists_iam_endpoints(auth_env: Path) -> None:
    found = discover(ISSUER)
    assert found.issuer == ISSUER + "/"  # IAM issuers end with "/"
    assert found.device_authorization_endpoint == ISSUER + "/devicecode"
    assert found.jwks_uri == ISSUER + "/jwk" and found.token_endpoint == ISSUER + "/token"
    document = requests.get(ISSUER + "/.well-known/openid-configuration", timeout=10).json()
    assert document["userinfo_endpoint"] == ISSUER + "/userinfo"
    assert document["introspection_endpoint"] == ISSUER + "/introspect"


def test_userinfo_answers_for_valid_bearers_and_401_otherwise(auth_env: Path) -> None:
    tokens = login("bob", scope="openid profile email", save=False)
    reply = requests.get(ISSUER + "/userinfo", headers={"Authorization": f"Bearer {tokens.access_token}"},
                         timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["sub"] == "bob" and body["email"] == "bob@example.test"
    assert body["groups"] == ["escape", "escape/lofar"]
    refused = requests.get(ISSUER + "/userinfo", headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_script_selects_the_group_claim_style_at_start_and_is_idempotent(auth_env: Path, tmp_path: Path) -> None:
    """A second provider from the project's script, with OIDC_GROUP_CLAIM=wlcg.groups."""
    directory = tmp_path / "oidc"
    directory.mkdir()
    shared_modules = Path("/var/lib/oidc-ci/node_modules")
    if shared_modules.is_dir():  # reuse the installed provider instead of a second npm install
        os.symlink(shared_modules, directory / "node_modules")
    port = free_port()
    env = {**os.environ, "OIDC_DIR": str(directory), "OIDC_PORT": str(port), "OIDC_GROUP_CLAIM": "wlcg.groups"}
    script = str(ROOT / "scripts" / "services" / "oidc.sh")
    try:
        first = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr[-2000:]
        ready = [line for line in first.stdout.splitlines() if "READY" in line]
        assert len(ready) == 1 and "group claim wlcg.groups" in ready[0]
        pid = (directory / "oidc.pid").read_text()
        again = subprocess.run(["bash", script, "start"], env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and (directory / "oidc.pid").read_text() == pid  # not restarted

        issuer = f"http://127.0.0.1:{port}"
        client = OidcClient(AuthConfig(issuer=issuer, client_id="ci-device"))
        device = client.start_device_login("openid wlcg.groups")  # no profile scope: the default style
        approve(device.uri_for_user, "bob")
        tokens = client.wait_device_login(device, scope="openid wlcg.groups")
        claims = verify_token(tokens.access_token, issuer=issuer)
        assert claims.group_claim == "wlcg.groups" and claims.groups == ("/escape", "/escape/lofar")
    finally:
        subprocess.run(["bash", script, "stop"], env=env, capture_output=True, timeout=60, check=False)
