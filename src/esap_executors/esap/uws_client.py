"""ESAP's asynchronous jobs API (django-uws at <gateway>/uws/jobs/) as ESAP's GUI calls it, with
the user's platform token (`Authorization: Bearer`)."""

from __future__ import annotations

from typing import Any

import requests

from ..errors import AuthError, BadInput, Unreachable
from .http import json_of, send


class UwsGateway:
    def __init__(self, gateway_url: str, token: str, session: requests.Session | None = None) -> None:
        self.jobs_url = gateway_url.rstrip("/") + "/uws/jobs/"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session or requests.Session()

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"UwsGateway({self.jobs_url!r})"

    def create(self, run_id: str, parameters: list[dict[str, str]]) -> dict[str, Any]:
        """A new job in PENDING (django-uws answers 303 with the job)."""
        return self._send("post", self.jobs_url, "create the job", json={"runId": run_id, "parameters": parameters})

    def start(self, job_id: int) -> dict[str, Any]:
        return self._phase(job_id, "RUN")

    def abort(self, job_id: int) -> dict[str, Any]:
        return self._phase(job_id, "ABORT")

    def job(self, job_id: int) -> dict[str, Any]:
        return self._send("get", f"{self.jobs_url}{job_id}/", f"read job {job_id}", job_id=job_id)

    def _phase(self, job_id: int, phase: str) -> dict[str, Any]:
        return self._send("post", f"{self.jobs_url}{job_id}/phase/", f"set job {job_id} to {phase}",
                          job_id=job_id, data={"PHASE": phase})

    def _send(self, method: str, url: str, what: str, *, job_id: int | None = None, **kwargs: Any) -> dict[str, Any]:
        reply = send(self._session, method, url, what=f"ESAP UWS (to {what})", headers=self._headers,
                     allow_redirects=False, **kwargs)
        if reply.status_code in (401, 403):
            raise AuthError(f"ESAP UWS: the gateway refused the platform token ({reply.status_code}) "
                            f"to {what}; run esap login")
        if reply.status_code == 404 and job_id is not None:
            raise BadInput(f"no job {job_id} at {self.jobs_url}", field="ID")
        if reply.status_code not in (200, 201, 303):
            raise Unreachable(f"ESAP UWS: cannot {what}: the gateway answered {reply.status_code} at {url}")
        body = json_of(reply, what=f"ESAP UWS (to {what})", url=url)
        if not isinstance(body, dict):
            raise Unreachable(f"ESAP UWS: cannot {what}: unexpected answer at {url}")
        return body
