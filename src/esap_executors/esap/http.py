"""GET JSON from ESAP or Zenodo: one place that turns transport failures into the user's errors."""

from __future__ import annotations

from typing import Any

import requests

from ..errors import Unreachable

TIMEOUT = 30.0


class ServerError(Unreachable):
    """The service answered with a 5xx status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Refused(Unreachable):
    """401/403: the service wants (another) token."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def get_json(session: requests.Session, url: str, *, what: str, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
    try:
        response = session.get(url, params=params, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise Unreachable(f"{what} unreachable at {url}: {type(exc).__name__}") from exc
    if response.status_code in (401, 403):
        raise Refused(f"{what} refused the request ({response.status_code}) at {url}", response.status_code)
    if response.status_code >= 500:
        raise ServerError(f"{what} answered {response.status_code} at {url}", response.status_code)
    if response.status_code != 200:
        raise Unreachable(f"{what} answered {response.status_code} at {url}")
    try:
        return response.json()
    except ValueError as exc:
        raise Unreachable(f"{what} answered something that is not JSON at {url}") from exc
