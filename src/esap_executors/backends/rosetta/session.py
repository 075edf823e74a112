"""The Rosetta connection a backend holds: its settings, credentials, storage folders, task
listing and the pool its requests run in."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ...errors import AuthError, BadInput
from ...sites import Site
from ...states import JobStatus
from ..base import Backend, Submission, Usage
from .client import Container, RosettaClient, RosettaError, Task
from .images import ImageBuilder
from .steps import DEFAULT_HEARTBEAT, DEFAULT_START_TIMEOUT, DEFAULT_WORKERS

_T = TypeVar("_T")
_R = TypeVar("_R")


class RosettaSession(Backend):
    """The first layer of RosettaBackend: each module adds one concern on top of the one it
    imports (session, discovery, interactive, cleanup, completion, submission), so each layer
    calls only what the layers below define."""

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        options = site.options
        url = options.get("url")
        if not url:
            raise BadInput("a Rosetta site needs options.url", source=site.source, line=site.line,
                           field=f"{site.name}.options.url")
        self.url = str(url)
        self.computing_name = str(options.get("computing") or "")
        self.storage_name = str(options.get("storage") or "data")
        self.software_name = str(options.get("software") or "esap-runner")
        self.software_tag = options.get("software_tag")
        self.heartbeat = int(options.get("heartbeat") or DEFAULT_HEARTBEAT)
        self.timeout = float(options.get("timeout") or 60)
        self._client: RosettaClient | None = None
        self._computing_uuid: str | None = None
        self._software_uuid: str | None = None
        self._folders: set[str] = set()
        self._streams: dict[str, tuple[str, str]] = {}  # token -> local stdout, stderr
        self._final: dict[str, JobStatus] = {}  # token -> final status (cleaned up)
        self._usage: dict[str, Usage] = {}  # token -> what the runner measured (from its result)
        self._outputs: dict[str, Submission] = {}  # token -> its submission (declared outputs)
        self._submitted: dict[str, float] = {}  # token -> when this process started its task
        self.workers = int(options.get("workers") or DEFAULT_WORKERS)
        self.start_timeout = float(options.get("start_timeout") or DEFAULT_START_TIMEOUT)
        self.registry = str(options.get("registry") or "")
        self.step_software_name = str(options.get("step_software") or "esap-step")
        self.images = ImageBuilder(builder=str(options.get("builder") or "podman"),
                                   tls_verify=bool(options.get("registry_tls_verify", True)),
                                   image_name=self.step_software_name)
        self._registered: dict[tuple[str, str], str] = {}  # (software, tag) -> container uuid
        self._containers: list[Container] = []  # every software the account may run
        self._step_containers: dict[str, str] = {}  # the step's image -> its Rosetta container uuid
        self._lock = threading.Lock()
        self.action_count = 0  # task starts, stops, deletes, uploads, downloads

    # --- connection -----------------------------------------------------------------
    @property
    def client(self) -> RosettaClient:
        if self._client is None:
            self._client = RosettaClient(self.url, timeout=self.timeout, **self._credentials())
        return self._client

    def _credentials(self) -> dict[str, str]:
        creds = self.site.credentials
        field = f"{self.site.name}.credentials.rosetta_login"
        if creds is not None and creds.rosetta_authtoken is not None:
            token = creds.rosetta_authtoken.read()
            if not token:
                raise AuthError(f"site {self.site.name}: the Rosetta auth token ({field}.authtoken) "
                                "is empty or missing")
            return {"authtoken": token}
        if creds is not None and creds.rosetta_username and creds.rosetta_password is not None:
            password = creds.rosetta_password.read()
            if not password:
                raise AuthError(f"site {self.site.name}: the Rosetta password ({field}.password) is empty or missing")
            return {"username": creds.rosetta_username, "password": password}
        raise BadInput("a Rosetta site needs credentials.rosetta_login (username and password, or authtoken)",
                       source=self.site.source, line=self.site.line, field=field)

    @property
    def storage_root(self) -> str:
        return f"/{self.computing_name}:{self.storage_name}/"

    def _run_folder(self, run_id: str) -> str:
        return f"{self.storage_root}esap/{run_id}/"

    def _run_tasks(self, run_id: str) -> list[Task]:
        self.query_count += 1
        prefix = f"esap-{run_id}-"
        return [t for t in self.client.tasks(prefix) if t.name.startswith(prefix)]

    def _act(self) -> None:
        with self._lock:
            self.action_count += 1

    def _each(self, work: Callable[[RosettaClient, _T], _R], items: Sequence[_T]) -> list[_R]:
        """`work` for every item, up to `workers` at once, each thread with its own connection."""
        if len(items) <= 1 or self.workers <= 1:
            return [work(self.client, item) for item in items]
        local = threading.local()
        clones: list[RosettaClient] = []

        def run(item: _T) -> _R:
            client = getattr(local, "client", None)
            if client is None:
                client = local.client = self.client.clone()
                with self._lock:
                    clones.append(client)
            return work(client, item)

        try:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
                return list(pool.map(run, items))
        finally:
            for client in clones:
                client.close()

    def _ensure_run_folders(self, run_id: str) -> None:
        for parent, name in ((self.storage_root, "esap"), (f"{self.storage_root}esap/", run_id),
                             (self._run_folder(run_id), "steps"), (self._run_folder(run_id), "status")):
            path = f"{parent}{name}/"
            if path in self._folders:
                continue
            try:
                self.client.add_folder(parent, name)
            except RosettaError as exc:
                if "File exists" not in str(exc):
                    raise
            self._folders.add(path)

    def _add_folder(self, client: RosettaClient, parent: str, name: str) -> None:
        try:
            self._act()
            client.add_folder(parent, name)
        except RosettaError as exc:
            if "File exists" not in str(exc):
                raise

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
