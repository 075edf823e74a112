"""SLURM backend: the same jobs through sbatch/sacct/scancel or through slurmrestd.

The site chooses the way in (`options.access: rest | cli | auto`). Whatever the path, one
run costs: a few calls to read the cluster once, one submission per job or per array of
same-shaped jobs, and ONE status query per poll cycle (run-scoped name + time window).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, ClassVar

from ...errors import BadInput, EsapError, Unreachable
from ...sites import CONTAINER_RUNTIMES
from ...states import JobState, JobStatus
from ..base import Backend, Capabilities, FoundJob, Submission, Usage
from .access import SlurmAccess
from .cli import CliAccess, command_path
from .cluster import ClusterInfo, check
from .mapping import BatchJob, job_ids_from_comment, job_name, plan, resources_of, rest_fields
from .records import SlurmRecord, to_status

__all__ = ["SlurmBackend"]

log = logging.getLogger(__name__)

DEFAULT_REST_URL = "http://127.0.0.1:6820"
DEFAULT_ACCOUNTING_WAIT = 60.0
NO_ACCOUNTING = "exit code unknown (no accounting record)"


class SlurmBackend(Backend):
    name = "slurm"
    capabilities: ClassVar[Capabilities] = Capabilities(
        links_inputs=True,  # jobs run as this user and see the shared filesystem at the same paths
        container_runtimes=frozenset(CONTAINER_RUNTIMES),
        billing_fields=frozenset({"account", "partition", "qos", "constraints"}),
        job_arrays=True,
        multi_node_tasks=True,
        usage_accounting=True,
    )
    option_types: ClassVar[dict[str, type | tuple[type, ...]]] = {
        "access": str,  # rest | cli | auto (auto: REST when `url` answers, else the CLI)
        "url": str,  # slurmrestd base URL
        "api_version": str,  # pin e.g. "0.0.38"; default: the newest the server describes
        "array_min": int,  # same-shaped jobs from this many on go out as one array (default 2)
        "submit_workers": int,  # parallel submissions of single jobs (default 4)
        "timeout": (int, float),  # seconds per scheduler call (default 60)
        "user": str,  # the SLURM user for account checks (default: this user / slurm_user)
        # where poll() looks: accounting (sacct / slurmdb), or controller (squeue) first and
        # accounting only for jobs the controller no longer shows or when it does not answer.
        # auto: the controller where it can answer for the run alone (squeue --name on the CLI,
        # GET /slurm/vX/jobs/state?job_id=… on REST with Slurm 24.05+), else accounting (REST on
        # older Slurm: the controller's whole job list is megabytes on a busy cluster).
        # controller on REST before 24.05: that whole list, incremental (update_time).
        "status": str,
        # the directory of this cluster's client commands (sbatch, squeue, sacct, scancel,
        # scontrol, sacctmgr, sshare), e.g. wrappers that set SLURM_CONF; default: PATH
        "commands": str,
        # seconds a job the controller reports ended (without its exit code: jobs/state) waits
        # for its accounting record; then it ends with "exit code unknown" (no slurmdbd, or one
        # down that long). Default 60.
        "accounting_wait": (int, float),
    }

    def __init__(self, site: Any) -> None:
        super().__init__(site)
        self.options = dict(site.options)
        access = str(self.options.get("access", "auto"))
        if access not in {"rest", "cli", "auto"}:
            raise BadInput(f"unknown access {access!r} (known: rest, cli, auto)", source=site.source,
                           line=site.line, field=f"{site.name}.options.access")
        self.access_mode = access
        status = str(self.options.get("status", "auto"))
        if status not in {"auto", "accounting", "controller"}:
            raise BadInput(f"unknown status source {status!r} (known: auto, accounting, controller)",
                           source=site.source, line=site.line, field=f"{site.name}.options.status")
        self.status_source = status
        self.commands: str | None = self.options.get("commands")
        self._access: SlurmAccess | None = None
        self._cluster: ClusterInfo | None = None
        self.cluster_reads = 0  # how often the cluster's configuration was read (once per run)
        self._validated: set[Any] = set()
        self._run: tuple[str, float] | None = None  # (run_id, since) of the last poll
        wait = self.options.get("accounting_wait", DEFAULT_ACCOUNTING_WAIT)
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not 0 <= wait < math.inf:
            raise BadInput(f"{wait!r} is not a number of seconds (0 or more)", source=site.source,
                           line=site.line, field=f"{site.name}.options.accounting_wait")
        self.accounting_wait = float(wait)
        # jobs the controller reports ended whose accounting record is missing: since when (monotonic)
        self._unaccounted: dict[str, float] = {}

    # --- the way in -----------------------------------------------------------------
    @property
    def access(self) -> SlurmAccess:
        if self._access is None:
            self._access = self._open_access()
        return self._access

    def _open_access(self) -> SlurmAccess:
        timeout = float(self.options.get("timeout", 60))
        if self.access_mode in ("rest", "auto"):
            try:
                return self._rest(timeout)
            except EsapError as exc:
                if self.access_mode == "rest" or not shutil.which(command_path("sbatch", self.commands)):
                    raise
                log.info("site %s: slurmrestd not usable (%s); using the CLI", self.site.name, exc)
        return CliAccess(timeout=timeout, user=self.options.get("user"), commands=self.commands)

    def _rest(self, timeout: float) -> SlurmAccess:
        from .rest import RestAccess
        from .token import TokenSource

        url = str(self.options.get("url") or os.environ.get("SLURMRESTD_URL") or DEFAULT_REST_URL)
        tokens = TokenSource(self.site.credentials, default_user=self.options.get("user"),
                             scontrol=command_path("scontrol", self.commands))
        return RestAccess(url, tokens, version=self.options.get("api_version"), timeout=min(timeout, 60),
                          workers=int(self.options.get("submit_workers", 8)))

    def cluster(self) -> ClusterInfo:
        """Read once per backend instance, i.e. once per run."""
        if self._cluster is None:
            self._cluster = self.access.cluster()
            self.cluster_reads += 1
        return self._cluster

    def max_array_size(self) -> int:
        """Tasks per array: the site's max_array_size, never above the cluster's MaxArraySize."""
        largest = max(1, self.cluster().max_array_size - 1)
        return min(largest, self.site.limits.max_array_size or largest)

    def scheduler_max_queued(self) -> int | None:
        """The tightest of the user's associations' MaxSubmitJobs and the MaxSubmitJobsPerUser of
        the QoS the site's jobs run in (its `defaults.qos`, else the associations' default)."""
        try:
            info = self.cluster()
            qos = self.site.defaults.get("qos") or info.default_qos
            limits = [n for n in (info.max_submit_jobs, info.qos_max_submit.get(qos or "")) if n is not None]
            return min(limits) if limits else None
        except EsapError as exc:
            log.info("site %s: MaxSubmitJobs unknown: %s", self.site.name, exc)
            return None

    # --- contract -------------------------------------------------------------------
    def validate(self, jobs: Sequence[Submission]) -> None:
        shapes = {resources_of(job.spec) for job in jobs} - self._validated
        if not shapes:
            return
        check(self.cluster(), shapes, source=self.site.name)
        fit = getattr(self.access, "_fit", None)
        if fit is not None:  # REST: every field must exist in this server's API version
            for shape in shapes:
                fit(rest_fields(BatchJob("x", "x", shape, "", "/", "/", "/"), {}))
        self._validated |= shapes

    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        if not jobs:
            return []
        self.validate(jobs)
        batches = plan(
            self.site, jobs,
            array_min=int(self.options.get("array_min", 2)),
            max_array=self.max_array_size(),
        )
        workers = max(1, min(int(self.options.get("submit_workers", 4)), len(batches)))
        submitted: dict[int, str] = {}
        failure: BaseException | None = None

        def send(index: int) -> None:
            submitted[index] = self.access.submit(batches[index])

        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(send, i) for i in range(len(batches))]
            for future in futures:
                error = future.exception()
                if error is not None and failure is None:
                    failure = error
        if failure is not None:
            # all or nothing: the core recorded the whole batch as one submission
            sent = [native for i, b in enumerate(batches) if i in submitted for native in _natives(b, submitted[i])]
            if sent:
                try:
                    self.access.cancel(sent)
                except EsapError:
                    log.warning("could not cancel %d job(s) of a failed submission", len(sent))
            raise failure
        by_job: dict[str, str] = {}
        for index, batch in enumerate(batches):
            for job_id, native in zip(batch.job_ids, _natives(batch, submitted[index]), strict=True):
                by_job[job_id] = native
        return [by_job[job.job_id] for job in jobs]

    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        """One run-scoped query; a second (accounting) only for jobs the controller forgot or
        ended without telling their exit code."""
        self._run = (run_id, since)
        name = job_name(run_id)
        records: dict[str, SlurmRecord] = {}
        ask_accounting = self.status_source == "accounting"
        need_accounting: set[str] = set()  # the controller forgot them, or told no exit code
        if not ask_accounting:
            self.query_count += 1
            try:
                answer = self._controller_records(native_ids, name, since)
            except Unreachable as exc:  # slurmctld down or restarting: accounting still answers
                log.info("site %s: controller query failed (%s); asking accounting", self.site.name, exc)
                ask_accounting = True
            else:
                if answer is None:  # REST without a run-scoped controller query: accounting
                    self.query_count -= 1
                    ask_accounting = True
                else:
                    from_controller, without_codes = answer
                    records = {r.native_id: r for r in from_controller}
                    need_accounting = {n for n in native_ids if n not in records or (
                        without_codes and _ended_without_code(records[n]))}
                    ask_accounting = bool(need_accounting)
        if ask_accounting:
            self.query_count += 1
            try:
                accounted_records = list(self.access.run_records(name, since))
            except Unreachable as exc:
                if not need_accounting:  # the controller did not answer either
                    raise
                log.info("site %s: accounting query failed (%s)", self.site.name, exc)
                accounted_records = []
            for accounted in accounted_records:
                if accounted.native_id in need_accounting:
                    records[accounted.native_id] = accounted
                    need_accounting.discard(accounted.native_id)
                else:
                    records.setdefault(accounted.native_id, accounted)
        statuses = {}
        now = time.monotonic()
        for native in native_ids:
            found = records.get(native)
            if found is not None and native in need_accounting:
                statuses[native] = self._awaiting_accounting(found, now)
                continue
            self._unaccounted.pop(native, None)
            # not in the accounting database yet (it lags sbatch): still queued
            statuses[native] = JobStatus(JobState.QUEUED) if found is None else to_status(found)
        return statuses

    def _awaiting_accounting(self, record: SlurmRecord, now: float) -> JobStatus:
        """A job the controller reports ended, its exit code not in accounting: running as far as
        we know while accounting may yet record it (it lags the controller); after
        `accounting_wait` seconds, ended as the controller said, its exit code unknown."""
        first = self._unaccounted.setdefault(record.native_id, now)
        if now - first < self.accounting_wait:
            return to_status(replace(record, state="RUNNING"))
        del self._unaccounted[record.native_id]
        log.warning("site %s: job %s ended %s; no accounting record after %gs: exit code unknown",
                    self.site.name, record.native_id, record.state, self.accounting_wait)
        status = to_status(record)
        said = status.reason if status.reason not in (None, "FAILED") else None
        return status.with_details(state=JobState.FAILED,
                                   reason=f"{said}: {NO_ACCOUNTING}" if said else NO_ACCOUNTING)

    def _controller_records(self, native_ids: Sequence[str], name: str,
                            since: float) -> tuple[list[SlurmRecord], bool] | None:
        """The controller's view and whether it lacks exit codes: squeue on the CLI path; on REST
        the states of exactly these jobs (jobs/state on Slurm 24.05+, no exit codes; job/{id}
        before), else (status: controller) its incremental job list; None: ask accounting."""
        states = getattr(self.access, "job_states", None)
        if states is not None and self.access.kind == "rest":
            found: tuple[list[SlurmRecord], bool] | None = states(native_ids)
            if found is not None or self.status_source == "auto":
                return found
        return self.access.queue_records(name, since), False

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        if not native_ids or self._run is None:
            return {}
        run_id, since = self._run
        self.query_count += 1
        try:
            records = self.access.details(native_ids, job_name(run_id), since)
        except Unreachable as exc:
            log.warning("failure details unavailable: %s", exc)
            return {}
        return {r.native_id: _explained(r) for r in records}

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """From the accounting database, one query for all of them."""
        if not native_ids:
            return {}
        self.query_count += 1
        return self.access.usage(native_ids, job_name(run_id), since)

    def cancel(self, native_ids: Sequence[str]) -> None:
        if native_ids:
            self.access.cancel(list(native_ids))

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        """The accounting records of the run, completed by the controller's queue: a job that
        sacct does not show yet, or shows without its comment, is still found."""
        name = job_name(run_id)
        self.query_count += 2
        records = {r.native_id: r for r in self.access.run_records(name, since)}
        comments = {r.native_id: r.comment for r in records.values() if r.comment}
        for queued in self.access.queue_records(name, since):
            if queued.comment:
                comments.setdefault(queued.native_id, queued.comment)
            records.setdefault(queued.native_id, queued)
        found = []
        for record in records.values():
            job_ids = job_ids_from_comment(self.site, run_id, comments.get(record.native_id, ""))
            if not job_ids:
                continue
            if len(job_ids) == 1 and "_" not in record.native_id:
                job_id = job_ids[0]
            else:
                task = record.native_id.rpartition("_")[2]
                if not task.isdigit() or int(task) >= len(job_ids):
                    continue
                job_id = job_ids[int(task)]
            found.append(FoundJob(native_id=record.native_id, job_id=job_id, status=to_status(record)))
        return found

    def describe(self) -> dict[str, Any]:
        try:
            values = self.cluster().describe()
        except EsapError as exc:
            log.info("site %s: cannot describe the cluster: %s", self.site.name, exc)
            return {"GlueCEInfoLRMSType": "SLURM", "GlueCEStateStatus": "Closed"}
        values["SlurmAccess"] = self.access.kind
        return values

    def close(self) -> None:
        if self._access is not None:
            self._access.close()


def _ended_without_code(record: SlurmRecord) -> bool:
    """jobs/state's final states other than COMPLETED (exit 0) and CANCELLED: the exit code is
    in accounting."""
    return (record.exit_code is None and record.state not in ("COMPLETED", "CANCELLED")
            and to_status(record).state.is_final)


def _natives(batch: BatchJob, scheduler_id: str) -> list[str]:
    if batch.array_size:
        return [f"{scheduler_id}_{i}" for i in range(batch.array_size)]
    return [scheduler_id]


def _explained(record: SlurmRecord) -> JobStatus:
    status = to_status(record)
    words = []
    if record.reason and record.reason not in ("None", record.state):
        words.append(record.reason)
    node = None
    if record.node_list and record.node_list not in ("None assigned", "(null)"):
        node = record.node_list
        words.append(f"on {record.node_list}")
    if record.elapsed:
        words.append(f"after {record.elapsed}")
    if record.max_rss:
        words.append(f"MaxRSS {record.max_rss}" + (f" of ReqMem {record.req_mem}" if record.req_mem else ""))
    reason = status.reason or record.state
    if words:
        reason = f"{reason}: {' '.join(words)}"
    return status.with_details(reason=reason, node=node)
