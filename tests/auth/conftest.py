"""The auth tests' provider, logins and isolated environment.

Every test gets its own state directory (token cache), config directory and runtime directory,
and no bearer-token variables, so only the sources a test sets up are found.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.auth import jwt_check, oidc
from esap_executors.auth.config import AuthConfig
from esap_executors.auth.oidc import OidcClient, TokenSet
from esap_executors.auth.tokens import TokenCache
from tests.support import IN_CI, ROOT, require_service

ISSUER = "http://127.0.0.1:9400"
APPROVER = ROOT / "scripts" / "services" / "oidc" / "device_approve.py"
SECRET = "ci-secret"


@pytest.fixture(autouse=True)
def auth_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    require_service("oidc")
    state = tmp_path / "state"
    state.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("ESAP_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("ESAP_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("ESAP_OIDC_CLIENT_ID", "ci-device")
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "ESAP_OIDC_CLIENT_SECRET", "ESAP_OIDC_SCOPE",
                 "ESAP_OIDC_AUDIENCE", "ESAP_AUTH_CONFIG", "OIDC_SOCK", "ESAP_SITES"):
        monkeypatch.delenv(name, raising=False)
    stray = Path(f"/tmp/bt_u{os.getuid()}")
    if stray.exists():  # a WLCG token file of this user would be found before esap's own tokens
        (pytest.fail if IN_CI else pytest.skip)(f"{stray} exists: the auth tests need it absent")
    # a provider restart renews its keys and endpoints: never reuse another test's view of them
    oidc._DISCOVERY_CACHE.clear()
    jwt_check._JWKS_CACHE.clear()
    yield state


def approve(verification_uri: str, login: str, *, deny: bool = False) -> None:
    argv = [sys.executable, str(APPROVER), verification_uri, login] + (["--deny"] if deny else [])
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=60)


def client(client_id: str = "ci-device", **settings: str) -> OidcClient:
    secret = SECRET if client_id == "ci-client" else None
    return OidcClient(AuthConfig(issuer=ISSUER, client_id=client_id, client_secret=secret, **settings))


def login(user: str, *, client_id: str = "ci-device", scope: str = "openid offline_access",
          audience: str | None = None, save: bool = True) -> TokenSet:
    """A completed device login for `user`, done through the library (fast), cached like esap login."""
    oidc_client = client(client_id)
    device = oidc_client.start_device_login(scope, audience)
    approve(device.uri_for_user, user)
    tokens = oidc_client.wait_device_login(device, scope=scope, audience=audience)
    if save:
        TokenCache().save(tokens)
    return tokens


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
