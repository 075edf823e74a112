"""Reaching a site's schedd and collector with the site's authentication methods and token."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import htcondor2 as htcondor

from ...errors import AuthError, BadInput, Unreachable
from ...sites import Site

# The bindings read security settings from process-wide configuration: one site at a time.
_CONFIG_LOCK = threading.RLock()
T = TypeVar("T")
DEFAULT_METHODS = ("IDTOKENS", "FS")
# The methods a site's `credentials.htcondor_auth` may name (checked when the catalogue is
# read): those this connection can set up for the bindings on its own.
AUTH_METHODS = ("IDTOKENS", "TOKEN", "SCITOKENS", "FS", "SSL", "PASSWORD", "CLAIMTOBE")


def run_as_owner(site: Site) -> str | None:
    """The user the site's jobs belong to: `options.owner` when esap runs as root (else the submitter)."""
    owner = site.options.get("owner")
    return str(owner) if owner and os.geteuid() == 0 else None


class Connection:
    """The schedd (and collector) of one site; every call goes through `session()`."""

    def __init__(self, site: Site) -> None:
        self.site = site
        credentials = site.credentials
        self.methods = (credentials.htcondor_auth if credentials else ()) or DEFAULT_METHODS
        self.token_file = credentials.htcondor_idtoken if credentials else None
        self._token_dir: str | None = None
        self._schedd: Any = None

    def _token_directory(self) -> str | None:
        """A private directory holding only the site's token (the bindings read directories)."""
        if not self.token_file or "IDTOKENS" not in self.methods:
            return None
        if not os.path.isfile(self.token_file):
            if self.methods == ("IDTOKENS",):
                raise AuthError(
                    f"site {self.site.name}: IDTOKEN file {self.token_file} does not exist "
                    "(ask the pool's admin for a token: condor_token_fetch)"
                )
            return None
        if self._token_dir is None:
            self._token_dir = tempfile.mkdtemp(prefix="esap-htcondor-token-")
            os.symlink(os.path.abspath(self.token_file), os.path.join(self._token_dir, "site-token"))
        return self._token_dir

    def run(self, what: str, action: Callable[[Any], T], *, idempotent: bool = True) -> T:
        """`action(schedd)` with this site's security settings; errors become the user's errors.

        Retried once when the schedd forgot our security session (it restarted), when locating
        the schedd failed (nothing was sent: a restarted collector forgot our session), and for
        idempotent actions also when it could not be reached for a moment.
        """
        settings = {"SEC_CLIENT_AUTHENTICATION_METHODS": ", ".join(self.methods)}
        with _CONFIG_LOCK, _configured(settings, self._token_directory()):
            located_again = sent_again = False
            while True:
                try:
                    schedd = self.schedd()
                except htcondor.HTCondorException as exc:
                    self._schedd = None
                    if located_again:
                        raise error_for(self.site, what, exc) from None
                    located_again = True
                    time.sleep(0.5)
                    continue
                try:
                    return action(schedd)
                except htcondor.HTCondorException as exc:
                    self._schedd = None  # located again (a restarted schedd may have moved)
                    text = str(exc).lower()
                    if sent_again or not ("session" in text or idempotent):
                        raise error_for(self.site, what, exc) from None
                    sent_again = True
                    time.sleep(0.5)

    def schedd(self) -> Any:
        """Call inside run()."""
        if self._schedd is None:
            options = self.site.options
            if options.get("collector") or options.get("schedd"):
                collector = htcondor.Collector(options.get("collector"))
                name = options.get("schedd")
                ad = collector.locate(htcondor.DaemonType.Schedd, name) if name else \
                    collector.locate(htcondor.DaemonType.Schedd)
                self._schedd = htcondor.Schedd(ad)
            else:
                self._schedd = htcondor.Schedd()
        return self._schedd

    def collector(self) -> Any:
        return htcondor.Collector(self.site.options.get("collector"))

    def close(self) -> None:
        if self._token_dir:
            shutil.rmtree(self._token_dir, ignore_errors=True)
            self._token_dir = None
        self._schedd = None


@contextmanager
def _configured(settings: dict[str, str], token_dir: str | None) -> Iterator[None]:
    """Set the bindings' configuration for one call, then put back what was there."""
    if token_dir:
        settings = {**settings, "SEC_TOKEN_DIRECTORY": token_dir}
    previous = {name: htcondor.param.get(name) for name in settings}
    for name, value in settings.items():
        htcondor.param[name] = value
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                del htcondor.param[name]
            else:
                htcondor.param[name] = value


def error_for(site: Site, what: str, exc: Exception) -> Exception:
    text = str(exc).strip().replace("\n", " ")
    lowered = text.lower()
    if "owner" in lowered and "root" in lowered:
        return AuthError(f"site {site.name}: HTCondor refuses jobs owned by root; set options.owner "
                         f"to an unprivileged user with a token ({text})")
    if any(word in lowered for word in ("authenticat", "permission denied", "not authorized", "security")):
        return AuthError(f"site {site.name}: {what}: HTCondor refused the credentials ({text})")
    if any(word in lowered for word in ("locate", "connect", "timed out", "timeout", "unable to")):
        return Unreachable(f"site {site.name}: {what}: schedd not reachable ({text})")
    return Unreachable(f"site {site.name}: {what} failed: {text}")


def owner_account(name: str) -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BadInput(f"user {name!r} does not exist on this machine", field="options.owner") from None
    return entry.pw_uid, entry.pw_gid


def give_to(path: str | Path, uid: int, gid: int) -> None:
    """chown a directory or file we created for a job owned by another user (root submits)."""
    try:
        os.chown(path, uid, gid)
    except FileNotFoundError:
        pass
