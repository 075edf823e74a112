"""Where the platform token comes from, in the WLCG bearer-token discovery order, then esap's cache.

1. $BEARER_TOKEN   2. the file $BEARER_TOKEN_FILE   3. $XDG_RUNTIME_DIR/bt_u$UID
4. /tmp/bt_u$UID   5. oidc-agent (`oidc-token`), when an account is configured and the agent runs
6. esap's own cache, written by `esap login`: <state dir>/auth/tokens.json, mode 0600 in a 0700
   directory; an expired token there is refreshed without asking the user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AuthError
from ..paths import state_dir
from ..textfiles import TOKEN_MAX_BYTES, read_user_text
from .config import AuthConfig
from .oidc import OidcClient, TokenSet

REFRESH_MARGIN = 30.0  # refresh a cached token this many seconds before it expires


@dataclass(frozen=True)
class FoundToken:
    token: str = field(repr=False)
    source: str  # e.g. "BEARER_TOKEN", "file /tmp/bt_u0", "esap login cache"
    tokens: TokenSet | None = None  # set when it came from esap's cache


def find_token(config: AuthConfig, *, refresh: bool = True) -> FoundToken:
    """The first token source that has a token; AuthError telling what to do when none has."""
    found = external_token(config)
    if found is not None:
        return found
    cache = TokenCache()
    tokens = cache.load(config.issuer, config.client_id)
    if tokens is None:
        raise AuthError(f"no platform token: run esap login (issuer {config.issuer}), "
                        "or set BEARER_TOKEN / BEARER_TOKEN_FILE")
    if refresh and tokens.expired(REFRESH_MARGIN):
        tokens = cache.refreshed(config, tokens)
    return FoundToken(tokens.access_token, f"esap login cache {cache.path}", tokens)


def external_token(config: AuthConfig) -> FoundToken | None:
    value = os.environ.get("BEARER_TOKEN", "").strip()
    if value:
        return FoundToken(value, "BEARER_TOKEN")
    explicit = os.environ.get("BEARER_TOKEN_FILE")
    if explicit:
        token = _read_token_file(Path(explicit))
        if token is None:
            raise AuthError(f"BEARER_TOKEN_FILE={explicit} names no readable token file")
        return FoundToken(token, f"file {explicit}")
    uid = os.getuid()
    candidates = []
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / f"bt_u{uid}")
    candidates.append(Path("/tmp") / f"bt_u{uid}")
    for path in candidates:
        token = _read_token_file(path)
        if token is not None:
            return FoundToken(token, f"file {path}")
    return oidc_agent_token(config)


def oidc_agent_token(config: AuthConfig, audience: str | None = None) -> FoundToken | None:
    """A token from a running oidc-agent (needs its socket and a configured account)."""
    account = config.oidc_agent_account
    program = shutil.which("oidc-token")
    if not account or not program or not os.environ.get("OIDC_SOCK"):
        return None
    argv = [program]
    if audience:
        argv += ["--aud", audience]
    argv.append(account)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    token = result.stdout.strip()
    if result.returncode != 0 or not token:
        raise AuthError(f"oidc-agent gave no token for account {account!r} "
                        f"(oidc-token exit {result.returncode})")
    return FoundToken(token, f"oidc-agent account {account}")


def _read_token_file(path: Path) -> str | None:
    """A token file's token; None when there is no such file. A file that is there but is no
    token file (a FIFO, a device, binary data, megabytes) is refused by name."""
    if not path.exists():
        return None
    text = read_user_text(path, max_bytes=TOKEN_MAX_BYTES, field="token file").strip()
    return text or None


class TokenCache:
    """Tokens per (issuer, client id) in one JSON file only its owner can read."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or state_dir() / "auth"
        self.path = self.directory / "tokens.json"

    def load(self, issuer: str | None = None, client_id: str | None = None) -> TokenSet | None:
        """The login at (issuer, client) when there is one, else the latest login."""
        entries = self._read()
        stored = entries.get("tokens", {})
        if issuer and client_id:
            for data in stored.values():
                if data["issuer"].rstrip("/") == issuer.rstrip("/") and data["client_id"] == client_id:
                    return TokenSet.from_dict(data)
        current = stored.get(entries.get("current"))
        return TokenSet.from_dict(current) if current else None

    def save(self, tokens: TokenSet) -> None:
        with self._locked():
            entries = self._read()
            key = _key(tokens.issuer, tokens.client_id)
            entries.setdefault("tokens", {})[key] = tokens.to_dict()
            entries["current"] = key
            self._write(entries)

    def remove(self, issuer: str | None = None, client_id: str | None = None) -> list[TokenSet]:
        """Forget the tokens of one login (issuer+client) or, without arguments, all of them."""
        with self._locked():
            entries = self._read()
            stored = entries.get("tokens", {})
            gone = [TokenSet.from_dict(v) for k, v in stored.items()
                    if issuer is None or (v["issuer"].rstrip("/") == issuer.rstrip("/")
                                          and (client_id is None or v["client_id"] == client_id))]
            for tokens in gone:
                stored.pop(_key(tokens.issuer, tokens.client_id), None)
            if entries.get("current") not in stored:
                entries.pop("current", None)
            self._write(entries)
        return gone

    def refreshed(self, config: AuthConfig, tokens: TokenSet) -> TokenSet:
        """Renew an expired token; another process may have done it already (file lock)."""
        with self._locked():
            current = self.load(tokens.issuer, tokens.client_id) or tokens
            if not current.expired(REFRESH_MARGIN):
                return current
            client = OidcClient(config_for_login(config, current))
            renewed = client.refresh(current)
            entries = self._read()
            key = _key(renewed.issuer, renewed.client_id)
            entries.setdefault("tokens", {})[key] = renewed.to_dict()
            self._write(entries)
            return renewed

    def narrowed(self, config: AuthConfig, scope: str, audience: str | None) -> TokenSet:
        """An access token of the login narrowed to `scope` and `audience` by a refresh (not cached on disk).

        A provider that rotates refresh tokens hands a new one back: it replaces the login's own,
        under the same lock as a plain refresh, so the login stays usable.
        """
        with self._locked():
            login = self.load(config.issuer, config.client_id)
            if login is None:
                raise AuthError(f"no platform login for storage tokens: run esap login (issuer {config.issuer}), "
                                "or set BEARER_TOKEN / BEARER_TOKEN_FILE")
            client = OidcClient(config_for_login(config, login))
            narrow = client.refresh(login, scope=scope, audience=audience)
            if narrow.refresh_token and narrow.refresh_token != login.refresh_token:
                entries = self._read()
                kept = TokenSet(**{**login.to_dict(), "refresh_token": narrow.refresh_token})
                entries.setdefault("tokens", {})[_key(kept.issuer, kept.client_id)] = kept.to_dict()
                self._write(entries)
            return narrow

    # storage --------------------------------------------------------------------------------
    def _ensure_directory(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = stat.S_IMODE(self.directory.stat().st_mode)
        if mode != 0o700:
            os.chmod(self.directory, 0o700)

    def _read(self) -> dict:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        if info.st_uid != os.getuid():
            raise AuthError(f"the token cache {self.path} belongs to another user: run esap login")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise AuthError(f"the token cache {self.path} is readable by others "
                            f"(mode {stat.S_IMODE(info.st_mode):o}): run esap logout, then esap login")
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            raise AuthError(f"the token cache {self.path} is damaged: run esap login") from None
        return data if isinstance(data, dict) else {}

    def _write(self, entries: dict) -> None:
        self._ensure_directory()
        temporary = self.path.with_name(f".tokens.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            os.fchmod(handle.fileno(), 0o600)
            json.dump(entries, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._ensure_directory()
        descriptor = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)


def _key(issuer: str, client_id: str | None) -> str:
    return f"{issuer.rstrip('/')}/ {client_id}"


def config_for_login(config: AuthConfig, tokens: TokenSet) -> AuthConfig:
    """The login's own issuer and client (the current config may name another)."""
    from dataclasses import replace

    if config.issuer.rstrip("/") == tokens.issuer.rstrip("/") and config.client_id == tokens.client_id:
        return config
    secret = config.client_secret if config.client_id in (None, tokens.client_id) else None
    return replace(config, issuer=tokens.issuer, client_id=tokens.client_id, client_secret=secret)
