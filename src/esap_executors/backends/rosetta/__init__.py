"""Rosetta: each step runs as a Rosetta task of one runner image, through the real Rosetta web
application (HTML forms and its file manager API; reference: rosetta.md §3, §4, §9, §11.1).

Rosetta runs images as long-lived services: a task has no command, no arguments and no exit
code, and Rosetta never notices that it ended. So the backend registers nothing per step; it
uses one runner software (`esap-runner`, built from `runner/`) and

- uploads the step's shell script to the site's storage (`esap/<run>/steps/<step>.sh`);
- starts a task named `esap-<run>-<step>` (<= 36 characters, run-scoped, so a rerun finds it)
  whose task password is the step token `<run>-<step>`;
- learns completion from the storage: the runner touches `esap/<run>/status/<step>.hb` every
  heartbeat period and, last, writes `esap/<run>/status/<step>.exit-<code>`; one file-manager
  listing of that folder per poll cycle covers every step of the run. A heartbeat older than
  two periods (plus slack) is a runner that died silently (killed, out of memory, SLURM time
  limit): the step fails with that reason;
- then downloads the step's stdout/stderr and stops and deletes the task.

Why the task password carries the step's identity: it is the only per-task value Rosetta hands
to the container. With `access_method=direct_tunnel` (no proxy auth) Rosetta exports the task
password as AUTH_PASS into the container on every computing type (`SINGULARITYENV_AUTH_PASS`
on SSH standalone and SLURM computings). A software's `env_vars` are per software, not per
task (one software per step would need an HTML form per step), and an atomic claim of a
pending step from a queue folder would let any runner take any step, losing the 1:1 link
between a task (and its SLURM job, its resources) and its step that cancel and reattach need.
`direct_tunnel` is a power-user option in Rosetta: the account must be a power user.

A step that names its own image runs in that image with the runner added, registered as
Rosetta software on first use (images.py says why and how).
"""

from __future__ import annotations

import logging
import secrets
import shlex
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, TypeVar

from ...errors import AuthError, BadInput
from ...formats.urls import scheme_of
from ...sites import Site
from ...states import JobState, JobStatus
from ..base import Backend, Capabilities, FoundJob, InteractiveAccess, SoftwareImage, Submission, Usage
from .client import MAX_TASK_NAME, Container, RosettaClient, RosettaError, Task
from .images import ImageBuilder

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT = 10
HEARTBEAT_SLACK = 5.0  # seconds beyond two periods: clock and listing granularity (1 s)
TAIL_BYTES = 2000
DEFAULT_WORKERS = 4
DEFAULT_START_TIMEOUT = 300.0  # seconds from submission to the runner's first heartbeat
_T = TypeVar("_T")
_R = TypeVar("_R")


def token_of(job_id: str) -> str:
    """The step token (task password, file names): the esap job id with '-' for '.'."""
    return job_id.replace(".", "-", 1)


def job_id_of(token: str) -> str:
    return token.replace("-", ".", 1)


def task_name(token: str) -> str:
    return f"esap-{token}"


def usage_of(text: str) -> Usage:
    """The runner's usage line: "<wall s> <user>m<s>s <system>m<s>s" (the shell's `times`)."""
    fields = text.split()

    def seconds(value: str) -> float | None:
        minutes, _, rest = value.partition("m")
        try:
            return float(minutes) * 60 + float(rest.rstrip("s"))
        except ValueError:
            return None

    wall = float(fields[0]) if fields and fields[0].isdigit() else None
    times = [seconds(f) for f in fields[1:3]]
    cpu = None if len(times) < 2 or None in times else sum(t for t in times if t is not None)
    return Usage(wall_s=wall, cpu_s=cpu, max_memory_mib=None)


def parse_result(data: bytes) -> dict[str, bytes] | None:
    """The runner's result file (runner/esap-runner.sh): exit, usage, stdout and stderr; None
    when it is not one."""
    fields: dict[str, bytes] = {}
    rest = data
    header, _, rest = rest.partition(b"\n")
    if header != b"esap-result 1":
        return None
    for name in ("exit", "usage"):
        line, _, rest = rest.partition(b"\n")
        key, _, value = line.partition(b" ")
        if key.decode(errors="replace") != name:
            return None
        fields[name] = value
    for name in ("stdout", "stderr"):
        line, _, rest = rest.partition(b"\n")
        key, _, size = line.partition(b" ")
        if key.decode(errors="replace") != name or not size.strip().isdigit():
            return None
        length = int(size.strip())
        fields[name], rest = rest[:length], rest[length:]
    return fields


class RosettaBackend(Backend):
    name = "rosetta"
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_transfer=True,  # the step's files move through Rosetta's file manager
        shared_filesystem=False,
        billing_fields=frozenset({"partition"}),  # Rosetta's task form takes cpus, memory, partition
        usage_accounting=True,  # the runner measures wall and CPU time
        software_images=True,  # Rosetta's software page names each container's registry and image
        step_images=True,  # a step's own image runs with the runner added (images.py)
        interactive=True,  # a software with an interface port as a task the user opens
    )
    option_types: ClassVar[Mapping[str, type | tuple[type, ...]]] = {
        "url": str,  # the Rosetta web application, e.g. https://rosetta.example.org
        "computing": str,  # computing resource name, as Rosetta lists it
        "storage": str,  # storage name on that computing (default "data")
        "software": str,  # the runner software name (default "esap-runner")
        "software_tag": str,  # its image tag (default: the only one registered)
        "heartbeat": int,  # seconds between runner heartbeats (default 10)
        "timeout": (int, float),  # seconds per Rosetta request
        "workers": int,  # steps started or collected at once (default 4)
        "start_timeout": (int, float),  # seconds a started task's runner has to report (default 300)
        # steps with their own image (images.py): the registry Rosetta pulls from, where esap
        # pushes each step image with the runner added; the software its tags register under;
        # the Rosetta group that software belongs to (default: the account's only group)
        "registry": str,
        "registry_tls_verify": bool,
        "builder": str,
        "step_software": str,
        "group": str,
    }

    @classmethod
    def capabilities_on(cls, site: Site) -> Capabilities:
        """A step never sees the submit side's files, whatever the site says: it runs in a
        container on the computing, with only the storage bound."""
        return replace(cls.capabilities.for_site(site), shared_filesystem=False)

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

    # --- validation -------------------------------------------------------------------
    def validate(self, jobs: Sequence[Submission]) -> None:
        site = self.site
        if not self.computing_name:
            raise BadInput("a Rosetta site needs options.computing", source=site.source, line=site.line,
                           field=f"{site.name}.options.computing")
        self._resolve()
        for job in jobs:
            spec = job.spec
            if len(task_name(token_of(job.job_id))) > MAX_TASK_NAME:
                raise BadInput(f"job id {job.job_id} is too long for a Rosetta task name", field="job_id")
            if spec.interactive and spec.container is not None:
                self._interactive_software(spec.container.image)
            elif spec.container is not None:
                self._step_software(spec.container.image)
            for entry in spec.stage_in:
                source = Path(entry.source)
                if scheme_of(entry.source) is not None or not (source.is_file() or source.is_dir()):
                    raise BadInput(f"{job.name}: input {entry.source!r}: Rosetta sites take local files and "
                                   "folders (uploaded through Rosetta's file manager)", field="stage_in")
            for out in spec.stage_out:
                if scheme_of(out.dest) is not None:
                    raise BadInput(f"{job.name}: output destination {out.dest!r}: Rosetta sites bring "
                                   "outputs back to local paths", field="stage_out")
            if spec.stdin:
                raise BadInput(f"{job.name}: stdin is not supported on the Rosetta site {site.name}",
                               field="stdin")
            if spec.gpus:
                raise BadInput(f"{job.name}: Rosetta tasks cannot ask for GPUs", field="gpus")

    def _resolve(self) -> None:
        """Computing, runner software and storage by name (three requests, once per backend)."""
        if self._computing_uuid and self._software_uuid:
            return
        site, client = self.site, self.client
        computings = client.computings()
        uuid = computings.get(self.computing_name)
        if uuid is None:
            known = ", ".join(sorted(computings)) or "none"
            raise BadInput(f"Rosetta at {self.url} has no computing {self.computing_name!r} for this account "
                           f"(known: {known})", source=site.source, line=site.line,
                           field=f"{site.name}.options.computing")
        self._containers = client.containers()
        software = {(c.name, c.image_tag): c.uuid for c in self._containers}
        self._registered = dict(software)
        tags = {tag: u for (name, tag), u in software.items() if name == self.software_name}
        if not tags:
            known = ", ".join(sorted({n for n, _ in software})) or "none"
            raise BadInput(f"Rosetta at {self.url} has no software {self.software_name!r} (known: {known})",
                           source=site.source, line=site.line, field=f"{site.name}.options.software")
        if self.software_tag is not None:
            chosen = tags.get(str(self.software_tag))
            if chosen is None:
                raise BadInput(f"Rosetta software {self.software_name!r} has no tag {self.software_tag!r} "
                               f"(known: {', '.join(sorted(tags))})", source=site.source, line=site.line,
                               field=f"{site.name}.options.software_tag")
        elif len(tags) == 1:
            chosen = next(iter(tags.values()))
        else:
            raise BadInput(f"Rosetta software {self.software_name!r} has tags {', '.join(sorted(tags))}: "
                           "choose one with options.software_tag", source=site.source, line=site.line,
                           field=f"{site.name}.options.software_tag")
        storages = {e.name for e in client.list_folder("/") if e.is_folder}
        storage_id = f"{self.computing_name}:{self.storage_name}"
        if storage_id not in storages:
            raise BadInput(f"Rosetta computing {self.computing_name!r} has no storage {self.storage_name!r} "
                           f"(known: {', '.join(sorted(storages)) or 'none'})", source=site.source,
                           line=site.line, field=f"{site.name}.options.storage")
        self._computing_uuid, self._software_uuid = uuid, chosen

    def _step_software(self, image: str) -> str:
        """The Rosetta software (container uuid) a step with its own image runs as: the image
        with the runner added, built, pushed and registered the first time (images.py)."""
        known = self._step_containers.get(image)
        if known is not None:
            return known
        site = self.site
        if not self.registry:
            raise BadInput(f"a step with its own image ({image}) needs the site's options.registry: the registry "
                           "Rosetta pulls from, where esap pushes the image with its runner", source=site.source,
                           line=site.line, field=f"{site.name}.options.registry")
        self._resolve()
        source = site.container.images.get(image, image).removeprefix("docker://")
        step = self.images.step_image(source)
        uuid = self._registered.get((self.step_software_name, step.tag))
        if uuid is None:
            log.info("site %s: adding the esap runner to %s (%s:%s)", site.name, source, step.image_name, step.tag)
            self.images.build_and_push(step, self.registry)
            self._act()
            uuid = self.client.add_software(
                name=self.step_software_name, registry=self.registry, image_name=step.image_name,
                image_tag=step.tag, group_id=self._group_id(),
                description=f"esap step image: {source} with the esap runner")
            self._registered[(self.step_software_name, step.tag)] = uuid
        self._step_containers[image] = uuid
        return uuid

    def _group_id(self) -> str:
        site = self.site
        groups = self.client.software_groups()
        wanted = self.site.options.get("group")
        if wanted is not None:
            if str(wanted) not in groups:
                raise BadInput(f"the Rosetta account is in no group {wanted!r} (its groups: "
                               f"{', '.join(sorted(groups)) or 'none'})", source=site.source, line=site.line,
                               field=f"{site.name}.options.group")
            return groups[str(wanted)]
        if len(groups) != 1:
            raise BadInput(f"Rosetta registers a step's image for one of the account's groups: choose it with "
                           f"options.group (its groups: {', '.join(sorted(groups)) or 'none'})",
                           source=site.source, line=site.line, field=f"{site.name}.options.group")
        return next(iter(groups.values()))

    # --- submission -------------------------------------------------------------------
    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        """Per step: upload its script, start its task; `workers` steps at a time (starting a
        task holds Rosetta's request while it runs ssh and sbatch)."""
        if not jobs:
            return []
        self._resolve()
        computing, software = self._computing_uuid, self._software_uuid
        assert computing and software
        for job in jobs:
            if job.spec.interactive:
                self._interactive_software(job.spec.container.image if job.spec.container else "")
            elif job.spec.container is not None:
                self._step_software(job.spec.container.image)
        for run_id in sorted({job.run_id for job in jobs}):
            self._ensure_run_folders(run_id)
        for job in jobs:
            self._submitted[token_of(job.job_id)] = time.time()
            self._streams[token_of(job.job_id)] = (job.stdout, job.stderr)
            self._outputs[token_of(job.job_id)] = job

        bundled = self._upload_scripts([job for job in jobs if not job.spec.interactive])

        def send(client: RosettaClient, job: Submission) -> str:
            token = token_of(job.job_id)
            if job.spec.interactive:
                return self._start_interactive(client, job, token)
            if job.spec.stage_in:
                self._upload_inputs(client, job, token)
            if token not in bundled:
                self._act()
                client.upload(f"{self._run_folder(job.run_id)}steps/", f"{token.split('-', 1)[1]}.sh",
                              self._script(job).encode())
            spec = job.spec
            self._act()
            container = self._step_containers[spec.container.image] if spec.container else software
            client.start_task(
                name=task_name(token), container=container, computing=computing, password=token,
                cpus=spec.cores, memory=f"{spec.memory_mib}M" if spec.memory_mib else None,
                partition=spec.partition,
            )
            return token

        return self._each(send, jobs)

    def _upload_scripts(self, jobs: Sequence[Submission]) -> set[str]:
        """The scripts of a run's steps submitted together as one bundle (one upload; each
        runner takes its section, see runner/esap-runner.sh); the tokens bundled."""
        bundled: set[str] = set()
        by_run: dict[str, list[Submission]] = {}
        for job in jobs:
            by_run.setdefault(job.run_id, []).append(job)
        for run_id, members in by_run.items():
            if len(members) < 2:
                continue
            nonce = secrets.token_hex(8)
            sections = []
            for job in members:
                step = token_of(job.job_id).split("-", 1)[1]
                sections.append(f"#esap-step {step} {nonce}\n{self._script(job)}#esap-end {nonce}\n")
            first = token_of(members[0].job_id).split("-", 1)[1]
            self._act()
            self.client.upload(f"{self._run_folder(run_id)}steps/", f"{first}+{len(members)}.steps",
                               "".join(sections).encode())
            bundled.update(token_of(job.job_id) for job in members)
        return bundled

    def _interactive_software(self, image: str) -> str:
        """The software an interactive job opens: a software's name, `name:tag`, or the
        `registry/image:tag` it runs (as `esap sites --discover` lists them)."""
        self._resolve()
        by_name = [c for c in self._containers if c.name == image]
        found = (by_name if len({c.image_tag for c in by_name}) == 1 else []) or \
            [c for c in self._containers if f"{c.name}:{c.image_tag}" == image or c.reference == image]
        if not found:
            known = ", ".join(sorted({c.name for c in self._containers})) or "none"
            hint = " (a software has several tags: name one as NAME:TAG)" if by_name else ""
            raise BadInput(f"Rosetta at {self.url} has no software {image!r} to open{hint} (known: {known})",
                           field="image")
        return found[0].uuid

    def _start_interactive(self, client: RosettaClient, job: Submission, token: str) -> str:
        """The software's task, marked interactive on the storage (every process's poll then
        asks Rosetta for its state, as there is no runner to report it). Its password is
        Rosetta's to show the user on the task's page: esap neither keeps nor prints it."""
        spec = job.spec
        step = token.split("-", 1)[1]
        self._act()
        client.upload(f"{self._run_folder(job.run_id)}status/", f"{step}.interactive", b"interactive\n")
        self._act()
        client.start_task(
            name=task_name(token), container=self._interactive_software(spec.container.image if spec.container
                                                                         else ""),
            computing=self._computing_uuid or "", password=secrets.token_urlsafe(18),
            cpus=spec.cores, memory=f"{spec.memory_mib}M" if spec.memory_mib else None, partition=spec.partition,
        )
        return token

    def open_interactive(self, native_id: str, *, run_id: str, timeout: float) -> InteractiveAccess:
        """Wait for the task to run (one task listing every 2 s), then open its sharable link
        `/t/<short uuid>`: Rosetta sets up the tunnel and answers where the task is."""
        deadline = time.monotonic() + timeout
        name = task_name(native_id)
        while True:
            task = next((t for t in self._run_tasks(run_id) if t.name == name), None)
            if task is None:
                raise RosettaError(f"Rosetta: the task {name} is gone (stopped and deleted in Rosetta?)")
            if task.status == "running":
                break
            if task.status in ("stopped", "exited"):
                raise RosettaError(f"Rosetta: the task {name} is {task.status}")
            if time.monotonic() > deadline:
                raise RosettaError(f"Rosetta: the task {name} is still {task.status} after {int(timeout)} s")
            time.sleep(2.0)
        short = task.uuid[:8]
        self._act()
        address = self.client.open_link(short)
        return InteractiveAccess(link=f"{self.url.rstrip('/')}/t/{short}/", address=address)

    def _upload_inputs(self, client: RosettaClient, job: Submission, token: str) -> None:
        """The step's input files and folders into its working folder on the storage."""
        work = f"{self._run_folder(job.run_id)}{token.split('-', 1)[1]}/work"
        files: list[tuple[PurePosixPath, Path]] = []
        folders: set[PurePosixPath] = {PurePosixPath(".")}
        for entry in job.spec.stage_in:
            dest, source = PurePosixPath(entry.dest), Path(entry.source)
            if source.is_dir():
                folders.add(dest)
                for path in sorted(source.rglob("*")):
                    relative = dest / path.relative_to(source).as_posix()
                    if path.is_dir():
                        folders.add(relative)
                    elif path.is_file():
                        files.append((relative, path))
            else:
                files.append((dest, source))
        for relative, _ in files:
            folders.update(relative.parents)
        run_folder, step = self._run_folder(job.run_id), token.split("-", 1)[1]
        self._add_folder(client, run_folder, step)
        self._add_folder(client, f"{run_folder}{step}/", "work")
        for folder in sorted(folders - {PurePosixPath(".")}, key=lambda f: len(f.parts)):
            parent = work if str(folder.parent) == "." else f"{work}/{folder.parent}"
            self._add_folder(client, parent + "/", folder.name)
        for relative, source in files:
            target = work if str(relative.parent) == "." else f"{work}/{relative.parent}"
            self._act()
            client.upload(target + "/", relative.name, source.read_bytes())

    def _add_folder(self, client: RosettaClient, parent: str, name: str) -> None:
        try:
            self._act()
            client.add_folder(parent, name)
        except RosettaError as exc:
            if "File exists" not in str(exc):
                raise

    def _download_outputs(self, client: RosettaClient, token: str, run_folder: str) -> list[str]:
        """The step's declared outputs back to their local destinations; the names missing."""
        job = self._outputs.get(token)
        if job is None:
            return []  # reattached without the submission: outputs are not known here
        step = token.split("-", 1)[1]
        missing: list[str] = []
        for out in job.spec.stage_out:
            local = Path(job.workdir) / out.source  # a std stream esap already brought back
            target = Path(out.dest) if Path(out.dest).is_absolute() else Path(job.workdir) / out.dest
            if not local.is_file():
                if not self._download_tree(client, f"{run_folder}{step}/work/{out.source}", target) \
                        and not out.optional:
                    missing.append(out.source)
            elif local.resolve() != target.resolve():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local, target)
        return missing

    def _download_tree(self, client: RosettaClient, remote: str, target: Path) -> bool:
        """A file, or a folder file by file (the file manager downloads no folder); False
        when nothing is there."""
        try:
            self._act()
            data = client.download(remote)
        except RosettaError:
            self._act()
            entries = client.list_folder(remote + "/")
            if not entries:
                return False
            target.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                self._download_tree(client, f"{remote}/{entry.name}", target / entry.name)
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return True

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

    def _script(self, job: Submission) -> str:
        spec = job.spec
        lines = ["#!/bin/sh", f"# esap-heartbeat: {self.heartbeat}", f"# esap job {job.job_id} ({job.name})"]
        if spec.walltime_s:
            lines.append(f"# esap-walltime: {spec.walltime_s}")  # the runner enforces it
        for key, value in spec.env.items():
            lines.append(f"export {key}={shlex.quote(value)}")
        if spec.argv:
            lines.append("exec " + shlex.join(spec.argv))
        else:
            lines.append(spec.script or "")
        return "\n".join(lines) + "\n"

    # --- status -----------------------------------------------------------------------
    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        """One file-manager listing of the run's status folder; finished steps are then
        collected (their two streams) and their tasks stopped and deleted."""
        wanted = [n for n in native_ids if n not in self._final]
        statuses = {n: self._final[n] for n in native_ids if n in self._final}
        if not wanted:
            return statuses
        self.query_count += 1
        entries = {e.name: e for e in self.client.list_folder(f"{self._run_folder(run_id)}status/")}
        exits: dict[str, int] = {}
        for name in entries:
            step, _, code = name.partition(".exit-")
            if code.lstrip("-").isdigit():
                exits[step] = int(code)
        now = time.time()
        finished: dict[str, JobStatus] = {}
        overdue: list[str] = []
        interactive = [t for t in wanted if f"{t.split('-', 1)[1]}.interactive" in entries
                       and f"{t.split('-', 1)[1]}.cancelled" not in entries]
        if interactive:  # no runner reports on them: one task listing for all
            statuses.update(self._interactive_states(run_id, interactive))
        for token in wanted:
            step = token.split("-", 1)[1]
            beat = entries.get(f"{step}.hb")
            if token in interactive:
                continue
            if f"{step}.cancelled" in entries:
                self._final[token] = JobStatus(JobState.CANCELLED, reason="cancelled through esap")
                statuses[token] = self._final[token]
            elif step in exits:
                exit_code = exits[step]
                state = JobState.COMPLETED if exit_code == 0 else JobState.FAILED
                timeout = f"{step}.timeout" in entries
                finished[token] = JobStatus(
                    JobState.FAILED if timeout else state, exit_code=exit_code,
                    reason="walltime exceeded (TIMEOUT)" if timeout else None,
                    cause="TIMEOUT" if timeout else None)
            elif beat is not None and now - beat.modified > 2 * self.heartbeat + HEARTBEAT_SLACK:
                finished[token] = JobStatus(
                    JobState.FAILED,
                    reason=f"heartbeat lost: the runner stopped reporting {int(now - beat.modified)} s ago "
                           "(killed, out of memory or time limit)",
                    cause="NODE_FAIL")  # the runner is gone: where it ran cannot say why
            elif beat is not None:
                statuses[token] = JobStatus(JobState.RUNNING)
            else:
                statuses[token] = JobStatus(JobState.QUEUED)
                if now - self._submitted.get(token, since) > self.start_timeout:
                    overdue.append(token)
        if overdue:
            finished.update(self._not_started(run_id, overdue))
        if finished:
            self._collect(run_id, finished)
            for token in finished:
                statuses[token] = self._final[token]
        return statuses

    def _interactive_states(self, run_id: str, tokens: Sequence[str]) -> dict[str, JobStatus]:
        """Interactive tasks as Rosetta lists them: running, waiting (created, submitted), or
        ended in Rosetta (stopped there: completed; deleted there: cancelled)."""
        tasks = {t.name: t for t in self._run_tasks(run_id)}
        states: dict[str, JobStatus] = {}
        for token in tokens:
            task = tasks.get(task_name(token))
            if task is None:
                self._final[token] = JobStatus(JobState.CANCELLED, reason="its Rosetta task was deleted in Rosetta")
                states[token] = self._final[token]
            elif task.status in ("stopped", "exited"):
                self._final[token] = JobStatus(JobState.COMPLETED, reason=f"the session was {task.status} in Rosetta")
                states[token] = self._final[token]
            else:
                states[token] = JobStatus(JobState.RUNNING if task.status == "running" else JobState.QUEUED)
        return states

    def _not_started(self, run_id: str, tokens: Sequence[str]) -> dict[str, JobStatus]:
        """Steps without a heartbeat `start_timeout` seconds after submission (one task
        listing): a task Rosetta marks running (its job started, the agent called back) whose
        runner never reported failed to start it, with the end of Rosetta's task log as the
        reason; a task that is gone failed too; a task still `submitted` waits in the queue."""
        tasks = {t.name: t for t in self._run_tasks(run_id)}
        failed: dict[str, JobStatus] = {}
        for token in tokens:
            task = tasks.get(task_name(token))
            if task is None:
                failed[token] = JobStatus(JobState.FAILED, reason="its Rosetta task is gone (deleted in Rosetta?)")
            elif task.status in ("running", "stopped", "exited"):
                try:
                    self._act()
                    lines = [line for line in self.client.task_log(task.uuid).splitlines() if line.strip()]
                except RosettaError as exc:
                    lines = [str(exc)]
                said = lines[-1].strip()[:300] if lines else "its log is empty"
                failed[token] = JobStatus(JobState.FAILED, reason=(
                    f"the runner did not start within {int(self.start_timeout)} s; Rosetta's task log: {said}"))
        return failed

    def _collect(self, run_id: str, finished: Mapping[str, JobStatus]) -> None:
        """Bring back each finished step's streams, then delete its task (Rosetta stops a
        task it deletes)."""
        run_folder = self._run_folder(run_id)

        def fetch(client: RosettaClient, token: str) -> None:
            status = finished[token]
            step = token.split("-", 1)[1]
            stdout, stderr = self._streams.get(token) or self._default_streams(run_id, step)
            tail = ""
            for stream, local, data in self._streams_of(client, run_folder, token, stdout, stderr):
                Path(local).parent.mkdir(parents=True, exist_ok=True)
                Path(local).write_bytes(data)
                if stream == "stderr":
                    tail = data[-TAIL_BYTES:].decode(errors="replace").strip()
            reason = status.reason
            missing = self._download_outputs(client, token, run_folder)
            if missing and status.state is JobState.COMPLETED:
                status = status.with_details(state=JobState.FAILED)
                reason = f"missing output {', '.join(missing)}"
            if status.state is JobState.FAILED and reason is None and tail:
                reason = tail.splitlines()[-1][:200]
            with self._lock:
                self._final[token] = status.with_details(reason=reason, stdout_path=stdout, stderr_path=stderr)

        self._each(fetch, list(finished))
        self._remove_tasks(run_id, list(finished), stop_first=False)

    def _streams_of(self, client: RosettaClient, run_folder: str, token: str, stdout: str,
                    stderr: str) -> list[tuple[str, str, bytes]]:
        """(stream, local path, bytes) of a finished step: from its result file (one download,
        which also holds its usage), else (a runner that wrote none) each stream's file."""
        step = token.split("-", 1)[1]
        try:
            self._act()
            result = parse_result(client.download(f"{run_folder}{step}/result"))
        except RosettaError:
            result = None
        if result is not None:
            with self._lock:
                self._usage[token] = usage_of(result["usage"].decode(errors="replace"))
            return [("stdout", stdout, result["stdout"]), ("stderr", stderr, result["stderr"])]
        found = []
        for stream, local in (("stdout", stdout), ("stderr", stderr)):
            try:
                self._act()
                found.append((stream, local, client.download(f"{run_folder}{step}/{stream}")))
            except RosettaError as exc:
                log.info("site %s: %s of %s not collected: %s", self.site.name, stream, token, exc)
        return found

    def _default_streams(self, run_id: str, step: str) -> tuple[str, str]:
        private = Path(self.site.work_root) / run_id / step
        return str(private / "esap.out"), str(private / "esap.err")

    def _remove_tasks(self, run_id: str, tokens: Sequence[str], *, stop_first: bool) -> None:
        """Delete the tasks (one task listing for all of them), each stopped first when asked."""
        names = {task_name(t) for t in tokens}
        targets = [t for t in self._run_tasks(run_id) if t.name in names]

        def remove(client: RosettaClient, task: Task) -> None:
            try:
                if stop_first and task.status not in ("stopped", "exited"):
                    self._act()
                    client.stop_task(task.uuid)
                self._act()
                client.delete_task(task.uuid)
            except RosettaError as exc:
                log.warning("site %s: task %s not removed: %s", self.site.name, task.name, exc)

        self._each(remove, targets)

    def _run_tasks(self, run_id: str) -> list[Task]:
        self.query_count += 1
        prefix = f"esap-{run_id}-"
        return [t for t in self.client.tasks(prefix) if t.name.startswith(prefix)]

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """Wall and CPU time the runner measured (one download per finished step); Rosetta
        accounts nothing itself, and peak memory is not measured."""
        found: dict[str, Usage] = {}
        for token in native_ids:
            if token in self._usage:  # (read with the step's result)
                found[token] = self._usage[token]
                continue
            step = token.split("-", 1)[1]
            try:
                self._act()
                text = self.client.download(f"{self._run_folder(run_id)}{step}/usage").decode()
            except RosettaError:
                continue
            found[token] = usage_of(text)
        return found

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {n: self._final[n] for n in native_ids if n in self._final}

    def cancel(self, native_ids: Sequence[str]) -> None:
        """Mark each step cancelled on the storage (what every later poll sees, from any
        process), then stop and delete the run's tasks."""
        by_run: dict[str, list[str]] = {}
        for token in native_ids:
            by_run.setdefault(token.split("-", 1)[0], []).append(token)
        for run_id, tokens in by_run.items():
            for token in tokens:
                self._act()
                self.client.upload(f"{self._run_folder(run_id)}status/", f"{token.split('-', 1)[1]}.cancelled",
                                   b"cancelled\n")
            self._remove_tasks(run_id, tokens, stop_first=True)

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        """The run's tasks by their run-scoped names, with states from the status folder."""
        tokens = {t.name.removeprefix("esap-") for t in self._run_tasks(run_id)}
        # a step whose task is already gone still left its status files
        self.query_count += 1
        for entry in self.client.list_folder(f"{self._run_folder(run_id)}status/"):
            step = entry.name.split(".", 1)[0]
            if step and not entry.name.startswith("."):
                tokens.add(f"{run_id}-{step}")
        if not tokens:
            return []
        statuses = self.poll(sorted(tokens), run_id=run_id, since=since)
        return [FoundJob(native_id=t, job_id=job_id_of(t), status=statuses[t]) for t in sorted(tokens)]

    def software_images(self) -> list[SoftwareImage]:
        """Every software the account may run, as `registry/image_name:image_tag` (one page read)."""
        self.query_count += 1
        return [SoftwareImage(name=c.name, tag=c.image_tag, image=c.reference) for c in self.client.containers()]

    def describe(self) -> dict[str, Any]:
        """The computing's attributes for matchmaking (two page reads): its type (cluster or
        standalone), arch and container engines, and what else the account can use."""
        self.query_count += 2
        computings = self.client.computing_info()
        software = sorted({name for name, _ in self.client.software()})
        mine = computings.get(self.computing_name, {})
        values: dict[str, Any] = {
            "GlueCEInfoLRMSType": "Rosetta",
            "RosettaComputing": self.computing_name,
            "RosettaComputings": ",".join(sorted(computings)),
            "RosettaSoftware": ",".join(software),
        }
        if mine:
            values["RosettaComputingType"] = mine["type"]
            values["IsCluster"] = mine["type"] == "cluster"
            values["GlueHostArchitecturePlatformType"] = mine["arch"]
            values["ContainerEngines"] = mine["engines"]
        partition = self.site.defaults.get("partition")
        if partition:
            values["RosettaPartition"] = partition
        return values

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
