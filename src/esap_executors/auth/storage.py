"""Which bearer token a storage URL gets: the `storage:` section of auth.yaml, by URL prefix.

    # ~/.config/esap/auth.yaml
    storage:
      davs://webdav.example.org/escape/:        # longest matching prefix wins; davs:// = https://
        audience: https://webdav.example.org    # the `aud` the storage accepts
        scopes: [storage.read:/escape, storage.modify:/escape]   # data-lake (WLCG) scopes
        ca_bundle: /etc/grid-security/ca.pem    # optional: CA of a private storage

A URL no prefix matches gets no token (public data: a token is never sent to a host that was
not named). For a matching URL the token is, in order: a WLCG bearer token the user set
(BEARER_TOKEN, BEARER_TOKEN_FILE, bt_u$UID files, oidc-agent) used as it is, else the esap login's
refresh token narrowed by the identity provider to the rule's scopes and audience (IAM's
down-scoping on refresh; the login must hold those scopes: `esap login --scope "... storage.read:/escape"`).
Narrowed tokens live in this process's memory only, until shortly before they expire.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jwt

from ..errors import BadInput
from ..formats.urls import scheme_of
from ..yamlsource import LocatedDict, load_yaml, no_unknown_keys
from .config import AuthConfig, config_file_path, load_config
from .tokens import REFRESH_MARGIN, TokenCache, external_token

RULE_KEYS = {"audience", "scopes", "ca_bundle"}
WEB_SCHEMES = {"davs": "https", "dav": "http", "https": "https", "http": "http"}
OPERATIONS = {"read": ("read",), "write": ("create", "modify")}


def web_url(url: str) -> str:
    """davs://h/p -> https://h/p (WebDAV over TLS is HTTPS); http(s) URLs unchanged."""
    scheme = scheme_of(url)
    if scheme not in WEB_SCHEMES:
        raise BadInput(f"{url!r}: not an https://, http://, davs:// or dav:// URL", field="url")
    return WEB_SCHEMES[scheme] + url[len(scheme):]


@dataclass(frozen=True)
class StorageRule:
    prefix: str  # as written
    audience: str | None
    scopes: tuple[str, ...]
    ca_bundle: str | None
    where: str  # file:line, for messages

    @property
    def web_prefix(self) -> str:
        return web_url(self.prefix)


@dataclass(frozen=True)
class StorageAccess:
    """What a transfer to/from one URL needs: its token (or None) and TLS context."""

    url: str  # the https:// or http:// form
    rule: StorageRule | None
    token: str | None = field(repr=False)
    token_source: str | None
    ssl_context: ssl.SSLContext = field(repr=False)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def scopes(self) -> tuple[str, ...]:
        """The scopes the token says it carries (unverified: the storage verifies it)."""
        if not self.token:
            return ()
        try:
            claims = jwt.decode(self.token, options={"verify_signature": False})
        except jwt.PyJWTError:
            return ()
        scope = claims.get("scope") or ""
        return tuple(scope.split()) if isinstance(scope, str) else tuple(str(s) for s in scope)

    def lacks(self, operation: str, path: str) -> str | None:
        """The storage scope a `read`/`write` on `path` needs that the token visibly lacks, else None.

        Only a JWT that carries storage.* scopes is judged; any other token is left to the storage.
        """
        held = [s for s in self.scopes() if s.startswith("storage.")]
        if not held:
            return None
        for scope in held:
            kind, _, scope_path = scope.partition(":")
            if kind.removeprefix("storage.") in OPERATIONS[operation] and _covers(scope_path, path):
                return None
        return f"storage.{'read' if operation == 'read' else 'modify'}:{path}"


def _covers(scope_path: str, path: str) -> bool:
    base = scope_path.rstrip("/")
    return scope_path.startswith("/") and (base == "" or path == base or path.startswith(base + "/"))


def load_rules() -> tuple[StorageRule, ...]:
    path = config_file_path()
    return _rules_of(str(path), path.stat().st_mtime_ns) if path.is_file() else ()


@lru_cache(maxsize=4)
def _rules_of(path: str, _mtime: int) -> tuple[StorageRule, ...]:
    data = load_yaml(path)
    if not isinstance(data, LocatedDict) or "storage" not in data or data["storage"] is None:
        return ()
    block = data["storage"]
    if not isinstance(block, LocatedDict):
        raise BadInput("expected a mapping of URL prefixes", source=path, line=data.line_of("storage"),
                       field="storage")
    rules = []
    for prefix, settings in block.items():
        line = block.line_of(prefix)
        name = f"storage.{prefix}"
        if scheme_of(prefix) not in WEB_SCHEMES:
            raise BadInput("a prefix is an https://, http://, davs:// or dav:// URL", source=path, line=line,
                           field=name)
        if not isinstance(settings, LocatedDict):
            raise BadInput("expected a mapping (audience, scopes, ca_bundle)", source=path, line=line, field=name)
        no_unknown_keys(settings, RULE_KEYS, path, name)
        scopes = settings.get("scopes") or []
        if isinstance(scopes, str):
            scopes = scopes.split()
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s.strip() for s in scopes):
            raise BadInput("expected a list of scopes, e.g. [storage.read:/escape]", source=path,
                           line=settings.line_of("scopes"), field=f"{name}.scopes")
        ca_bundle = settings.get("ca_bundle")
        if ca_bundle is not None and not Path(str(ca_bundle)).expanduser().is_file():
            raise BadInput(f"no such file {ca_bundle!r}", source=path, line=settings.line_of("ca_bundle"),
                           field=f"{name}.ca_bundle")
        audience = settings.get("audience")
        rules.append(StorageRule(
            prefix=prefix, audience=str(audience) if audience else None, scopes=tuple(s.strip() for s in scopes),
            ca_bundle=str(Path(str(ca_bundle)).expanduser()) if ca_bundle else None, where=f"{path}:{line}"))
    return tuple(rules)


def rule_for(url: str, rules: tuple[StorageRule, ...] | None = None) -> StorageRule | None:
    target = web_url(url)
    matches = [r for r in (load_rules() if rules is None else rules) if target.startswith(r.web_prefix)]
    return max(matches, key=lambda r: len(r.web_prefix)) if matches else None


_LOCK = threading.Lock()
_NARROWED: dict[tuple[str, str | None, str, str | None], tuple[str, float]] = {}


def access_for(url: str) -> StorageAccess:
    """The token and TLS settings for one URL (see the module's docstring)."""
    import os

    rule = rule_for(url)
    bundle = (rule.ca_bundle if rule else None) or os.environ.get("REQUESTS_CA_BUNDLE") or \
        os.environ.get("SSL_CERT_FILE")
    context = _ssl_context(bundle)
    if rule is None:
        return StorageAccess(web_url(url), None, None, None, context)
    config = load_config()
    found = external_token(config)
    if found is not None:
        return StorageAccess(web_url(url), rule, found.token, found.source, context)
    return StorageAccess(web_url(url), rule, _narrowed_token(config, rule), f"esap login narrowed by {rule.where}",
                         context)


def _narrowed_token(config: AuthConfig, rule: StorageRule) -> str:
    import time

    scope = " ".join(rule.scopes)
    key = (config.issuer, config.client_id, scope, rule.audience)
    with _LOCK:
        cached = _NARROWED.get(key)
        if cached and cached[1] - REFRESH_MARGIN > time.time():
            return cached[0]
        tokens = TokenCache().narrowed(config, scope, rule.audience)
        _NARROWED[key] = (tokens.access_token, tokens.expires_at)
        return tokens.access_token


@lru_cache(maxsize=8)
def _ssl_context(bundle: str | None) -> ssl.SSLContext:
    """Verification always on: the rule's CA bundle, else REQUESTS_CA_BUNDLE / SSL_CERT_FILE, else the system's."""
    return ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()


def read_access_for(url: str) -> StorageAccess:
    """Like access_for, for a job that only reads: the esap login's token is narrowed to the rule's
    storage.read scopes (a token the user set is passed as it is: it cannot be narrowed here)."""
    import dataclasses

    rule = rule_for(url)
    if rule is None:
        return access_for(url)
    config = load_config()
    if external_token(config) is not None:
        return access_for(url)
    reads = tuple(s for s in rule.scopes if s.startswith("storage.read:"))
    narrowed = dataclasses.replace(rule, scopes=reads or rule.scopes)
    context = access_for(url).ssl_context if rule.ca_bundle is None else _ssl_context(rule.ca_bundle)
    return StorageAccess(web_url(url), rule, _narrowed_token(config, narrowed),
                         f"esap login narrowed to {' '.join(narrowed.scopes)} by {rule.where}", context)
