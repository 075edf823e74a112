"""The staging tests' storage: the real WebDAV server (scripts/services/webdav.sh) and tokens of the
project's OIDC provider, obtained as a user would (esap login with storage scopes, narrowed per URL prefix).

Every test gets its own state, config and runtime directories, its own folder on the server
(/t-<random>/), and no bearer-token variables, so only the sources a test sets up are found.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from esap_executors.auth import jwt_check, oidc, storage
from esap_executors.auth.config import AuthConfig
from esap_executors.auth.oidc import OidcClient
from esap_executors.auth.tokens import TokenCache
from esap_executors.staging import remote
from tests.support import ROOT, WEBDAV_ENV, require_service

APPROVER = ROOT / "scripts" / "services" / "oidc" / "device_approve.py"
LOGIN_SCOPE = "openid offline_access storage.read:/ storage.modify:/"


@dataclass
class Storage:
    """The server, and this test's folder on it."""

    url: str  # https://127.0.0.1:9443/
    ca: Path
    issuer: str
    audience: str
    key: str
    root: Path  # the server's data directory (same machine)
    folder: str  # /t-xxxx

    def davs(self, name: str = "") -> str:
        return "davs" + self.url[len("https"):].rstrip("/") + f"{self.folder}/{name}"

    def https(self, name: str = "") -> str:
        return self.url.rstrip("/") + f"{self.folder}/{name}"

    def path(self, name: str = "") -> str:
        return f"{self.folder}/{name}"

    def local(self, name: str = "") -> Path:
        return self.root / self.folder.lstrip("/") / name

    def put_file(self, name: str, data: bytes) -> None:
        target = self.local(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def fault(self, name: str, **fault: Any) -> None:
        reply = self._control("POST", "faults", json={"path": self.path(name), **fault})
        assert reply.status_code == 200, reply.text

    def counts(self, name: str) -> dict[str, int]:
        counts: dict[str, dict[str, int]] = self._control("GET", "counts").json()
        return counts.get(self.path(name), {})

    def _control(self, method: str, what: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.url}.ci/{what}", headers={"X-Ci-Key": self.key},
                                verify=str(self.ca), timeout=30, **kwargs)


@pytest.fixture
def server() -> Iterator[Storage]:
    require_service("webdav")
    env = json.loads(WEBDAV_ENV.read_text())
    storage = Storage(url=env["url"], ca=Path(env["ca"]), issuer=env["issuer"], audience=env["audience"],
                      key=Path(env["control_key_file"]).read_text().strip(), root=Path(env["root"]),
                      folder=f"/t-{secrets.token_hex(6)}")
    yield storage
    shutil.rmtree(storage.local(), ignore_errors=True)


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    state = tmp_path / "state"
    state.mkdir()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("ESAP_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    for name in ("BEARER_TOKEN", "BEARER_TOKEN_FILE", "ESAP_OIDC_ISSUER", "ESAP_OIDC_CLIENT_ID",
                 "ESAP_OIDC_CLIENT_SECRET", "ESAP_OIDC_SCOPE", "ESAP_OIDC_AUDIENCE", "ESAP_AUTH_CONFIG",
                 "OIDC_SOCK", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)
    oidc._DISCOVERY_CACHE.clear()
    jwt_check._JWKS_CACHE.clear()
    storage._NARROWED.clear()
    yield state


def write_auth(folder: Path, server: Storage, scopes: list[str]) -> Path:
    """auth.yaml: the provider, and one storage rule for the server with these scopes."""
    path = folder / "auth.yaml"
    path.write_text(
        f"issuer: {server.issuer}\nclient_id: ci-device\nstorage:\n"
        f"  davs://127.0.0.1:{server.url.rsplit(':', 1)[1].strip('/')}/:\n"
        f"    audience: {server.audience}\n    scopes: [{', '.join(scopes)}]\n    ca_bundle: {server.ca}\n")
    return path


def login(server: Storage, scope: str = LOGIN_SCOPE, user: str = "ci-user") -> None:
    """A completed device login (the approver plays the user), saved like `esap login` does."""
    client = OidcClient(AuthConfig(issuer=server.issuer, client_id="ci-device"))
    device = client.start_device_login(scope)
    subprocess.run([sys.executable, str(APPROVER), device.uri_for_user, user], check=True, capture_output=True,
                   timeout=60)
    TokenCache().save(client.wait_device_login(device, scope=scope))


@pytest.fixture
def logged_in(server: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Storage:
    """esap login with read and modify storage scopes; the rule narrows to both."""
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/", "storage.modify:/"])))
    login(server)
    return server


def visible_files(folder: Path) -> list[str]:
    """Every file under `folder` (hidden ones too): what a transfer left behind."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def cli_env() -> dict[str, str]:
    return dict(os.environ)


__all__ = ["Storage", "remote", "visible_files", "write_auth", "login", "cli_env"]
