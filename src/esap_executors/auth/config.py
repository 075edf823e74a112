"""Which identity provider and client `esap login` uses.

Sources, later ones winning: built-in defaults (ESCAPE IAM), the file ~/.config/esap/auth.yaml
(or $ESAP_AUTH_CONFIG), the environment (ESAP_OIDC_ISSUER, ESAP_OIDC_CLIENT_ID,
ESAP_OIDC_CLIENT_SECRET, ESAP_OIDC_SCOPE, ESAP_OIDC_AUDIENCE, ESAP_OIDC_CA_BUNDLE,
ESAP_OIDC_AGENT_ACCOUNT), then command-line options.

    # ~/.config/esap/auth.yaml
    issuer: https://iam-escape.cloud.cnaf.infn.it/
    client_id: <registered at the issuer with the device grant>
    client_secret: <only for a confidential client>
    scope: openid profile email offline_access wlcg.groups
    audience: <optional: the `aud` to ask for and to expect>
    ca_bundle: <optional: CA file for a private issuer; TLS verification is always on>
    oidc_agent_account: <optional: an oidc-agent account to take tokens from>
    storage:                  <optional: tokens for storage URLs by prefix, see auth/storage.py>
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..errors import AuthError, BadInput
from ..paths import config_dir
from ..yamlsource import LocatedDict, load_yaml
from .redact import redact

ESCAPE_IAM = "https://iam-escape.cloud.cnaf.infn.it/"
DEFAULT_SCOPE = "openid profile email offline_access wlcg.groups"
CONFIG_KEYS = {
    "issuer", "client_id", "client_secret", "scope", "audience", "ca_bundle", "oidc_agent_account",
}
SECTIONS = {"storage"}  # blocks of auth.yaml read by their own owner (auth/storage.py)
ENV_NAMES = {
    "issuer": "ESAP_OIDC_ISSUER",
    "client_id": "ESAP_OIDC_CLIENT_ID",
    "client_secret": "ESAP_OIDC_CLIENT_SECRET",
    "scope": "ESAP_OIDC_SCOPE",
    "audience": "ESAP_OIDC_AUDIENCE",
    "ca_bundle": "ESAP_OIDC_CA_BUNDLE",
    "oidc_agent_account": "ESAP_OIDC_AGENT_ACCOUNT",
}


@dataclass(frozen=True)
class AuthConfig:
    issuer: str = ESCAPE_IAM
    client_id: str | None = None
    client_secret: str | None = None
    scope: str = DEFAULT_SCOPE
    audience: str | None = None
    ca_bundle: str | None = None
    oidc_agent_account: str | None = None
    source: str = "built-in defaults"

    def __repr__(self) -> str:  # the secret stays out of logs and tracebacks
        secret = "set" if self.client_secret else "none"
        return f"AuthConfig(issuer={self.issuer!r}, client_id={self.client_id!r}, secret={secret})"

    @property
    def verify(self) -> bool | str:
        """What requests' `verify=` gets: always on, optionally with a private CA bundle."""
        return self.ca_bundle or True

    def session(self) -> requests.Session:
        """An HTTP session for the issuer: TLS verified, with the configured CA bundle if any."""
        http = requests.Session()
        http.verify = self.verify
        return http

    def require_client(self) -> str:
        if not self.client_id:
            raise AuthError(
                f"no OIDC client id configured for {self.issuer}: set client_id in "
                f"{config_file_path()}, ESAP_OIDC_CLIENT_ID or --client-id (register a client "
                "with the device grant at the issuer; esap has no client of its own)"
            )
        return self.client_id


def config_file_path() -> Path:
    explicit = os.environ.get("ESAP_AUTH_CONFIG")
    return Path(explicit).expanduser() if explicit else config_dir() / "auth.yaml"


def load_config(**overrides: str | None) -> AuthConfig:
    """Defaults < auth.yaml < environment < non-None overrides (command-line options)."""
    values: dict[str, str] = {}
    origins: dict[str, tuple[str | None, int | None, str]] = {}  # key -> (file, line, field) for messages
    sources = ["built-in defaults"]
    path = config_file_path()
    if path.exists() or os.environ.get("ESAP_AUTH_CONFIG"):
        data = load_yaml(path)
        if data is not None:
            if not isinstance(data, LocatedDict):
                raise BadInput("expected a mapping of settings", source=str(path), line=1)
            for key, value in data.items():
                if key in SECTIONS:
                    continue
                if key not in CONFIG_KEYS:
                    raise BadInput(f"unknown key (known: {', '.join(sorted(CONFIG_KEYS | SECTIONS))})",
                                   source=str(path), line=data.line_of(key), field=key)
                if isinstance(value, dict | list) or isinstance(value, str) and not value.strip():
                    raise BadInput("expected a text value (leave the key out for the default)",
                                   source=str(path), line=data.line_of(key), field=key)
                if value is not None:
                    values[key] = str(value)
                    origins[key] = (str(path), data.line_of(key), key)
            sources.append(str(path))
    for key, env_name in ENV_NAMES.items():
        if os.environ.get(env_name):
            values[key] = os.environ[env_name]
            origins[key] = (None, None, env_name)
            sources.append(env_name)
    for key, value in overrides.items():
        if key not in CONFIG_KEYS:
            raise TypeError(f"unknown auth setting {key}")
        if value is not None:
            if not value.strip():
                raise BadInput("is empty", field="--" + key.replace("_", "-"))
            values[key] = value
            origins[key] = (None, None, "--" + key.replace("_", "-"))
    config = replace(AuthConfig(), **values, source=", ".join(sources))
    try:
        check_issuer_url(config.issuer)
        if config.ca_bundle is not None and not os.path.exists(os.path.expanduser(config.ca_bundle)):
            raise BadInput(f"{config.ca_bundle}: no such CA bundle file", field="ca_bundle")
    except BadInput as exc:
        source, line, field = origins.get(exc.field or "", (None, None, exc.field))
        raise BadInput(exc.detail, source=source, line=line, field=field) from None
    return config


def check_issuer_url(issuer: str) -> None:
    """https only, except plain http on loopback (a local test provider)."""
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as exc:
        raise BadInput(f"{issuer}: not a URL ({exc})", field="issuer") from None
    if parts.username is not None or parts.password is not None:
        raise BadInput(f"{redact(issuer)}: an issuer URL carries no user name or password", field="issuer")
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return
    if parts.scheme == "http":
        raise BadInput(f"{issuer}: http:// issuers are refused except on loopback; use https://",
                       field="issuer")
    raise BadInput(f"{issuer}: not an https:// issuer URL", field="issuer")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
