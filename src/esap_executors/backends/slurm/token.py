"""The JWT for slurmrestd, from the site's credentials; never in argv, logs or files we write."""

from __future__ import annotations

import getpass
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from ...errors import AuthError

DEFAULT_LIFESPAN = 3600


def _credential(credentials: Any, name: str) -> Any:
    """Read a parsed SiteCredentials attribute, or the raw `credentials:` mapping."""
    if credentials is None:
        return None
    if isinstance(credentials, dict):
        jwt = credentials.get("slurm_jwt") or {}
        raw = {
            "slurm_user": credentials.get("slurm_user"),
            "slurm_jwt_env": jwt.get("env") if isinstance(jwt, dict) else None,
            "slurm_jwt_file": jwt.get("file") if isinstance(jwt, dict) else None,
            "slurm_jwt_scontrol": bool(jwt.get("scontrol")) if isinstance(jwt, dict) else False,
            "slurm_jwt_lifespan": jwt.get("lifespan") if isinstance(jwt, dict) else None,
        }
        return raw.get(name)
    return getattr(credentials, name, None)


class TokenSource:
    """slurm_jwt: {env: VAR} | {file: PATH} | {scontrol: true, lifespan: S}; default: $SLURM_JWT."""

    def __init__(self, credentials: Any, *, default_user: str | None = None) -> None:
        self.user = str(_credential(credentials, "slurm_user") or default_user or getpass.getuser())
        self.env_name = _credential(credentials, "slurm_jwt_env")
        self.file = _credential(credentials, "slurm_jwt_file")
        self.scontrol = bool(_credential(credentials, "slurm_jwt_scontrol"))
        self.lifespan = int(_credential(credentials, "slurm_jwt_lifespan") or DEFAULT_LIFESPAN)
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def token(self) -> str:
        if self.file:
            try:
                value = Path(os.path.expanduser(str(self.file))).read_text().strip()
            except OSError as exc:
                raise AuthError(f"cannot read the SLURM token file {self.file}: {exc.strerror}") from None
            return value.removeprefix("SLURM_JWT=")
        if self.scontrol:
            with self._lock:
                if self._token is None or time.time() > self._expires - 60:
                    self._token = self._from_scontrol()
                    self._expires = time.time() + self.lifespan
                return self._token
        name = str(self.env_name or "SLURM_JWT")
        value = os.environ.get(name, "")
        if not value:
            raise AuthError(
                f"no SLURM token: ${name} is empty (set credentials.slurm_jwt of the site: "
                "env, file, or scontrol: true)"
            )
        return value

    def refresh(self) -> None:
        """Forget a token the server refused (only scontrol tokens can be renewed by us)."""
        with self._lock:
            self._token = None

    def _from_scontrol(self) -> str:
        argv = ["scontrol", "token", f"username={self.user}", f"lifespan={self.lifespan}"]
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise AuthError(f"scontrol token failed: {exc}") from None
        if result.returncode != 0:
            raise AuthError(f"scontrol token failed: {result.stderr.strip() or result.returncode}")
        for line in result.stdout.splitlines():
            if line.startswith("SLURM_JWT="):
                return line.split("=", 1)[1].strip()
        raise AuthError("scontrol token printed no SLURM_JWT")
