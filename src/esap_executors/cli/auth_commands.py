"""`esap login`, `logout`, `whoami`, `token`: the platform identity (ESCAPE IAM by default)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..auth.config import AuthConfig, load_config
from ..auth.jwt_check import Claims, verify_token
from ..auth.oidc import OidcClient, TokenSet
from ..auth.tokens import TokenCache, config_for_login, find_token, oidc_agent_token
from ..errors import AuthError
from .main import global_options


def register(subparsers: Any) -> None:
    login = subparsers.add_parser(
        "login", parents=[global_options()],
        help="log in at the identity provider (device flow: open the printed address to approve)",
    )
    _add_provider_options(login)
    login.add_argument("--scope", help="scopes to ask for (default: from the configuration)")
    login.add_argument("--audience", help="the `aud` the access token should carry")
    login.set_defaults(handler=login_command)

    logout = subparsers.add_parser("logout", parents=[global_options()],
                                   help="forget the cached tokens (and revoke the refresh token)")
    logout.set_defaults(handler=logout_command)

    whoami = subparsers.add_parser("whoami", parents=[global_options()],
                                   help="who the platform token says you are (never prints the token)")
    whoami.add_argument("--json", action="store_true")
    whoami.set_defaults(handler=whoami_command)

    token = subparsers.add_parser("token", parents=[global_options()],
                                  help="print the access token (for piping into another program)")
    token.add_argument("--audience", help="a token for this audience (token exchange when needed)")
    token.set_defaults(handler=token_command)


def _add_provider_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--issuer", help="OpenID Connect issuer (default: ESCAPE IAM, or the configuration)")
    parser.add_argument("--client-id", help="client registered at the issuer with the device grant")


def login_command(args: argparse.Namespace) -> int:
    config = load_config(issuer=args.issuer, client_id=args.client_id, scope=args.scope,
                         audience=args.audience)
    client = OidcClient(config)
    scope = config.scope
    device = client.start_device_login(scope, config.audience)
    minutes = max(1, round(device.expires_in / 60))
    print("To log in, open this address in a browser and approve the request:")
    print(f"  {device.uri_for_user}")
    print(f"(code {device.user_code}, valid for {minutes} min; waiting for approval...)", flush=True)
    tokens = client.wait_device_login(device, scope=scope, audience=config.audience)
    TokenCache().save(tokens)
    claims = _claims_or_none(tokens, config)
    who = f" as {claims.subject}" if claims else ""
    groups = f"; groups: {', '.join(claims.groups) or 'none'}" if claims else ""
    refresh = "" if tokens.refresh_token else " (no refresh token: ask for offline_access to stay logged in)"
    print(f"Logged in at {tokens.issuer}{who}{groups}{refresh}")
    return 0


def logout_command(args: argparse.Namespace) -> int:
    cache = TokenCache()
    gone = cache.remove()
    if not gone:
        print("Not logged in.")
        return 0
    config = load_config()
    for tokens in gone:
        if tokens.refresh_token:
            try:
                OidcClient(config_for_login(config, tokens)).revoke(tokens.refresh_token)
            except Exception:  # revocation is a courtesy to the IdP; the cache is already gone
                pass
        print(f"Logged out of {tokens.issuer} (client {tokens.client_id}).")
    return 0


def whoami_command(args: argparse.Namespace) -> int:
    config = load_config()
    found = find_token(config)
    issuer = found.tokens.issuer if found.tokens else config.issuer
    audience = found.tokens.audience if found.tokens else config.audience
    claims = verify_token(found.token, issuer=issuer, audience=audience, session=config.session())
    if args.json:
        print(json.dumps({
            "subject": claims.subject, "issuer": claims.issuer, "groups": list(claims.groups),
            "group_claim": claims.group_claim, "audience": list(claims.audience),
            "scope": list(claims.scope), "expires_at": claims.expires_at, "source": found.source,
        }, indent=2))
        return 0
    expiry = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(claims.expires_at))
    left = max(0, int(claims.seconds_left))
    groups = ", ".join(claims.groups) or "none"
    claim = f" (from {claims.group_claim})" if claims.group_claim else ""
    print(f"subject:  {claims.subject}")
    print(f"issuer:   {claims.issuer}")
    print(f"groups:   {groups}{claim}")
    print(f"audience: {', '.join(claims.audience) or '-'}")
    print(f"expires:  {expiry} (in {left // 60} min {left % 60} s)")
    print(f"source:   {found.source}")
    return 0


def token_command(args: argparse.Namespace) -> int:
    config = load_config()
    found = find_token(config)
    token = found.token
    if args.audience:
        token = _token_for_audience(config, found.token, found.tokens, found.source, args.audience)
    sys.stdout.write(token + "\n")
    return 0


def _token_for_audience(config: AuthConfig, token: str, tokens: TokenSet | None, source: str,
                        audience: str) -> str:
    """The current token when it already carries the audience, else an exchanged one."""
    issuer = tokens.issuer if tokens else config.issuer
    try:
        verify_token(token, issuer=issuer, audience=audience, session=config.session())
        return token
    except AuthError:
        pass
    if source.startswith("oidc-agent"):
        agent = oidc_agent_token(config, audience)
        if agent is not None:
            return agent.token
    login_config = config_for_login(config, tokens) if tokens else config
    exchanged = OidcClient(login_config).exchange(token, audience=audience)
    return exchanged.access_token


def _claims_or_none(tokens: TokenSet, config: AuthConfig) -> Claims | None:
    try:
        return verify_token(tokens.access_token, issuer=tokens.issuer, audience=tokens.audience,
                            session=config.session())
    except AuthError:
        return None
