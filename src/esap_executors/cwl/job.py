"""A CommandLineTool job that is sent to a site instead of run as a local process.

`run` prepares the job exactly as cwltool does (directories, staged inputs, InitialWorkDir,
environment), writes the portable script and hands the job to the session, which submits the
batch and returns; `finish` is the tail of cwltool's `JobBase._execute` (exit-code mapping,
InitialWorkDir relink, output collection, callback), called when the job is final.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import shutil
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.job import CommandLineJob, relink_initialworkdir
from cwltool.pathmapper import MapperEnt, PathMapper
from cwltool.process import stage_files
from cwltool.utils import bytes2str_in_dicts

from ..backends import capabilities_of
from ..checkpoint import Checkpoint
from ..confined import links_leaving
from ..errors import BadInput
from ..job import Container, JobSpec, StageIn, StageOut
from ..runs import JobRequest
from ..sites import Site
from ..staging.execute_side import (
    FETCH_DIR,
    FETCH_FAILED_EXIT,
    FetchItem,
    fetch_command,
    fetch_failure,
    forget_tokens,
    write_fetch_directory,
)
from ..submitter import reattaches
from . import remote_io
from .placement import Placement, checkpoint_hint, place, retry_hint
from .script import SANDBOX_DIRS, Sandbox, job_script

if TYPE_CHECKING:
    from ..runs import JobRequest, Run
    from ..store import JobRecord

log = logging.getLogger("cwltool")

SCRIPT_NAME = "esap-job.sh"
SANDBOX_NAME = "sandbox"  # transfer sites: what is sent (out, tmp, stage as the job sees them)
WALLTIME_MARGIN_S = 60  # the tool's own time limit is enforced in the script; the scheduler's is a backstop


class JobSession(Protocol):
    """What a step's job needs of the run's session (cwl/session.py: Session), which submits it."""

    default_site: str | None

    @property
    def run(self) -> Run: ...

    @property
    def right_size(self) -> bool: ...

    def site(self, name: str | None) -> Site: ...

    def transfers_files(self, site: Site) -> bool: ...

    def enqueue(self, job: EsapCommandLineJob, request: JobRequest) -> None: ...

    def right_sized(self, spec: JobSpec, step: str, site: str) -> JobSpec: ...


class EsapCommandLineJob(CommandLineJob):
    esap_key: str = ""
    esap_root: str = ""
    esap_image: str | None = None
    esap_copy_inputs = False
    # a site without a shared filesystem: the job's directories are <esap_virtual>/out, tmp and
    # stage on the execute host, <esap_root>/sandbox/... here; `out` comes back to self.outdir
    esap_virtual: str | None = None
    esap_fetch_python: str | None = None  # the job fetches its inputs by storage URL with this interpreter

    @property
    def esap_checkpoint(self) -> Checkpoint | None:
        return checkpoint_hint(self)

    def run(self, runtimeContext: RuntimeContext, tmpdir_lock: Any = None) -> None:
        session: JobSession = runtimeContext.esap  # type: ignore[attr-defined]
        previous = session.run.latest(self.esap_key)
        attach = previous is not None and reattaches(previous)
        if not attach:
            for directory in (self.outdir, self.tmpdir, self.stagedir, self._sandbox()):
                if directory and directory.startswith(self.esap_root + os.sep):
                    shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(self.tmpdir, exist_ok=True)
        self._setup(runtimeContext)
        resources = self.builder.resources
        placement = place(session.run.catalogue, self, session.default_site,
                          math.ceil(resources.get("cudaDeviceCount", 0) or 0))
        site = session.site(placement.site)
        self._check_transfer(site, session.transfers_files(site))
        # Inputs are symlinked as cwltool does where the site's jobs see this host's files at the
        # same paths as this user; elsewhere, and in containers (which mount only the job's
        # directory), they are copied into the job's directory.
        self.esap_copy_inputs = (self.esap_image is not None or not capabilities_of(site).links_inputs
                                 or self.esap_virtual is not None)
        fetch_items = self._deferred_inputs(runtimeContext, site)
        self.esap_fetch_python = None
        if fetch_items:
            self.esap_fetch_python = site.staging.python or sys.executable  # (shared filesystem: this one)
            if not attach:
                write_fetch_directory(self._fetch_dir(), fetch_items, site.staging.cache, site.staging.cache_bytes)
        if not attach:
            self._stage(runtimeContext)
        request = self._request(session, runtimeContext, site, placement, write=not attach)
        if not attach:
            give_to_owner(site, self.esap_root)
        session.enqueue(self, request)

    def _setup(self, runtimeContext: RuntimeContext) -> None:
        """cwltool's setup without its CUDA check, which runs nvidia-smi on this (submit) host."""
        import cwltool.job as cwltool_job

        original = cwltool_job.cuda_check
        cwltool_job.cuda_check = _cuda_on_site
        try:
            super()._setup(runtimeContext)
        finally:
            cwltool_job.cuda_check = original

    def _fetch_dir(self) -> Path:
        return Path(self.esap_root) / FETCH_DIR

    def _deferred_inputs(self, runtimeContext: RuntimeContext, site: Site) -> list[FetchItem]:
        """This job's inputs by storage URL still to be fetched (placeholders, see remote_io):
        through this host now, or listed for the job to fetch (the site's staging.fetch)."""
        deferred: dict[str, tuple[str, str]] | None = getattr(runtimeContext, "esap_deferred", None)
        if not deferred:
            return []
        entries = [entry for mapper in (self.pathmapper, self.generatemapper) if mapper is not None
                   for _, entry in mapper.items_exclude_children() if entry.resolved in deferred]
        if not site.staging.on_execute_side:
            remote_io.fetch_deferred(deferred, [entry.resolved for entry in entries])
            return []
        return [FetchItem(deferred[e.resolved][0], e.target if e.staged else e.resolved, deferred[e.resolved][1])
                for e in entries]

    def _sandbox(self) -> str:
        return os.path.join(self.esap_root, SANDBOX_NAME)

    def _check_transfer(self, site: Site, transfer: bool) -> None:
        if transfer != (self.esap_virtual is not None):
            kind = "without" if transfer else "with"
            raise BadInput(
                f"step {self.name} was matched to site {site.name}, {kind} a shared filesystem, unlike the "
                "site its command line was made for: name the step's site (--site or an esap:Site hint)",
                field="esap:Site",
            )
        if transfer and self.esap_image is not None and not capabilities_of(site).step_images:
            raise BadInput(
                f"step {self.name}: esap-cwltool runs no container on site {site.name}, which has no shared "
                "filesystem (use --no-container, or a site with a shared filesystem)",
                field="DockerRequirement",
            )

    def _stage(self, runtimeContext: RuntimeContext) -> None:
        if self.esap_virtual is not None:
            self._stage_sandbox(runtimeContext)
            return
        symlink = not self.esap_copy_inputs
        stage_files(self.pathmapper, _copy_input, ignore_writable=True, symlink=symlink,
                    secret_store=runtimeContext.secret_store)
        if self.generatemapper is not None:
            stage_files(
                self.generatemapper,
                _copy_input,
                # copies are made of in-place entries too: they are copied back in finish
                ignore_writable=self.inplace_update and symlink,
                symlink=symlink,
                secret_store=runtimeContext.secret_store,
            )
            if symlink:  # (relinking would point the copies back at paths the job cannot see)
                relink_initialworkdir(self.generatemapper, self.outdir, self.builder.outdir,
                                      inplace_update=self.inplace_update)

    def _stage_sandbox(self, runtimeContext: RuntimeContext) -> None:
        """Copies of the inputs and InitialWorkDir where the job will see them, relative to the
        sandbox; writable entries are copied too (an in-place update is copied back in finish)."""
        for name in SANDBOX_DIRS:
            os.makedirs(os.path.join(self._sandbox(), name), exist_ok=True)
        stage_files(self._mapper_here(self.pathmapper), _copy_input, ignore_writable=True, symlink=False,
                    secret_store=runtimeContext.secret_store)
        if self.generatemapper is not None:
            stage_files(self._mapper_here(self.generatemapper), _copy_input, ignore_writable=False,
                        symlink=False, secret_store=runtimeContext.secret_store)
        _let_transfer_fill(self._sandbox())

    def _mapper_here(self, mapper: PathMapper) -> PathMapper:
        """The mapper with the staged targets on this side (the virtual root -> the sandbox)."""
        here = copy.copy(mapper)
        here._pathmap = {key: self._entry_here(entry) for key, entry in mapper.items()}
        return here

    def _entry_here(self, entry: MapperEnt) -> MapperEnt:
        if not entry.staged:
            return entry
        local = self._here(entry.target)
        if local is None:
            raise WorkflowException(
                f"{entry.target}: outside the job's directories, it cannot be sent to a site without a "
                "shared filesystem"
            )
        return MapperEnt(entry.resolved, local, entry.type, entry.staged)

    def _here(self, path: str) -> str | None:
        virtual = self.esap_virtual
        if virtual is None or not (path == virtual or path.startswith(virtual + "/")):
            return None
        return self._sandbox() + path[len(virtual):]

    def _stream_paths(self) -> tuple[str | None, str | None, str | None]:
        """stdin, stdout and stderr as the job script names them."""
        stdin_path = None
        if self.stdin is not None:
            reverse = self.pathmapper.reversemap(self.stdin)
            if reverse is None:
                raise WorkflowException(f"{self.stdin} missing from pathmapper")
            # with copied inputs the job reads the staged copy, else the original
            stdin_path = self.stdin if self.esap_copy_inputs else reverse[1]
        paths: list[str | None] = []
        for name in (self.stdout, self.stderr):
            if name is None:
                paths.append(None)
                continue
            if self.esap_virtual is not None:  # written in `out`, which comes back to self.outdir
                os.makedirs(os.path.dirname(os.path.join(self._sandbox(), "out", name)), exist_ok=True)
                paths.append(os.path.join(self.builder.outdir, name))
                continue
            full = os.path.join(self.base_path_logs, name)
            os.makedirs(os.path.dirname(full) or ".", exist_ok=True)
            paths.append(full)
        return stdin_path, paths[0], paths[1]

    def _request(
        self, session: JobSession, runtimeContext: RuntimeContext, site: Site, placement: Placement, *, write: bool
    ) -> JobRequest:
        resources = self.builder.resources
        commands = [str(x) for x in self.command_line]
        if not commands:
            raise WorkflowException(
                "Cannot run a CommandLineTool that produces an empty command line. "
                "Specify a 'baseCommand', 'arguments', and/or an input with an "
                "'inputBinding' so there is a program to execute."
            )
        env: MutableMapping[str, str] = dict(self.environment)
        if runtimeContext.secret_store is not None:
            commands = cast(list[str], runtimeContext.secret_store.retrieve(cast(Any, commands)))
            env = cast(MutableMapping[str, str], runtimeContext.secret_store.retrieve(cast(Any, env)))
        tasks = 1
        if self.mpi_procs:  # cwltool:MPIRequirement: the launcher of --mpi-config-file starts the ranks
            mpi = runtimeContext.mpi_config
            commands = [mpi.runner, mpi.nproc_flag, str(self.mpi_procs), *mpi.extra_flags, *commands]
            mpi.pass_through_env_vars(env)
            mpi.set_env_vars(env)
            tasks = self.mpi_procs
        stdin_path, stdout_path, stderr_path = self._stream_paths()
        script_path = os.path.join(self.esap_root, SCRIPT_NAME)
        virtual = self.esap_virtual
        if write:
            text = job_script(
                outdir=self.builder.outdir if virtual else self.outdir,
                commands=commands,
                env=env,
                stdin=stdin_path,
                stdout=stdout_path,
                stderr=stderr_path,
                # a checkpointed tool gets its signal from the scheduler or the job wrapper:
                # `timeout` would die of it (it passes on only TERM and the like), so the
                # scheduler's walltime (the time limit plus WALLTIME_MARGIN_S) is the limit
                timelimit=None if self.esap_checkpoint else self.timelimit or None,
                modules=self._modules(site),
                extra_path=None if virtual else self._interpreter_dir(site),
                sandbox=Sandbox(virtual, site.execute.get("python")) if virtual else None,
                prelude=[fetch_command(self.esap_fetch_python, None if virtual else str(self._fetch_dir()))]
                if self.esap_fetch_python else [],
            )
            descriptor = os.open(script_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o700)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(text)
        argv: tuple[str, ...] = ("/bin/sh", script_path)
        stage_in: tuple[StageIn, ...] = ()
        stage_out: tuple[StageOut, ...] = ()
        if virtual:
            # the backend transfers these into the job's scratch directory, and `out` back here
            argv = ("/bin/sh", SCRIPT_NAME)
            stage_in = (StageIn(script_path, SCRIPT_NAME),
                        *(StageIn(os.path.join(self._sandbox(), name), name) for name in SANDBOX_DIRS))
            if self.esap_fetch_python:
                stage_in += (StageIn(str(self._fetch_dir()), FETCH_DIR),)
            stage_out = (StageOut("out", self.outdir),)
        for name, value in (("coresMin", resources.get("cores", 1)), ("ramMin", resources.get("ram", 256))):
            if not math.isfinite(value) or value < 0:
                raise BadInput(f"{value!r} is not a usable amount", field=f"{self.name}: ResourceRequirement.{name}")
        if self.timelimit is not None and self.timelimit < 0:
            raise BadInput(f"{self.timelimit} is negative", field=f"{self.name}: ToolTimeLimit.timelimit")
        spec = JobSpec(
            argv=argv,
            stage_in=stage_in,
            stage_out=stage_out,
            cwd=self.esap_root,
            stdout=os.path.join(self.esap_root, "esap.out"),
            stderr=os.path.join(self.esap_root, "esap.err"),
            cores=tasks * max(1, math.ceil(resources.get("cores", 1))),
            tasks=tasks,
            memory_mib=max(1, math.ceil(resources.get("ram", 256))),
            gpus=placement.gpus,
            walltime_s=self.timelimit + WALLTIME_MARGIN_S if self.timelimit else None,
            container=Container(image=self.esap_image) if self.esap_image else None,
            network=bool(self.networkaccess),
            success_exit_codes=tuple(self.successCodes) or (0,),
            requirements=placement.requirements,
            labels={"cwl_step": self.name},
            retry_policy=retry_hint(self),
            checkpoint=self.esap_checkpoint,
        )
        if session.right_size:
            spec = session.right_sized(spec, self.name, site.name)
        return JobRequest(key=self.esap_key, spec=spec, site=site.name, name=self.name)

    def _update_in_place(self, mapper: PathMapper) -> None:
        """InplaceUpdateRequirement: the job changed copies; the originals get their contents."""
        for _, entry in mapper.items_exclude_children():
            if not entry.staged or entry.type not in ("WritableFile", "WritableDirectory"):
                continue
            if entry.resolved.startswith("_:") or not entry.target.startswith(self.builder.outdir + "/"):
                continue
            changed = os.path.join(self.outdir, entry.target[len(self.builder.outdir) + 1:])
            if os.path.isdir(changed):
                shutil.copytree(changed, entry.resolved, dirs_exist_ok=True)
            elif os.path.isfile(changed):
                shutil.copyfile(changed, entry.resolved)

    def _keep_logs(self) -> None:
        """--log-dir: stdout and stderr came back in `out`; the log directory keeps a copy."""
        if self.base_path_logs == self.outdir:
            return
        for name in (self.stdout, self.stderr):
            if name and os.path.isfile(os.path.join(self.outdir, name)):
                kept = os.path.join(self.base_path_logs, name)
                os.makedirs(os.path.dirname(kept), exist_ok=True)
                shutil.copy2(os.path.join(self.outdir, name), kept)

    def _interpreter_dir(self, site: Site) -> str | None:
        """`python` on PATH is the site's declared execute-side interpreter (`execute: {python: ...}`),
        as tools expect one and execute nodes often have only `python3`."""
        interpreter = site.execute.get("python")
        if not interpreter:
            return None
        directory = os.path.join(self.esap_root, "bin")
        os.makedirs(directory, exist_ok=True)
        link = os.path.join(directory, "python")
        if not os.path.lexists(link):
            os.symlink(interpreter, link)
        return directory

    def _refuse_links_out(self) -> None:
        """A link the job made to a file outside its directory (out.txt -> /etc/passwd) is never
        collected as an output; links to the job's own inputs (as cwltool stages them) are."""
        inputs = [entry.resolved for mapper in (self.pathmapper, self.generatemapper) if mapper is not None
                  for _, entry in mapper.items() if not entry.resolved.startswith("_:")]
        leaving = links_leaving(self.outdir, [*inputs, self.builder.outdir, self.stagedir or "", self.tmpdir or ""])
        if leaving:
            names = ", ".join(leaving[:5]) + (f" and {len(leaving) - 5} more" if len(leaving) > 5 else "")
            raise WorkflowException(f"{names}: symbolic link(s) pointing outside the job's directory; "
                                    "no output collected")

    def _modules(self, site: Site) -> list[str]:
        software, _ = self.builder.get_requirement("SoftwareRequirement")
        if not software or not site.modules:
            return []
        modules = []
        packages: Any = software.get("packages") or []
        for package in packages:
            module = site.modules.get(str(package.get("package", "")))
            if module:
                modules.append(module)
        return modules

    def finish(self, record: JobRecord | None, runtimeContext: RuntimeContext, error: str | None = None) -> None:
        """Map the exit code, collect the outputs (on the shared filesystem, or transferred back
        into self.outdir), report to cwltool."""
        outputs: Any = {}
        rcode: int | None = None
        forget_tokens(self._fetch_dir())
        if record is not None:
            # killed by a signal: SLURM's ExitCode 0:10 is no success (-SIGNAL, as cwltool's own jobs)
            rcode = -record.signal if record.signal else record.exit_code
        try:
            if error is not None:
                raise WorkflowException(error)
            if rcode is None:
                state = record.state.value if record else "unknown"
                reason = f" ({record.reason})" if record and record.reason else ""
                ident = record.job_id if record else ""
                raise WorkflowException(f"job {ident} ended {state}{reason} without an exit code")
            if rcode in self.successCodes:
                status = "success"
            elif rcode in self.temporaryFailCodes:
                status = "temporaryFail"
            elif rcode in self.permanentFailCodes:
                status = "permanentFail"
            elif rcode == 0:
                status = "success"
            else:
                status = "permanentFail"
            if status != "success":
                log.warning("[job %s] exited with status: %d (esap job %s on %s)", self.name, rcode,
                            record.job_id if record else "?", record.site if record else "?")
                if self.esap_fetch_python and rcode == FETCH_FAILED_EXIT:
                    log.error("[job %s] its inputs by storage URL could not be fetched: %s", self.name,
                              fetch_failure(Path(self.esap_root) / "esap.err"))
            if "listing" in self.generatefiles and self.generatemapper is not None:
                if self.esap_copy_inputs and self.inplace_update:
                    self._update_in_place(self.generatemapper)
                relink_initialworkdir(self.generatemapper, self.outdir, self.builder.outdir,
                                      inplace_update=self.inplace_update)
            if self.esap_virtual is not None:
                self._keep_logs()
            else:
                _, stdout_path, stderr_path = self._stream_paths()
                runtimeContext.log_dir_handler(self.outdir, self.base_path_logs, stdout_path, stderr_path)
            self._refuse_links_out()
            outputs = bytes2str_in_dicts(self.collect_outputs(self.outdir, rcode))
        except WorkflowException as err:
            log.error("[job %s] Job error:\n%s", self.name, err)
            status = "permanentFail"
        except Exception as err:  # the same catch-all as cwltool's _execute
            log.exception("Exception while collecting the outputs of job %s: %s", self.name, err)
            status = "permanentFail"
        if status != "success":
            log.warning("[job %s] completed %s", self.name, status)
        else:
            log.info("[job %s] completed %s", self.name, status)
        if runtimeContext.workflow_eval_lock is None:
            raise WorkflowException("runtimeContext.workflow_eval_lock must not be None")
        if self.output_callback:
            with runtimeContext.workflow_eval_lock:
                self.output_callback(outputs, status)
        if runtimeContext.rm_tmpdir:
            for directory in (self.stagedir, self.tmpdir, self._sandbox()):
                if directory and os.path.exists(directory):
                    shutil.rmtree(directory, True)


def _copy_input(source: str, target: str) -> None:
    """Stage by copying (children of a copied directory are already there)."""
    if os.path.isdir(source):
        shutil.copytree(source, target, dirs_exist_ok=True)
    elif not os.path.exists(target):
        shutil.copy2(source, target)


def _let_transfer_fill(root: str) -> None:
    """HTCondor recreates the directories on the execute host with their modes before it puts
    their contents in: copies of read-only input directories must be writable by their owner."""
    for directory, _, _ in os.walk(root):
        mode = os.stat(directory).st_mode
        if mode & 0o700 != 0o700:
            os.chmod(directory, mode | 0o700)


def give_to_owner(site: Site, root: str) -> None:
    """A site whose jobs run as another user than this one (owner mapping): the job's tree becomes theirs."""
    owner = capabilities_of(site).runs_as
    if not owner:
        return
    import pwd

    entry = pwd.getpwnam(owner)
    for directory, subdirs, files in os.walk(root):
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        for name in [*subdirs, *files]:
            os.lchown(os.path.join(directory, name), entry.pw_uid, entry.pw_gid)


def _cuda_on_site(cuda_req: Any, requestCount: int) -> int:
    """The submit host has no GPU (and no nvidia-smi): the site's scheduler provides them."""
    return max(requestCount, 1)
