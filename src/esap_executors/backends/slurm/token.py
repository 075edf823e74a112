"""The JWT for slurmrestd, from the site's credentials; never in argv, logs or files we write."""

from __future__ import annotations

import getpass
import os
import subprocess
import threading
import time

from ...auth.settings import SiteCredentials
from ...errors import AuthError
from ...textfiles import TOKEN_MAX_BYTES, read_user_text


class TokenSource:
    """slurm_jwt: {env: VAR} | {file: PATH} | {scontrol: true, lifespan: S}; default: $SLURM_JWT."""

    def __init__(self, credentials: SiteCredentials | None, *, default_user: str | None = None,
                 scontrol: str = "scontrol") -> None:
        credentials = credentials or SiteCredentials()
        self.user = credentials.slurm_user or default_user or getpass.getuser()
        self.env_name = credentials.slurm_jwt_env
        self.file = credentials.slurm_jwt_file
        self.scontrol = credentials.slurm_jwt_scontrol
        self.lifespan = credentials.slurm_jwt_lifespan
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.scontrol_command = scontrol  # the cluster's own scontrol (site option `commands`)

    def token(self) -> str:
        if self.file:
            value = read_user_text(self.file, max_bytes=TOKEN_MAX_BYTES, field="slurm_jwt.file").strip()
            return value.removeprefix("SLURM_JWT=")
        if self.scontrol:
            with self._lock:
                if self._token is None or time.time() > self._expires - 60:
                    self._token = self._from_scontrol()
                    self._expires = time.time() + self.lifespan
                return self._token
        name = self.env_name or "SLURM_JWT"
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
        argv = [self.scontrol_command, "token", f"username={self.user}", f"lifespan={self.lifespan}"]
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
