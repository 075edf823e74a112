"""Following a UWS job's front: the job's phase at the gateway, and a front that never outlives an error.

django-uws's ABORT only changes the phase (and deletes the job's token); the worker asks the gateway
for the job every cycle and stops once the token is refused or the phase is final. A gateway that
cannot answer for a moment (down, a proxy's error page instead of JSON) is a hiccup: the run goes on
and the next cycle asks again, but only for `ESAP_UWS_GATEWAY_PATIENCE` seconds (default 900) in a
row. Any error while following (that one, a state store that fails, the worker's own) stops the
front, so it submits nothing more; the worker then cancels the run.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable

import requests

from ..errors import Unreachable

PATIENCE_ENV = "ESAP_UWS_GATEWAY_PATIENCE"
FINAL_PHASES = ("ABORTED", "ERROR", "COMPLETED")


class JobFinalised(Exception):
    """The job's phase was set final by someone else (ABORT): its token is no longer accepted."""


class PhaseWatch:
    """The job's phase at `job_url`, asked with its one-time token."""

    def __init__(self, job_url: str, job_token: str, patience: float | None = None) -> None:
        self.job_url = job_url
        self._headers = {"Authorization": f"Token {job_token}"}
        self.patience = patience if patience is not None else float(os.environ.get(PATIENCE_ENV, "900"))
        self._failing_since: float | None = None

    def __repr__(self) -> str:  # the job's token stays out of logs and tracebacks
        return f"PhaseWatch({self.job_url!r})"

    def check(self) -> None:
        """JobFinalised once the gateway no longer accepts the token or the phase is final; Unreachable
        once the gateway has not answered for longer than the patience."""
        try:
            reply = requests.get(self.job_url, headers=self._headers, timeout=30)
        except requests.RequestException as exc:
            return self._hiccup(f"unreachable ({type(exc).__name__})")
        if reply.status_code in (401, 403, 404):
            raise JobFinalised()
        if not reply.ok:
            return self._hiccup(f"answered {reply.status_code}")
        try:
            job = reply.json()
        except ValueError:
            return self._hiccup("answered something that is not JSON")
        if not isinstance(job, dict):
            return self._hiccup("answered something that is not a job")
        self._failing_since = None
        if job.get("phase") in FINAL_PHASES:
            raise JobFinalised()

    def _hiccup(self, what: str) -> None:
        now = time.monotonic()
        if self._failing_since is None:
            self._failing_since = now
        elif now - self._failing_since > self.patience:
            raise Unreachable(f"the ESAP gateway {what} at {self.job_url} for more than {self.patience:g}s: "
                              "the run was stopped")


def follow(front: subprocess.Popen[bytes], every_cycle: Callable[[], None], poll_seconds: float) -> None:
    """Wait for the front, calling `every_cycle` between polls; on any error stop the front, then raise."""
    try:
        while front.poll() is None:
            time.sleep(poll_seconds)
            every_cycle()
    except BaseException:
        stop(front)
        raise


def stop(front: subprocess.Popen[bytes]) -> None:
    if front.poll() is None:
        front.terminate()
        try:
            front.wait(timeout=20)
        except subprocess.TimeoutExpired:
            front.kill()
            front.wait()
