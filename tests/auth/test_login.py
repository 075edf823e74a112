"""`esap login` against the real provider: the device flow a user sees, and its error cases."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest

from esap_executors.auth.tokens import TokenCache
from tests.support import VENV_BIN, esap

from .conftest import approve, client

URI = re.compile(r"(http://\S+user_code=\S+)")


def start_login(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start `esap login` and return it with the verification URI it printed."""
    process = subprocess.Popen([str(VENV_BIN / "esap"), "login", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    seen = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        found = URI.search(line)
        if found:
            return process, found.group(1)
    process.kill()
    errors = process.stderr.read() if process.stderr else ""
    raise AssertionError(f"esap login printed no verification URI: {seen} {errors}")


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=120)
    return process.returncode, out, err


def test_device_login_approved_by_script_then_whoami(auth_env: Path) -> None:
    process, uri = start_login("--issuer", "http://127.0.0.1:9400", "--client-id", "ci-device",
                               "--scope", "openid profile offline_access wlcg wlcg.groups")
    assert "user_code=" in uri  # the complete URI, with the user code, for the user to open
    approve(uri, "alice")
    code, out, err = finish(process)
    assert code == 0, err
    assert "Logged in at http://127.0.0.1:9400/ as alice" in out

    whoami = esap("whoami", sites=None)
    assert whoami.returncode == 0, whoami.stderr
    assert "subject:  alice" in whoami.stdout
    assert "/escape/cta" in whoami.stdout and "(from wlcg.groups)" in whoami.stdout
    token = TokenCache().load().access_token  # type: ignore[union-attr]
    assert token not in whoami.stdout + whoami.stderr + out + err

    as_json = json.loads(esap("whoami", "--json", sites=None).stdout)
    assert as_json["subject"] == "alice" and "/escape/cta/analysis" in as_json["groups"]

    printed = esap("token", sites=None)
    assert printed.returncode == 0 and printed.stdout.strip() == token

    # the cache: mode 0600 in a 0700 directory
    cache = auth_env / "auth" / "tokens.json"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700


def test_refused_login_says_so(auth_env: Path) -> None:
    process, uri = start_login()
    approve(uri, "bob", deny=True)
    code, _, err = finish(process)
    assert code == 3
    assert "refused" in err and "access_denied" in err
    assert not (auth_env / "auth" / "tokens.json").exists()


def test_expired_device_code_asks_to_login_again(auth_env: Path) -> None:
    process, _ = start_login("--client-id", "ci-expiring")  # its device codes live 3 s
    code, _, err = finish(process)
    assert code == 3
    assert "expired" in err and "run esap login again" in err


def test_slow_down_makes_the_client_poll_less_often(auth_env: Path) -> None:
    oidc_client = client("ci-device")
    device = oidc_client.start_device_login("openid")
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 3:
            approve(device.uri_for_user, "bob")
        # the first two polls come back to back: the provider answers slow_down to the second
        time.sleep(0 if len(waits) <= 2 else seconds)

    tokens = oidc_client.wait_device_login(device, sleep=sleep, slow_down_step=1.0)
    assert tokens.access_token
    assert waits[0] == device.interval and waits[2] == device.interval + 1.0, waits


def test_logout_forgets_the_tokens(auth_env: Path) -> None:
    from .conftest import login

    login("bob")
    out = esap("logout", sites=None)
    assert out.returncode == 0 and "Logged out of http://127.0.0.1:9400/" in out.stdout
    after = esap("whoami", sites=None)
    assert after.returncode == 3 and "run esap login" in after.stderr


def test_login_refuses_plain_http_issuers_off_loopback(auth_env: Path) -> None:
    out = esap("login", "--issuer", "http://iam.example.org/", "--client-id", "x", sites=None)
    assert out.returncode == 2
    assert "http:// issuers are refused except on loopback" in out.stderr


def test_login_without_client_id_explains_what_to_configure(auth_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESAP_OIDC_CLIENT_ID")
    monkeypatch.delenv("ESAP_OIDC_ISSUER")
    out = esap("login", sites=None)
    assert out.returncode == 3
    assert "no OIDC client id configured for https://iam-escape.cloud.cnaf.infn.it/" in out.stderr
    assert "auth.yaml" in out.stderr


def test_auth_yaml_configures_the_client(auth_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ESAP_OIDC_CLIENT_ID")
    monkeypatch.delenv("ESAP_OIDC_ISSUER")
    config = tmp_path / "config" / "esap"
    config.mkdir(parents=True)
    (config / "auth.yaml").write_text("issuer: http://127.0.0.1:9400/\nclient_id: ci-device\nscope: openid\n")
    process, uri = start_login()
    approve(uri, "carol")
    code, out, err = finish(process)
    assert code == 0, err
    assert "as carol; groups: /guests" in out
    assert "no refresh token" in out  # no offline_access asked: nothing to refresh with
