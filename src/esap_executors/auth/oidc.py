"""Talking to the identity provider: discovery, device login (RFC 8628), refresh, exchange (RFC 8693).

Endpoints always come from the issuer's discovery document (IAM's device endpoint is
/devicecode, not a path a client may guess). oauthlib builds the device-code and refresh
request bodies (DeviceClient) and parses every token answer, raising its typed error for an
error answer. The POSTs themselves go through `requests`: requests-oauthlib's OAuth2Session
and oauthlib's prepare_*_request/uri methods raise InsecureTransportError for http:// (the
loopback test provider) unless OAUTHLIB_INSECURE_TRANSPORT is set for the whole process.
oauthlib has no RFC 8628 polling loop, no parser for the device authorization answer and no
RFC 8693 helper: those, the exchange request and revocation are plain form POSTs here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import requests
from oauthlib.common import add_params_to_qs
from oauthlib.oauth2 import (
    AccessDeniedError,
    DeviceClient,
    InvalidClientError,
    MissingTokenError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from oauthlib.oauth2.rfc6749.errors import raise_from_error
from oauthlib.oauth2.rfc6749.parameters import parse_token_response

from ..errors import AuthError, Unreachable
from .config import AuthConfig, check_issuer_url
from .redact import redact

log = logging.getLogger(__name__)

EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
TIMEOUT = 20.0
SLOW_DOWN_STEP = 5.0  # RFC 8628 3.5: add 5 s to the interval on every slow_down


@dataclass(frozen=True)
class Discovery:
    issuer: str  # exactly as the provider spells it (IAM: with the trailing "/")
    token_endpoint: str
    jwks_uri: str
    device_authorization_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    introspection_endpoint: str | None = None
    revocation_endpoint: str | None = None
    grant_types_supported: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceAuthorization:
    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_in: float
    interval: float

    @property
    def uri_for_user(self) -> str:
        return self.verification_uri_complete or self.verification_uri


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one login; repr and str never show them."""

    issuer: str
    client_id: str
    access_token: str = field(repr=False)
    expires_at: float
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    scope: str = ""
    audience: str | None = None

    def expired(self, margin: float = 0.0) -> bool:
        return time.time() + margin >= self.expires_at

    def to_dict(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer, "client_id": self.client_id, "access_token": self.access_token,
            "expires_at": self.expires_at, "refresh_token": self.refresh_token,
            "id_token": self.id_token, "scope": self.scope, "audience": self.audience,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TokenSet:
        return cls(
            issuer=str(data["issuer"]), client_id=str(data["client_id"]),
            access_token=str(data["access_token"]), expires_at=float(data["expires_at"]),
            refresh_token=data.get("refresh_token"), id_token=data.get("id_token"),
            scope=str(data.get("scope") or ""), audience=data.get("audience"),
        )


class OidcClient:
    """One client (id, optional secret) at one issuer."""

    def __init__(self, config: AuthConfig, session: requests.Session | None = None) -> None:
        check_issuer_url(config.issuer)
        self.config = config
        self.client_id = config.require_client()
        self.session = session or config.session()
        self._oauth = DeviceClient(self.client_id)  # builds request bodies only: holds no token
        self._discovery: Discovery | None = None

    # discovery ---------------------------------------------------------------------------
    def discovery(self) -> Discovery:
        if self._discovery is None:
            self._discovery = discover(self.config.issuer, self.session)
        return self._discovery

    # device authorization grant ------------------------------------------------------------
    def start_device_login(self, scope: str | None = None, audience: str | None = None) -> DeviceAuthorization:
        endpoint = self.discovery().device_authorization_endpoint
        if not endpoint:
            raise AuthError(f"{self.config.issuer} does not offer the device authorization grant "
                            "(no device_authorization_endpoint in its discovery document)")
        data = {"scope": scope or self.config.scope}
        if audience:
            data["audience"] = audience
        reply = self._post(endpoint, urlencode(data))
        body = _json(reply, endpoint)
        if reply.status_code != 200:
            raise AuthError(f"device login refused by {self.config.issuer}: {_describe(body)}")
        try:
            return DeviceAuthorization(
                device_code=str(body["device_code"]), user_code=str(body["user_code"]),
                verification_uri=str(body["verification_uri"]),
                verification_uri_complete=body.get("verification_uri_complete"),
                expires_in=float(body.get("expires_in") or 600),
                interval=float(body.get("interval") or 5),
            )
        except KeyError as exc:
            raise AuthError(f"{endpoint}: device authorization reply lacks {exc.args[0]}") from None

    def wait_device_login(
        self,
        device: DeviceAuthorization,
        *,
        scope: str | None = None,
        audience: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        slow_down_step: float = SLOW_DOWN_STEP,
    ) -> TokenSet:
        """Poll the token endpoint until the user approved, refused, or the code expired."""
        endpoint = self.discovery().token_endpoint
        interval = device.interval
        deadline = time.monotonic() + device.expires_in
        while True:
            sleep(interval)
            reply = self._post(endpoint, self._oauth.prepare_request_body(device.device_code))
            body = _json(reply, endpoint)
            try:
                token = self._parse_token(reply, body)
            except AccessDeniedError:
                raise AuthError(f"the login was refused at {self.config.issuer} (access_denied)") from None
            except OAuth2Error as exc:  # oauthlib has no classes for the RFC 8628 errors: by name
                if exc.error == "slow_down":
                    interval += slow_down_step
                    log.debug("the provider asked to slow down: polling every %.0f s", interval)
                elif exc.error == "expired_token":
                    raise AuthError("the login code expired before it was approved: run esap login again") from None
                elif exc.error != "authorization_pending":
                    raise AuthError(f"device login failed at {self.config.issuer}: {_describe(body)}") from None
            else:
                return self._token_set(token, scope or self.config.scope, audience)
            if time.monotonic() > deadline:
                raise AuthError("the login code expired before it was approved: run esap login again")

    # refresh --------------------------------------------------------------------------------
    def refresh(self, tokens: TokenSet, *, scope: str | None = None, audience: str | None = None) -> TokenSet:
        """A new access token; with `scope`/`audience`, one narrowed to them (IAM down-scoping on refresh)."""
        if not tokens.refresh_token:
            raise AuthError(f"the session at {tokens.issuer} has expired and has no refresh token "
                            "(log in with the offline_access scope): run esap login")
        endpoint = self.discovery().token_endpoint
        form = self._oauth.prepare_refresh_body(refresh_token=tokens.refresh_token, scope=scope,
                                                audience=audience or tokens.audience)
        try:
            reply = self._post(endpoint, form)
        except Unreachable as exc:
            raise AuthError(f"the session at {tokens.issuer} expired and cannot be refreshed "
                            f"({exc}): run esap login") from None
        body = _json(reply, endpoint)
        try:
            token = self._parse_token(reply, body)
        except OAuth2Error as exc:
            if scope and exc.error == "invalid_scope":
                raise AuthError(f"the login at {tokens.issuer} does not hold the scopes {scope} "
                                f"({_describe(body)}): run esap login --scope with them") from None
            raise AuthError(f"the session at {tokens.issuer} expired and the refresh was refused "
                            f"({_describe(body)}): run esap login") from None
        renewed = self._token_set(token, scope or tokens.scope, audience or tokens.audience)
        if renewed.refresh_token is None:  # the provider did not rotate it: keep the old one
            renewed = TokenSet(**{**renewed.to_dict(), "refresh_token": tokens.refresh_token})
        return renewed

    # token exchange -------------------------------------------------------------------------
    def exchange(self, subject_token: str, *, audience: str | None, scope: str | None = None) -> TokenSet:
        """RFC 8693 impersonation: an audience-narrowed token for a centre, when the IdP allows it."""
        endpoint = self.discovery().token_endpoint
        data = {"grant_type": EXCHANGE_GRANT, "subject_token": subject_token,
                "subject_token_type": ACCESS_TOKEN_TYPE}
        if audience:
            data["audience"] = audience
        if scope:
            data["scope"] = scope
        reply = self._post(endpoint, urlencode(data))
        body = _json(reply, endpoint)
        try:  # RFC 8693 2.2: the answer has the shape of an RFC 6749 token answer
            token = self._parse_token(reply, body)
        except (UnauthorizedClientError, InvalidClientError, UnsupportedGrantTypeError) as exc:
            raise AuthError(
                f"token exchange is not enabled for client {self.client_id} at {self.config.issuer} "
                f"({exc.error}); an IAM administrator must enable the token-exchange grant for this client"
            ) from None
        except OAuth2Error:
            raise AuthError(f"token exchange refused by {self.config.issuer}: {_describe(body)}") from None
        return self._token_set(token, scope or "", audience, keep_refresh=False)

    def revoke(self, token: str, hint: str = "refresh_token") -> None:
        endpoint = self.discovery().revocation_endpoint
        if endpoint:
            try:
                self._post(endpoint, urlencode({"token": token, "token_type_hint": hint}))
            except Unreachable:
                pass

    # helpers --------------------------------------------------------------------------------
    def _post(self, url: str, form: str) -> requests.Response:
        """POST a urlencoded form; the client authenticates with HTTP Basic, or by its id in the form."""
        auth = None
        if self.config.client_secret:
            auth = (self.client_id, self.config.client_secret)
        else:
            form = add_params_to_qs(form, [("client_id", self.client_id)])
        try:
            return self.session.post(url, data=form, auth=auth, timeout=TIMEOUT, headers={
                "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"})
        except requests.RequestException as exc:
            raise Unreachable(f"{url}: {redact(str(exc))}") from None

    def _parse_token(self, reply: requests.Response, body: Mapping[str, Any]) -> dict[str, Any]:
        """The token of a 200 answer (RFC 6749 5.1); oauthlib raises its typed OAuth2Error for an error answer.

        No requested scope is passed: oauthlib would raise a Warning when the provider grants a
        different scope than asked, which RFC 6749 3.3 allows (IAM drops scopes a client may not have).
        """
        if reply.status_code != 200:
            raise_from_error(str(body.get("error") or "error"), body)
        try:
            token: dict[str, Any] = parse_token_response(reply.text)
        except MissingTokenError:
            token = {}
        except ValueError as exc:  # an expires_in that is not a whole number
            raise AuthError(f"{self.config.issuer}: {exc}") from None
        if not token.get("access_token"):  # absent (MissingTokenError) or empty
            raise AuthError(f"{self.config.issuer} answered without an access token")
        return token

    def _token_set(self, token: Mapping[str, Any], scope: str, audience: str | None,
                   keep_refresh: bool = True) -> TokenSet:
        return TokenSet(
            issuer=self.discovery().issuer,
            client_id=self.client_id,
            access_token=str(token["access_token"]),
            expires_at=time.time() + float(token.get("expires_in") or 3600),
            refresh_token=token.get("refresh_token") if keep_refresh else None,
            id_token=token.get("id_token"),
            scope=" ".join(token.get("scope") or ()) or scope,  # oauthlib gives the scope as a list
            audience=audience,
        )


_DISCOVERY_CACHE: dict[str, Discovery] = {}


def discover(issuer: str, session: requests.Session | None = None) -> Discovery:
    """The provider's discovery document; its `issuer` must be the configured one."""
    check_issuer_url(issuer)
    key = issuer.rstrip("/")
    if key in _DISCOVERY_CACHE:
        return _DISCOVERY_CACHE[key]
    url = key + "/.well-known/openid-configuration"
    http = session or requests.Session()
    try:
        reply = http.get(url, timeout=TIMEOUT, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise Unreachable(f"cannot reach the identity provider {issuer}: {redact(str(exc))}") from None
    if reply.status_code != 200:
        raise Unreachable(f"{url}: HTTP {reply.status_code} (is {issuer} an OpenID Connect issuer?)")
    document = _json(reply, url)
    found = str(document.get("issuer", ""))
    if found.rstrip("/") != key:
        raise AuthError(f"{url} describes issuer {found!r}, not {issuer!r}")
    try:
        result = Discovery(
            issuer=found,
            token_endpoint=str(document["token_endpoint"]),
            jwks_uri=str(document["jwks_uri"]),
            device_authorization_endpoint=document.get("device_authorization_endpoint"),
            userinfo_endpoint=document.get("userinfo_endpoint"),
            introspection_endpoint=document.get("introspection_endpoint"),
            revocation_endpoint=document.get("revocation_endpoint"),
            grant_types_supported=tuple(document.get("grant_types_supported") or ()),
        )
    except KeyError as exc:
        raise AuthError(f"{url}: the discovery document lacks {exc.args[0]}") from None
    for endpoint in (result.token_endpoint, result.jwks_uri):
        check_issuer_url(endpoint)
    _DISCOVERY_CACHE[key] = result
    return result


def _json(reply: requests.Response, url: str) -> dict[str, Any]:
    try:
        body = reply.json()
    except ValueError:
        raise AuthError(f"{url}: HTTP {reply.status_code}, not a JSON answer") from None
    if not isinstance(body, dict):
        raise AuthError(f"{url}: HTTP {reply.status_code}, unexpected JSON answer")
    return body


def _describe(body: Mapping[str, Any]) -> str:
    error = str(body.get("error") or "error")
    detail = body.get("error_description")
    return redact(f"{error}: {detail}" if detail else error)
