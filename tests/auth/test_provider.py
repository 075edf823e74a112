"""The test provider behaves like ESCAPE IAM where a client can tell (reference iam.md §9)."""

from __future__ import annotations

from pathlib import Path

import requests

from esap_executors.auth.oidc import discover

from .conftest import ISSUER, login


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
