"""A notice when an unattended run ends: its summary POSTed as JSON to a URL, with retries.

The receiving service may ask for the platform token (the auth layer's bearer token); it goes
in the Authorization header only, never in a log line or the store. Where a notice cannot be
delivered the run's outcome does not change: one warning says so.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from .auth.redact import redact
from .errors import BadInput
from .formats.urls import scheme_of

log = logging.getLogger(__name__)

RETRIED_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Notifier:
    url: str
    token: Callable[[], str] | None = None  # the auth layer's token, fetched when sending
    attempts: int = 4
    backoff_s: float = 1.0  # waits 1, 2, 4 s between attempts (or the server's Retry-After)
    timeout_s: float = 10.0

    @classmethod
    def for_url(cls, url: str, *, with_token: bool = False, field: str = "--notify") -> Notifier:
        """Checked before anything is submitted: an http(s) URL with a host."""
        if scheme_of(url) not in ("http", "https") or not urlsplit(url).hostname:
            raise BadInput(f"{shown_url(url)!r} is not an http(s) URL", field=field)
        return cls(url, token=platform_token if with_token else None)

    def send(self, payload: Mapping[str, Any]) -> bool:
        """POST the payload; True once the server accepted it (2xx). Never raises."""
        body = json.dumps(payload, default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "esap-executors"}
        secret = None
        try:
            if self.token is not None:
                secret = self.token()
                headers["Authorization"] = f"Bearer {secret}"
        except Exception as exc:
            log.warning("run notice to %s not sent: no platform token (%s)", shown_url(self.url),
                        redact(str(exc), secret))
            return False
        hidden = _HiddenUrlParts(self.url)
        transport_log = logging.getLogger("urllib3.connectionpool")  # logs request lines with --debug
        transport_log.addFilter(hidden)
        try:
            return self._post(body, headers, secret)
        finally:
            transport_log.removeFilter(hidden)

    def _post(self, body: bytes, headers: dict[str, str], secret: str | None) -> bool:
        problem = ""
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                response = requests.post(self.url, data=body, headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                problem = redact(type(exc).__name__, secret)
            else:
                if 200 <= response.status_code < 300:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRIED_STATUSES:
                    break
                retry_after = _seconds(response.headers.get("Retry-After"))
            if attempt < self.attempts:
                time.sleep(min(retry_after if retry_after is not None else self.backoff_s * 2 ** (attempt - 1), 60))
        log.warning("run notice to %s not delivered: %s", shown_url(self.url), problem)
        return False


class _HiddenUrlParts(logging.Filter):
    """Takes the URL's query and user info out of the HTTP library's debug lines."""

    def __init__(self, url: str) -> None:
        super().__init__()
        parts = urlsplit(url)
        self.secrets = [s for s in (parts.query, parts.username, parts.password, parts.fragment) if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            text = record.getMessage()
            for secret in self.secrets:
                text = text.replace(secret, "[redacted]")
            record.msg, record.args = text, ()
        return True


def shown_url(url: str) -> str:
    """The URL without what may carry a secret (user info, query, fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}" if parts.scheme else "(not a URL)"


def platform_token() -> str:
    from .auth.config import load_config
    from .auth.tokens import find_token

    return find_token(load_config()).token


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None
