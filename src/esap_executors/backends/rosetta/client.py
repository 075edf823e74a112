"""An HTTP client for the Rosetta web application (a Django site with HTML forms and a small
JSON API). It logs in with a username and password (or the profile's auth token), keeps the
session and CSRF cookies, sends the CSRF token with every form post, and turns Rosetta's
HTTP-200 error pages (`Error: "…"`) into exceptions carrying Rosetta's own text.

Rosetta has no JSON API for tasks, software, computings or storages: those are read from its
pages. Every request is counted (`requests_made`) so callers can prove a constant cost per poll
cycle. Credentials never appear in URLs, logs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import requests

from ...errors import AuthError, BadInput, EsapError, Unreachable

MAX_TASK_NAME = 36  # Task.name is a CharField(max_length=36)
TIMEOUT = 60.0  # seconds; starting a task runs ssh + sbatch inside the request

_ERROR_TEXT = re.compile(r"Error:\s*(?:&quot;|\")(.*?)(?:&quot;|\")\s*</span>", re.S)
_COMPUTING = re.compile(r'href="/computing/\?uuid=([0-9a-f-]{36})&(?:amp;)?details=True">([^<]+)</a>')
_SOFTWARE_BLOCK = re.compile(r'<form action="/new_task" method=GET>(.*?)</form>', re.S)
_SOFTWARE_NAME = re.compile(r'details=True">([^<]+)</a>')
# a software family's link carries base64("<name>\t<registry>\t<image_name>") (Container.family_id)
_SOFTWARE_FAMILY = re.compile(r'container_family_id=([A-Za-z0-9+/=]+)&(?:amp;)?details=True')
_SOFTWARE_OPTION = re.compile(r'<option value="([0-9a-f-]{36})">([^<]*)</option>')
_GROUP_SELECT = re.compile(r'<select name="group_id"[^>]*>(.*?)</select>', re.S)
_GROUP_OPTION = re.compile(r'<option value="([0-9]+)">([^<]*)</option>')
_CREATED_SOFTWARE = re.compile(r"/edit_software/\?uuid=([0-9a-f-]{36})")
_TASK_BLOCK = re.compile(
    r'<a href="\?uuid=([0-9a-f-]{36})"><b>([^<]*)</b></a>.*?'
    r'<b>Computing:</b>\s*<a href="/computing/\?uuid=[0-9a-f-]{36}">([^<]*)</a>'
    # a running task's status is in a <font> tag, any other is bare text
    r'.*?<b>Status:</b>\s*(?:<font[^>]*>)?([a-z]+)', re.S)


class RosettaError(EsapError):
    """Rosetta refused or failed an operation; the message is Rosetta's own text."""

    exit_code = 3


@dataclass(frozen=True)
class Task:
    uuid: str
    name: str
    computing: str
    status: str  # created, submitted, running, stopped, exited


@dataclass(frozen=True)
class Container:
    """One registered software image (a Rosetta Container) as the software page lists it."""

    name: str
    registry: str
    image_name: str
    image_tag: str
    uuid: str

    @property
    def reference(self) -> str:
        """`registry/image_name:image_tag`, the image a container engine pulls."""
        registry = self.registry.split("://", 1)[-1].rstrip("/")
        image = f"{registry}/{self.image_name}" if registry else self.image_name
        return f"{image}:{self.image_tag}"


@dataclass(frozen=True)
class Entry:
    """One file or folder of a storage listing."""

    name: str
    is_folder: bool
    modified: int  # epoch seconds (stat %Y on the storage's host)
    size: int


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self.lock = threading.Lock()

    def add(self) -> None:
        with self.lock:
            self.value += 1


class RosettaClient:
    def __init__(self, url: str, *, username: str | None = None, password: str | None = None,
                 authtoken: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = url.rstrip("/") + "/"
        self._username = username
        self._password = password
        self._authtoken = authtoken
        self.timeout = timeout
        self.session = requests.Session()
        self._counter = _Counter()
        self._logged_in = False

    @property
    def requests_made(self) -> int:
        """Requests sent by this client and its clones."""
        return self._counter.value

    def clone(self) -> RosettaClient:
        """A client for another thread: its own connection, the same logged-in session
        (cookies copied, no second login) and the same request counter."""
        self.login()
        other = RosettaClient(self.url, username=self._username, password=self._password,
                              authtoken=self._authtoken, timeout=self.timeout)
        other.session.cookies.update(self.session.cookies)
        other._counter = self._counter
        other._logged_in = True
        return other

    # --- plumbing -------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        self._counter.add()
        kwargs.setdefault("timeout", self.timeout)
        kwargs.setdefault("allow_redirects", False)
        try:
            return self.session.request(method, urljoin(self.url, path.lstrip("/")), **kwargs)
        except requests.RequestException as exc:
            raise Unreachable(f"Rosetta at {self.url} is unreachable: {type(exc).__name__}") from None

    def _page(self, method: str, path: str, *, what: str, **kwargs: Any) -> str:
        """A form view: logs in first, follows no redirect, and raises Rosetta's error text."""
        self.login()
        if method == "POST":
            headers = dict(kwargs.pop("headers", {}) or {})
            headers["X-CSRFToken"] = self.session.cookies.get("csrftoken", "")
            headers["Referer"] = urljoin(self.url, path.lstrip("/"))
            kwargs["headers"] = headers
        response = self._request(method, path, **kwargs)
        if response.status_code in (301, 302) and "/login" in response.headers.get("Location", ""):
            raise AuthError(f"Rosetta at {self.url}: the session was refused ({what})")
        if response.status_code == 403:
            raise RosettaError(f"Rosetta refused {what} (HTTP 403: CSRF or permissions)")
        if response.status_code >= 400:
            raise RosettaError(f"Rosetta failed {what} (HTTP {response.status_code})")
        text = response.text
        error = error_text(text)
        if error is not None:
            raise RosettaError(f"Rosetta: {what}: {error}")
        return text

    # --- session --------------------------------------------------------------------
    def login(self) -> None:
        if self._logged_in:
            return
        if self._authtoken:
            data = {"authtoken": self._authtoken}
        elif self._username and self._password:
            data = {"username": self._username, "password": self._password}
        else:
            raise BadInput("Rosetta credentials need a username with a password, or an auth token",
                           field="credentials.rosetta_login")
        response = self._request("POST", "/api/v1/base/login/", data=data)
        if response.status_code in (400, 401, 403):
            detail = _json_detail(response)
            raise AuthError(f"Rosetta at {self.url} refused the login: {detail}")
        if response.status_code != 200 or "sessionid" not in self.session.cookies:
            raise Unreachable(f"Rosetta at {self.url}: login answered HTTP {response.status_code}")
        self._logged_in = True

    def close(self) -> None:
        self.session.close()

    # --- catalogue (scraped pages) ----------------------------------------------------
    def computings(self) -> dict[str, str]:
        """Computing name -> uuid, as the user sees them."""
        text = self._page("GET", "/computing/", what="list computings")
        return {html.unescape(name).strip(): uuid for uuid, name in _COMPUTING.findall(text)}

    def computing_info(self) -> dict[str, dict[str, str]]:
        """Computing name -> uuid, type (standalone|cluster), arch and container engines."""
        text = self._page("GET", "/computing/", what="list computings")
        found: dict[str, dict[str, str]] = {}
        matches = list(_COMPUTING.finditer(text))
        for index, match in enumerate(matches):
            end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
            block = text[match.end():end]
            kind = re.search(r"<b>Type:</b>\s*([a-z]+)\s*<font[^>]*>\(([^)]*)\)", block)
            engines = re.search(r"<b>Engines:</b>(.*?)(?:<img|-->)", block, re.S)
            found[html.unescape(match.group(2)).strip()] = {
                "uuid": match.group(1),
                "type": kind.group(1) if kind else "",
                "arch": kind.group(2) if kind else "",
                "engines": ",".join(engines.group(1).split()).lower() if engines else "",
            }
        return found

    def software(self) -> dict[tuple[str, str], str]:
        """(software name, image tag) -> container uuid."""
        text = self._page("GET", "/software/", what="list software")
        found: dict[tuple[str, str], str] = {}
        for block in _SOFTWARE_BLOCK.findall(text):
            name = _SOFTWARE_NAME.search(block)
            if not name:
                continue
            for uuid, tag in _SOFTWARE_OPTION.findall(block):
                found[(html.unescape(name.group(1)).strip(), html.unescape(tag).strip())] = uuid
        return found

    def containers(self) -> list[Container]:
        """Every software image the user may run, with its registry (one request)."""
        text = self._page("GET", "/software/", what="list software")
        found: list[Container] = []
        for block in _SOFTWARE_BLOCK.findall(text):
            family = _SOFTWARE_FAMILY.search(block)
            if not family:
                continue
            try:
                name, registry, image_name = base64.b64decode(family.group(1)).decode("utf8").split("\t")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise RosettaError("Rosetta's software page lists a software family it cannot describe") from None
            for uuid, tag in _SOFTWARE_OPTION.findall(block):
                found.append(Container(name=name, registry=registry, image_name=image_name,
                                       image_tag=html.unescape(tag).strip(), uuid=uuid))
        return found

    def software_groups(self) -> dict[str, str]:
        """Group name -> id, the groups the user may register software for (one request)."""
        text = self._page("GET", "/add_software/", what="read the software form")
        select = _GROUP_SELECT.search(text)
        options = _GROUP_OPTION.findall(select.group(1)) if select else []
        return {html.unescape(name).strip(): gid for gid, name in options}

    def add_software(self, *, name: str, registry: str, image_name: str, image_tag: str, group_id: str,
                     description: str, interface_port: int = 8590) -> str:
        """Register an image as a software of `group_id` (POST /add_software/, from a registry);
        returns its uuid (Rosetta redirects to the new software's edit page). The software
        takes a custom interface port and interface auth: its tasks get BASE_PORT and AUTH_PASS."""
        data = {
            "new_container_from": "registry", "container_name": name, "container_description": description,
            "container_registry": registry, "container_image_name": image_name,
            "container_image_tag": image_tag, "container_image_arch": "amd64", "container_image_os": "linux",
            "container_interface_port": str(interface_port), "container_interface_protocol": "http",
            "container_interface_transport": "tcp/ip", "container_supports_custom_interface_port": "True",
            "container_supports_interface_auth": "True", "group_id": group_id,
        }
        self.login()
        headers = {"X-CSRFToken": self.session.cookies.get("csrftoken", ""),
                   "Referer": urljoin(self.url, "add_software/")}
        response = self._request("POST", "/add_software/", data=data, headers=headers)
        created = _CREATED_SOFTWARE.search(response.headers.get("Location", ""))
        if response.status_code in (301, 302) and created:
            return created.group(1)
        if response.status_code in (301, 302) and "/login" in response.headers.get("Location", ""):
            raise AuthError(f"Rosetta at {self.url}: the session was refused (register software {name})")
        said = error_text(response.text) if response.status_code == 200 else f"HTTP {response.status_code}"
        raise RosettaError(f"Rosetta: register software {name} {image_name}:{image_tag}: "
                           f"{said or 'no new software in its answer'}")

    # --- tasks -------------------------------------------------------------------------
    def start_task(self, *, name: str, container: str, computing: str, password: str,
                   cpus: int | None = None, memory: str | None = None, partition: str | None = None,
                   access_method: str = "direct_tunnel", kept: bool = True) -> None:
        """POST /new_task/ step `last`. Rosetta answers with a page, not the task's uuid.

        A kept password is Rosetta's task auth token, stored in its database (<= 36 characters)
        and shown on the task's page; one not kept is a power user's custom task password, which
        Rosetta hands to the container and never stores."""
        if len(name) > MAX_TASK_NAME:
            raise BadInput(f"Rosetta task name {name!r} is longer than {MAX_TASK_NAME} characters",
                           field="name")
        data: dict[str, str] = {
            "step": "last", "task_name": name, "task_container_uuid": container,
            "task_computing_uuid": computing, "access_method": access_method,
            "task_auth_token" if kept else "task_auth_password": password,
        }
        if cpus:
            data["computing_cpus"] = str(cpus)
        if memory:
            data["computing_memory"] = memory
        if partition:
            data["computing_partition"] = partition
        text = self._page("POST", "/new_task/", what=f"start task {name}", data=data)
        if "created" not in text:
            raise RosettaError(f"Rosetta: start task {name}: no confirmation in its answer")

    def tasks(self, name_filter: str = "") -> list[Task]:
        """The user's tasks whose name contains `name_filter` (one request)."""
        text = self._page("POST", "/tasks/", what="list tasks",
                          data={"filter_text": name_filter, "filter_status": "all"})
        return [Task(uuid=u, name=html.unescape(n), computing=html.unescape(c), status=s)
                for u, n, c, s in _TASK_BLOCK.findall(text)]

    def stop_task(self, uuid: str) -> None:
        self._page("GET", "/tasks/", what=f"stop task {uuid}", params={"uuid": uuid, "action": "stop"})

    def delete_task(self, uuid: str) -> None:
        self._page("GET", "/tasks/", what=f"delete task {uuid}", params={"uuid": uuid, "action": "delete"})

    def open_link(self, short_uuid: str) -> str:
        """GET /t/<short_uuid>/, the task's sharable link (a public view): Rosetta sets up the
        task's tunnel and redirects to it; returns where it redirects."""
        response = self._request("GET", f"/t/{short_uuid}/")
        if response.status_code in (301, 302) and response.headers.get("Location"):
            return response.headers["Location"]
        if response.status_code == 200:
            said = error_text(response.text)
            if said is not None:
                raise RosettaError(tunnel_failure(short_uuid, said))
            raise RosettaError(f"Rosetta: open task {short_uuid}: no redirect to the task in its answer")
        raise RosettaError(f"Rosetta: open task {short_uuid}: HTTP {response.status_code}")

    def task_log(self, uuid: str) -> str:
        text = self._page("GET", "/task_log/", what=f"log of task {uuid}", params={"uuid": uuid})
        match = re.search(r"<pre[^>]*>(.*?)</pre>", text, re.S)
        return html.unescape(match.group(1)) if match else ""

    # --- file manager (JSON API; session cookie, CSRF-exempt) ---------------------------
    def _files(self, method: str, what: str, **kwargs: Any) -> requests.Response:
        self.login()
        response = self._request(method, "/api/v1/filemanager/", **kwargs)
        if response.status_code != 200:
            raise RosettaError(f"Rosetta file manager: {what}: {_json_detail(response)}")
        return response

    def list_folder(self, path: str) -> list[Entry]:
        response = self._files("GET", f"list {path}", params={"mode": "readfolder", "path": path})
        entries = []
        for item in _json(response).get("data", []):
            attributes = item.get("attributes", {})
            entries.append(Entry(
                name=str(attributes.get("name", "")),
                is_folder=item.get("type") == "folder",
                modified=int(attributes.get("modified") or 0),
                size=int(attributes.get("size") or 0),
            ))
        return entries

    def add_folder(self, parent: str, name: str) -> None:
        self._files("GET", f"create {parent}{name}", params={"mode": "addfolder", "path": parent, "name": name})

    def upload(self, folder: str, name: str, content: bytes) -> None:
        self._files("POST", f"upload {folder}{name}", data={"mode": "upload", "path": folder},
                    files={"files": (name, content)})

    def download(self, path: str) -> bytes:
        return self._files("GET", f"download {path}", params={"mode": "download", "path": path}).content

    def delete(self, path: str) -> None:
        self._files("GET", f"delete {path}", params={"mode": "delete", "path": path})


def error_text(page: str) -> str | None:
    """Rosetta's error page says `Error: "…"` with HTTP 200; None for any other page."""
    if "<h1>Error</h1>" not in page:
        return None
    match = _ERROR_TEXT.search(page)
    return html.unescape(match.group(1)).strip() if match else "an error page without text"


# Rosetta's setup_tunnel_and_proxy takes the first of its tunnel ports (7000-7020 direct,
# 9000-9020 proxied) that no running task holds. With all of them held it means to say
# "Cannot find a free port for the tunnel to the task", but leaves `tcp_tunnel_port` unbound
# first: the page then says "something went wrong (… local variable 'tcp_tunnel_port' …)".
_NO_FREE_TUNNEL_PORT = re.compile(r"\btcp_tunnel_port\b|free port for the tunnel", re.I)


def tunnel_failure(short_uuid: str, said: str) -> str:
    """One line for Rosetta's error page on opening a task's link: the cause, then Rosetta's text."""
    prefix = f"Rosetta answered with an error while setting up the tunnel to task {short_uuid}"
    if _NO_FREE_TUNNEL_PORT.search(said):
        return (f"{prefix}: no free tunnel port (running tasks hold all of Rosetta's tunnel ports; "
                f"Rosetta said: \"{said}\")")
    return f"{prefix}: \"{said}\""


def _json(response: requests.Response) -> Mapping[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise RosettaError("Rosetta answered something that is not JSON") from None
    return data if isinstance(data, dict) else {}


def _json_detail(response: requests.Response) -> str:
    try:
        data = response.json()
    except (ValueError, json.JSONDecodeError):
        return f"HTTP {response.status_code}"
    if isinstance(data, dict):
        detail = data.get("detail") or data.get("error") or data.get("errors")
        if detail:
            return str(detail)
    return f"HTTP {response.status_code}"
