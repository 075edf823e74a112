"""Tokens: refresh without the user, exchange, group claim styles, validation, discovery order."""

from __future__ import annotations

import os
import time
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from esap_executors.auth.config import AuthConfig, check_issuer_url
from esap_executors.auth.jwt_check import entitlement_group, verify_token
from esap_executors.auth.tokens import TokenCache, find_token
from esap_executors.errors import AuthError, BadInput
from tests.support import esap

from .conftest import ISSUER, client, login

CONFIG = AuthConfig(issuer=ISSUER, client_id="ci-device")


def wait_until_expired(expires_at: float) -> None:
    time.sleep(max(0.0, expires_at - time.time()) + 1.5)


def test_expired_login_is_refreshed_without_user_action(auth_env: Path) -> None:
    first = login("alice", client_id="ci-short")  # access tokens live 5 s
    assert first.refresh_token
    wait_until_expired(first.expires_at)
    with pytest.raises(AuthError, match="expired"):
        verify_token(first.access_token, issuer=ISSUER)
    # an expired token given directly (no refresh possible) is rejected, without being shown
    given = esap("whoami", sites=None, env={"BEARER_TOKEN": first.access_token})
    assert given.returncode == 3 and "the platform token has expired" in given.stderr
    assert first.access_token not in given.stderr

    whoami = esap("whoami", sites=None, env={"ESAP_OIDC_CLIENT_ID": "ci-short"})
    assert whoami.returncode == 0, whoami.stderr
    assert "subject:  alice" in whoami.stdout
    renewed = TokenCache().load(ISSUER, "ci-short")
    assert renewed is not None and renewed.access_token != first.access_token
    assert renewed.expires_at > first.expires_at
    assert verify_token(renewed.access_token, issuer=ISSUER).subject == "alice"


def test_token_exchange_gives_an_audience_scoped_token(auth_env: Path) -> None:
    tokens = login("bob", client_id="ci-client", scope="openid offline_access wlcg.groups api")
    exchanged = client("ci-client").exchange(tokens.access_token, audience="urn:ci:centre", scope="openid api")
    claims = verify_token(exchanged.access_token, issuer=ISSUER, audience="urn:ci:centre")
    assert claims.subject == "bob" and claims.audience == ("urn:ci:centre",)
    assert set(claims.scope) == {"openid", "api"}

    # the CLI: the login's client (confidential, exchange enabled) exchanges on demand
    out = esap("token", "--audience", "urn:ci:centre", sites=None,
               env={"ESAP_OIDC_CLIENT_ID": "ci-client", "ESAP_OIDC_CLIENT_SECRET": "ci-secret"})
    assert out.returncode == 0, out.stderr
    assert verify_token(out.stdout.strip(), issuer=ISSUER, audience="urn:ci:centre").subject == "bob"


def test_token_exchange_refused_with_a_clear_message(auth_env: Path) -> None:
    tokens = login("bob", client_id="ci-device")
    with pytest.raises(AuthError) as caught:
        client("ci-device").exchange(tokens.access_token, audience="urn:ci:centre")
    message = str(caught.value)
    assert "token exchange is not enabled for client ci-device" in message
    assert "administrator" in message and tokens.access_token not in message

    out = esap("token", "--audience", "urn:ci:centre", sites=None)
    assert out.returncode == 3
    assert "token exchange is not enabled for client ci-device" in out.stderr
    assert out.stdout == "" and tokens.access_token not in out.stderr


@pytest.mark.parametrize(
    ("scope", "claim", "groups"),
    [
        ("openid iam", "groups", ("/escape", "/escape/cta", "/escape/cta/analysis")),
        ("openid wlcg wlcg.groups", "wlcg.groups", ("/escape", "/escape/cta", "/escape/cta/analysis")),
        ("openid aarc eduperson_entitlement", "eduperson_entitlement",
         ("/escape", "/escape/cta", "/escape/cta/analysis")),
        ("openid wlcg", None, ()),  # the WLCG profile lists groups only when wlcg.groups is asked
    ],
)
def test_groups_from_each_claim_style(auth_env: Path, scope: str, claim: str | None,
                                      groups: tuple[str, ...]) -> None:
    tokens = login("alice", scope=scope, save=False)
    claims = verify_token(tokens.access_token, issuer=ISSUER)
    assert claims.group_claim == claim
    assert claims.groups == groups
    raw = jwt.decode(tokens.access_token, options={"verify_signature": False})
    if claim == "groups":
        assert raw["groups"][0] == "escape"  # IAM profile: no leading slash
    if claim == "eduperson_entitlement":
        assert raw[claim][0].startswith("urn:") and ":group:escape#" in raw[claim][0]


def test_entitlement_urns_become_group_paths() -> None:
    assert entitlement_group("urn:geant:escape.eu:group:escape:cta:role=member#iam.example") == "/escape/cta"
    assert entitlement_group("urn:mace:example:res:storage") is None


def test_wrongly_signed_and_unsigned_tokens_are_rejected(auth_env: Path) -> None:
    genuine = login("alice", save=False).access_token
    header = jwt.get_unverified_header(genuine)
    payload = jwt.decode(genuine, options={"verify_signature": False})
    payload["sub"] = "mallory"
    foreign_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(payload, foreign_key, algorithm="RS256", headers={"kid": header["kid"]})
    with pytest.raises(AuthError, match="signature does not match"):
        verify_token(forged, issuer=ISSUER)
    unsigned = jwt.encode(payload, None, algorithm="none")
    with pytest.raises(AuthError, match="signed with 'none'"):
        verify_token(unsigned, issuer=ISSUER)
    # HS256 keyed with the public JWKS (the classic confusion attack)
    jwks = requests.get(f"{ISSUER}/jwk", timeout=10).json()
    confused = jwt.encode(payload, str(jwks).encode() * 2, algorithm="HS256")
    with pytest.raises(AuthError, match="HS256"):
        verify_token(confused, issuer=ISSUER)
    out = esap("whoami", sites=None, env={"BEARER_TOKEN": forged})
    assert out.returncode == 3 and "signature does not match" in out.stderr
    assert forged not in out.stderr + out.stdout


def test_wrong_issuer_and_audience_rejected(auth_env: Path) -> None:
    token = login("alice", save=False).access_token
    assert verify_token(token, issuer=ISSUER, audience="urn:ci:api").subject == "alice"
    with pytest.raises(AuthError, match="not meant for audience urn:other"):
        verify_token(token, issuer=ISSUER, audience="urn:other")


def test_wlcg_discovery_order(auth_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = login("alice")
    assert find_token(CONFIG).source.startswith("esap login cache")

    runtime_file = Path(os.environ["XDG_RUNTIME_DIR"]) / f"bt_u{os.getuid()}"
    runtime_file.write_text("from-runtime-dir\n")
    assert find_token(CONFIG).token == "from-runtime-dir"

    named = tmp_path / "token-file"
    named.write_text("from-token-file")
    monkeypatch.setenv("BEARER_TOKEN_FILE", str(named))
    assert find_token(CONFIG).token == "from-token-file"

    monkeypatch.setenv("BEARER_TOKEN", "from-env")
    found = find_token(CONFIG)
    assert (found.token, found.source) == ("from-env", "BEARER_TOKEN")
    assert "from-env" not in repr(found) and cached.access_token not in repr(cached)


def test_issuer_urls() -> None:
    check_issuer_url("https://iam-escape.cloud.cnaf.infn.it/")
    check_issuer_url("http://127.0.0.1:9400")
    check_issuer_url("http://[::1]:9400/")
    with pytest.raises(BadInput, match="refused except on loopback"):
        check_issuer_url("http://iam-escape.cloud.cnaf.infn.it/")


def test_oidc_agent_comes_after_the_files_and_before_the_cache(auth_env: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # oidc-agent is not installed on these machines: a stand-in `oidc-token` checks the contract
    # (account as the only argument, token on stdout, only used when the agent's socket is set)
    login("alice")
    agent_token = login("bob", save=False).access_token
    (tmp_path / "agent-token").write_text(agent_token)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "oidc-token"
    stub.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "argv"}\ncat {tmp_path / "agent-token"}\n')
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with_agent = AuthConfig(issuer=ISSUER, client_id="ci-device", oidc_agent_account="escape")
    assert find_token(with_agent).source.startswith("esap login cache")  # no agent socket: skipped
    monkeypatch.setenv("OIDC_SOCK", str(tmp_path / "agent.sock"))
    found = find_token(with_agent)
    assert (found.source, found.token) == ("oidc-agent account escape", agent_token)
    assert (tmp_path / "argv").read_text().split() == ["escape"]
    assert find_token(CONFIG).source.startswith("esap login cache")  # no account configured


def test_login_audience_is_kept_across_refresh(auth_env: Path) -> None:
    tokens = login("alice", audience="urn:ci:centre")
    assert verify_token(tokens.access_token, issuer=ISSUER, audience="urn:ci:centre").subject == "alice"
    renewed = client("ci-device").refresh(tokens)
    assert renewed.audience == "urn:ci:centre" and renewed.refresh_token
    assert verify_token(renewed.access_token, issuer=ISSUER, audience="urn:ci:centre").subject == "alice"
    # the CLI hands it out for that audience without any exchange
    out = esap("token", "--audience", "urn:ci:centre", sites=None)
    assert out.returncode == 0 and out.stdout.strip() == tokens.access_token
