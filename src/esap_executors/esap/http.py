"""HTTP to ESAP, Zenodo and the files a job names: the one place that turns transport failures and
error statuses into the user's errors, and the one owner of the gateway's setting."""

from __future__ import annotations

from typing import Any

import requests

from ..errors import Unreachable

TIMEOUT = 30.0
GATEWAY_ENV = "ESAP_GATEWAY_URL"  # the ESAP API gateway, for every command's --esap URL (uws: also --gateway)


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


def send(session: requests.Session | None, method: str, url: str, *, what: str, timeout: float = TIMEOUT,
         **kwargs: Any) -> requests.Response:
    """The response, whatever its status; Unreachable when none came."""
    try:
        return (session or requests).request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise Unreachable(f"{what} unreachable at {url}: {type(exc).__name__}") from None


def check_ok(response: requests.Response, *, what: str, url: str) -> None:
    """Refused (401/403), ServerError (5xx) or Unreachable for anything but 200."""
    if response.status_code in (401, 403):
        raise Refused(f"{what} refused the request ({response.status_code}) at {url}", response.status_code)
    if response.status_code >= 500:
        raise ServerError(f"{what} answered {response.status_code} at {url}", response.status_code)
    if response.status_code != 200:
        raise Unreachable(f"{what} answered {response.status_code} at {url}")


def json_of(response: requests.Response, *, what: str, url: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise Unreachable(f"{what} answered something that is not JSON at {url}") from None


def get_json(session: requests.Session, url: str, *, what: str, params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
    response = send(session, "get", url, what=what, params=params, headers=headers)
    check_ok(response, what=what, url=url)
    return json_of(response, what=what, url=url)


def get_bytes(url: str, *, what: str) -> bytes:
    response = send(None, "get", url, what=what)
    check_ok(response, what=what, url=url)
    return response.content
