"""Requests to ESAP carry the platform token of the auth layer: the real gateway checks it at the
test provider's userinfo endpoint (mozilla-django-oidc) and knows the user afterwards."""

from __future__ import annotations

import sqlite3

import pytest

from tests.support import esap, require_service

GATEWAY_USERS = "/var/lib/esap-ci/db/default.sqlite3"  # esap.sh's ESAP_DIR


@pytest.fixture
def alice_token() -> str:
    require_service("oidc")
    from tests.auth.conftest import login

    return login("alice", scope="openid email profile", save=False).access_token


def gateway_users() -> set[str]:
    with sqlite3.connect(GATEWAY_USERS) as db:
        return {row[0] for row in db.execute("select email from auth_user")}


def test_login_sends_the_platform_token_and_the_gateway_accepts_it(alice_token: str,
                                                                   cli_env: dict[str, str]) -> None:
    result = esap("catalogue", "list", "--source", "esap", "--login", "--json",
                  env={**cli_env, "BEARER_TOKEN": alice_token})
    assert result.returncode == 0, result.stderr
    assert alice_token not in result.stdout + result.stderr
    assert "alice@example.test" in gateway_users()  # ESAP's OIDC authentication made her a user


def test_a_token_the_gateway_refuses_is_one_line_exit_3(cli_env: dict[str, str]) -> None:
    require_service("oidc")
    result = esap("catalogue", "list", "--source", "esap", "--login",
                  env={**cli_env, "BEARER_TOKEN": "not-a-token"})
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        "esap: error: ESAP ida software: the gateway refused the platform token (401); run esap login"]


def test_reads_are_anonymous_without_login(cli_env: dict[str, str]) -> None:
    result = esap("catalogue", "list", "--source", "esap", env={**cli_env, "BEARER_TOKEN": "not-a-token"})
    assert result.returncode == 0, result.stderr  # the bad token was never sent
