"""Validating access tokens against the issuer's JWKS and reading who the user is.

Groups come from whichever claim the IdP's profile fills: `groups` (IAM profile,
`escape/cta`), `wlcg.groups` (WLCG profile, `/escape/cta`) or `eduperson_entitlement` (AARC
profile, `urn:...:group:escape:cta#host`); all are normalised to `/escape/cta`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import requests
from jwt.types import Options

from ..errors import AuthError, Unreachable
from .oidc import TIMEOUT, Discovery, discover
from .redact import redact

ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]
GROUP_CLAIMS = ("groups", "wlcg.groups", "eduperson_entitlement")
_JWKS_CACHE: dict[str, jwt.PyJWKSet] = {}


@dataclass(frozen=True)
class Claims:
    subject: str
    issuer: str
    audience: tuple[str, ...]
    expires_at: float
    scope: tuple[str, ...]
    groups: tuple[str, ...]
    group_claim: str | None  # which claim the groups came from
    client_id: str | None
    name: str | None = None

    @property
    def seconds_left(self) -> float:
        return self.expires_at - time.time()


def unverified_issuer(token: str) -> str | None:
    """The `iss` a token claims, to pick the issuer whose keys must verify it."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = payload.get("iss")
    return issuer if isinstance(issuer, str) else None


def verify_token(
    token: str,
    *,
    issuer: str,
    audience: str | Sequence[str] | None = None,
    session: requests.Session | None = None,
    leeway: float = 0,
) -> Claims:
    """Signature against the issuer's JWKS, then `exp`, `iss` (exact) and `aud` when expected."""
    try:  # the token's own form first: a malformed token needs no request to the issuer
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise AuthError("the platform token is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        shown = repr(algorithm)[:40]
        raise AuthError(f"the platform token is signed with {shown}; accepted: {', '.join(ALGORITHMS)}")
    discovery = discover(issuer, session)
    key = _signing_key(discovery, header.get("kid"), session)
    options: Options = {"require": ["exp", "iss", "sub"], "verify_aud": audience is not None}
    try:
        payload = jwt.decode(token, key, algorithms=[algorithm], issuer=discovery.issuer,
                             audience=audience, options=options, leeway=leeway)
    except jwt.ExpiredSignatureError:
        raise AuthError("the platform token has expired") from None
    except jwt.InvalidSignatureError:
        raise AuthError(f"the platform token's signature does not match the keys of {discovery.issuer}") from None
    except jwt.InvalidIssuerError:
        raise AuthError(f"the platform token was not issued by {discovery.issuer}") from None
    except jwt.InvalidAudienceError:
        raise AuthError(f"the platform token is not meant for audience {_show(audience)}") from None
    except jwt.PyJWTError as exc:
        raise AuthError(f"the platform token is not valid: {redact(str(exc))}") from None
    return claims_of(payload)


def claims_of(payload: Mapping[str, Any]) -> Claims:
    groups, claim = groups_of(payload)
    audience = payload.get("aud") or ()
    scope = payload.get("scope") or ""
    return Claims(
        subject=str(payload.get("sub")),
        issuer=str(payload.get("iss")),
        audience=(audience,) if isinstance(audience, str) else tuple(str(a) for a in audience),
        expires_at=float(payload.get("exp") or 0),
        scope=tuple(scope.split()) if isinstance(scope, str) else tuple(str(s) for s in scope),
        groups=groups,
        group_claim=claim,
        client_id=payload.get("client_id") or payload.get("azp"),
        name=payload.get("preferred_username") or payload.get("name"),
    )


def groups_of(payload: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """Groups as /a/b paths from the first group claim present, and the claim's name."""
    for claim in GROUP_CLAIMS:
        values = payload.get(claim)
        if values is None:
            continue
        if isinstance(values, str):
            values = [values]
        if claim == "eduperson_entitlement":
            groups = [g for g in (entitlement_group(str(v)) for v in values) if g]
        else:
            groups = [str(v) if str(v).startswith("/") else "/" + str(v) for v in values]
        return tuple(dict.fromkeys(groups)), claim
    return (), None


def entitlement_group(urn: str) -> str | None:
    """`urn:geant:escape.eu:group:escape:cta:role=member#iam.host` -> `/escape/cta`."""
    if ":group:" not in urn:
        return None
    path = urn.split(":group:", 1)[1].split("#", 1)[0]
    parts = [p for p in path.split(":") if p and not p.startswith("role=")]
    return "/" + "/".join(parts) if parts else None


def _signing_key(discovery: Discovery, kid: str | None, session: requests.Session | None) -> Any:
    for attempt in range(2):  # refetch once: keys rotate (and a test provider's restart renews them)
        keys = _jwks(discovery, session, refresh=attempt == 1)
        for key in keys.keys:
            if kid is None or key.key_id == kid:
                return key.key
    raise AuthError(f"the platform token's signing key {kid!r} is not one of {discovery.issuer}'s keys")


def _jwks(discovery: Discovery, session: requests.Session | None, refresh: bool) -> jwt.PyJWKSet:
    if not refresh and discovery.jwks_uri in _JWKS_CACHE:
        return _JWKS_CACHE[discovery.jwks_uri]
    http = session or requests.Session()
    try:
        reply = http.get(discovery.jwks_uri, timeout=TIMEOUT)
        reply.raise_for_status()
        keys = jwt.PyJWKSet.from_dict(reply.json())
    except (requests.RequestException, ValueError, jwt.PyJWTError) as exc:
        raise Unreachable(f"cannot read the signing keys of {discovery.issuer}: {redact(str(exc))}") from None
    _JWKS_CACHE[discovery.jwks_uri] = keys
    return keys


def _show(audience: str | Sequence[str] | None) -> str:
    return audience if isinstance(audience, str) else " ".join(audience or ())
