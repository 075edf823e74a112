"""HTCondor through the htcondor2 bindings: a batch is one schedd submission (one cluster,
many procs, where the jobs share a shape); states come from the run's job event log, with one
batched queue query plus one history query only when the log stays silent."""

from __future__ import annotations

import logging
import os
import stat
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import classad2
import htcondor2 as htcondor

from ...errors import BadInput
from ...sites import CONTAINER_RUNTIMES, Site
from ...staging import check_stage_in, stage_in
from ...states import JobState, JobStatus
from ..base import Backend, Capabilities, FoundJob, Submission, Usage
from . import description
from .connection import AUTH_METHODS, Connection, give_to, owner_account, run_as_owner
from .description import JOB_ATTRIBUTE, RUN_ATTRIBUTE, SubmitSettings
from .tracking import RunEventLog, Tracked, status_of_ad

log = logging.getLogger(__name__)

EVENT_LOG_NAME = "htcondor-events.log"
AD_PROJECTION = [
    "ClusterId", "ProcId", JOB_ATTRIBUTE, "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal",
    "HoldReason", "NumHolds", "RemoveReason", "EnteredCurrentStatus",
]
DEFAULT_LOG_SILENCE = 300.0


class HTCondorBackend(Backend):
    name = "htcondor"
    capabilities: ClassVar[Capabilities] = Capabilities(
        file_transfer=True,
        # the execute side may see the files in its own root, and jobs may belong to another user
        links_inputs=False,
        container_runtimes=frozenset(CONTAINER_RUNTIMES),
        billing_fields=frozenset({"accounting_group"}),
        job_arrays=True,
        usage_accounting=True,
        auth_methods=AUTH_METHODS,
    )
    option_types: ClassVar[Mapping[str, type | tuple[type, ...]]] = {
        "owner": str,  # when esap runs as root: the unprivileged user jobs are submitted for
        "collector": str,  # host[:port] of the pool's collector (default: HTCondor's config)
        "schedd": str,  # schedd name (default: the local one)
        "release_holds": int,  # times a held job is released before it counts as failed
        "log_silence": (int, float),  # seconds without events before one fallback query
        "containers": bool,  # execute nodes can run the site's container runtime
        "submit": dict,  # extra submit keys for every job (site policy, e.g. +ProjectName)
        "late_materialize": bool,  # the schedd makes a cluster's procs itself (default true)
    }

    @classmethod
    def capabilities_on(cls, site: Site) -> Capabilities:
        """Containers only where `options.containers` says the execute nodes run them; jobs run
        as `options.owner` when esap runs as root."""
        return cls.capabilities.for_site(site, runs_as=run_as_owner(site),
                                         containers=bool(site.options.get("containers", False)))

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.connection = Connection(site)
        self.action_count = 0  # schedd actions (submit, release, remove), for tests/benchmarks
        self._logs: dict[str, RunEventLog] = {}
        self.release_holds = int(site.options.get("release_holds", 0))
        self.log_silence = float(site.options.get("log_silence", DEFAULT_LOG_SILENCE))
        self.late = bool(site.options.get("late_materialize", True))
        self.owner = self.site_capabilities.runs_as

    # --- submission -------------------------------------------------------------------
    def validate(self, jobs: Sequence[Submission]) -> None:
        if os.geteuid() == 0 and not self.owner:
            raise BadInput(
                f"site {self.site.name}: HTCondor never runs jobs owned by root; running as root, "
                "set options.owner to the unprivileged user the jobs belong to",
                source=self.site.source, line=self.site.line, field=f"{self.site.name}.options.owner",
            )
        if self.owner:
            owner_account(self.owner)
            _check_reachable_by_others(self.site.work_root, self.site)
        settings = self._settings("validate")
        for job in jobs:
            if not self.site.shared_filesystem:
                check_stage_in(job.spec)  # a missing declared input: nothing is sent
            description.job_description(job, self.site, settings)

    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        if not jobs:
            return []
        run_ids = {job.run_id for job in jobs}
        if len(run_ids) != 1:
            raise BadInput("one HTCondor submission carries the jobs of one run", field="run_id")
        run_id = run_ids.pop()
        event_log = self._prepare_run_dir(run_id)
        settings = self._settings(event_log)
        descriptions = []
        jobs = [self._reachable_workdir(job) for job in jobs]
        for job in jobs:
            self._prepare_workdir(job)
            descriptions.append(description.job_description(job, self.site, settings))
        natives: list[str] = [""] * len(jobs)
        for cluster in description.clusters(descriptions, self.site.limits.max_array_size):
            result = self.connection.run("submit", partial(_submit_cluster, cluster=cluster, late=self.late),
                                         idempotent=False)
            self.action_count += 1
            first = result.first_proc()
            for offset, index in enumerate(cluster.indexes):
                natives[index] = f"{result.cluster()}.{first + offset}"
        return natives

    def _settings(self, event_log: str) -> SubmitSettings:
        extra = self.site.options.get("submit") or {}
        return SubmitSettings(
            event_log=event_log,
            transfer_files=not self.site.shared_filesystem,
            owner=self.owner,
            containers=bool(self.site.options.get("containers", False)),
            extra={str(k): str(v) for k, v in extra.items()},
        )

    def _run_dir(self, run_id: str) -> Path:
        return Path(self.site.work_root) / run_id

    def _prepare_run_dir(self, run_id: str) -> str:
        run_dir = self._run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        event_log = run_dir / EVENT_LOG_NAME
        event_log.touch(exist_ok=True)
        if self.owner:
            uid, gid = owner_account(self.owner)
            work_root = Path(self.site.work_root)
            if work_root.stat().st_uid == 0:
                give_to(work_root, uid, gid)  # the owner also submits there without esap as root
            give_to(run_dir, uid, gid)
            give_to(event_log, uid, gid)
        return str(event_log)

    def _reachable_workdir(self, job: Submission) -> Submission:
        """Root submits for the owner: a directory the owner cannot enter (e.g. under /root)
        would hold the job, so it runs in its own directory under the work root instead."""
        if not self.owner or not os.path.isdir(job.workdir):
            return job
        uid, gid = owner_account(self.owner)
        if owner_can_enter(Path(job.workdir), uid, gid):
            return job
        return replace(job, workdir=str(Path(job.stdout).parent))

    def _prepare_workdir(self, job: Submission) -> None:
        workdir = Path(job.workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        if not self.site.shared_filesystem:
            copies = description.staged_copies(job)
            if copies:
                from ...job import StageIn

                stage_in(job.spec.with_changes(stage_in=tuple(StageIn(s, d) for s, d in copies)), workdir)
        description.write_script(job)
        if self.owner:
            uid, gid = owner_account(self.owner)
            work_root = Path(self.site.work_root).resolve()
            for path in {workdir, Path(job.stdout).parent, Path(job.stderr).parent}:
                # only what esap created under the work root: never a user's own directory
                if path.resolve().is_relative_to(work_root):
                    give_to(path, uid, gid)

    # --- status -----------------------------------------------------------------------
    def _event_log(self, run_id: str) -> RunEventLog:
        reader = self._logs.get(run_id)
        if reader is None:
            reader = self._logs[run_id] = RunEventLog(str(self._run_dir(run_id) / EVENT_LOG_NAME))
        return reader

    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        events = self._event_log(run_id)
        events.read()
        live = [n for n in native_ids if not events.jobs.get(n, Tracked()).state.is_final]
        if live and events.silent_for() > self.log_silence:
            self._fallback(events, live, run_id=run_id, since=since)
        self._settle_holds(events, native_ids)
        return {n: events.jobs.get(n, Tracked()).status() for n in native_ids}

    def _fallback(self, events: RunEventLog, live: Sequence[str], *, run_id: str, since: float) -> None:
        """One queue query for the run, one history query for what left the queue."""
        events.last_news = time.monotonic()
        constraint = f"{RUN_ATTRIBUTE} == {classad2.quote(run_id)}"
        try:
            self.query_count += 1
            queue = self.connection.run("status query", lambda schedd: schedd.query(constraint, AD_PROJECTION))
            found = {_native_of(ad) for ad in queue}
            for ad in queue:
                events.apply_ad(_native_of(ad), ad)
            gone = [n for n in live if n not in found]
            if gone:
                clusters = sorted({n.split(".")[0] for n in gone})
                in_clusters = " || ".join(f"ClusterId == {c}" for c in clusters)
                self.query_count += 1
                history = self.connection.run("history query", lambda schedd: schedd.history(
                    f"{constraint} && ({in_clusters})", AD_PROJECTION, since=_since_expression(since)))
                left = {_native_of(ad) for ad in history}
                for ad in history:
                    events.apply_ad(_native_of(ad), ad)
                for native in gone:
                    if native not in left:
                        events.jobs.setdefault(native, Tracked()).mark_missing()
        except Exception as exc:  # schedd down (restarting): keep the states we know
            log.warning("site %s: fallback status query failed: %s", self.site.name, exc)

    def _settle_holds(self, events: RunEventLog, native_ids: Sequence[str]) -> None:
        """Release held jobs while the site allows it, else fail and remove them (batched)."""
        release: list[str] = []
        remove: list[str] = []
        for native in native_ids:
            job = events.jobs.get(native)
            if job is None or job.state is not JobState.HELD:
                continue
            if job.releases < self.release_holds:
                if job.release_sent_at_hold < job.holds:
                    job.release_sent_at_hold = job.holds
                    release.append(native)
            else:
                job.fail_held()
                if not job.removal_sent:
                    job.removal_sent = True
                    remove.append(native)
        for action, targets, reason in (
            (htcondor.JobAction.Release, release, "released by esap"),
            (htcondor.JobAction.Remove, remove, "held: failed by esap"),
        ):
            if not targets:
                continue
            try:
                self.action_count += 1
                self.connection.run("release/remove held jobs", partial(_act, action=action, targets=targets,
                                                                        reason=reason))
            except Exception as exc:
                log.warning("site %s: %s of held jobs failed: %s", self.site.name, action, exc)

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        """From the event logs already read: no schedd query."""
        details: dict[str, JobStatus] = {}
        for events in self._logs.values():
            for native in native_ids:
                job = events.jobs.get(native)
                if job is not None:
                    details[native] = job.status()
        return details

    def cancel(self, native_ids: Sequence[str]) -> None:
        if not native_ids:
            return
        self.action_count += 1
        self.connection.run("cancel", lambda schedd: schedd.act(
            htcondor.JobAction.Remove, list(native_ids), "cancelled by esap"))

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """From the schedd's history: one query for the finished jobs of the run."""
        if not native_ids:
            return {}
        clusters = sorted({n.split(".")[0] for n in native_ids})
        constraint = (f"{RUN_ATTRIBUTE} == {classad2.quote(run_id)} && ("
                      + " || ".join(f"ClusterId == {c}" for c in clusters) + ")")
        self.query_count += 1
        history = self.connection.run("usage query", lambda schedd: schedd.history(
            constraint, USAGE_PROJECTION, since=_since_expression(since)))
        wanted = set(native_ids)
        return {native: _usage_of(ad) for ad in history if (native := _native_of(ad)) in wanted}

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        constraint = f"{RUN_ATTRIBUTE} == {classad2.quote(run_id)}"
        ads: dict[str, Any] = {}
        self.query_count += 2
        history = self.connection.run("find the run's jobs", lambda schedd: schedd.history(
            constraint, AD_PROJECTION, since=_since_expression(since)))
        queue = self.connection.run("find the run's jobs", lambda schedd: schedd.query(constraint, AD_PROJECTION))
        for ad in [*history, *queue]:  # the queue is newer than the history
            ads[_native_of(ad)] = ad
        return [
            FoundJob(native_id=native, job_id=str(ad.get(JOB_ATTRIBUTE, "")), status=status_of_ad(ad))
            for native, ad in ads.items()
            if ad.get(JOB_ATTRIBUTE)
        ]

    def describe(self) -> dict[str, Any]:
        """GLUE attributes from the startd ads (one collector query)."""
        self.query_count += 1
        startds = self.connection.run("describe the pool", lambda _schedd: self.connection.collector().query(
            htcondor.AdType.Startd,
            projection=["Machine", "Cpus", "TotalCpus", "Memory", "TotalMemory", "OpSys",
                        "OpSysAndVer", "Arch", "CondorVersion", "SlotType", "HasContainer"],
        ))
        machines: dict[str, dict[str, Any]] = {}
        for ad in startds:
            machine = machines.setdefault(str(ad.get("Machine", "")), {"cpus": 0, "memory": 0})
            machine["cpus"] = max(machine["cpus"], int(ad.get("TotalCpus", ad.get("Cpus", 0)) or 0))
            machine["memory"] = max(machine["memory"], int(ad.get("TotalMemory", ad.get("Memory", 0)) or 0))
            machine["ad"] = ad
        values: dict[str, Any] = {"GlueCEInfoLRMSType": "Condor"}
        if machines:
            sample = next(iter(machines.values()))["ad"]
            version = str(sample.get("CondorVersion", "")).split()
            if len(version) > 1:
                values["GlueCEInfoLRMSVersion"] = version[1]
            values["GlueCEInfoTotalCPUs"] = sum(m["cpus"] for m in machines.values())
            values["GlueHostArchitectureSMPSize"] = max(m["cpus"] for m in machines.values())
            values["GlueHostMainMemoryRAMSize"] = max(m["memory"] for m in machines.values())
            values["GlueHostOperatingSystemName"] = str(sample.get("OpSysAndVer", sample.get("OpSys", "")))
            values["GlueHostArchitecturePlatformType"] = str(sample.get("Arch", ""))
        return values

    def close(self) -> None:
        self._logs.clear()
        self.connection.close()


def _act(schedd: Any, *, action: Any, targets: Sequence[str], reason: str) -> Any:
    return schedd.act(action, list(targets), reason)


def _submit_cluster(schedd: Any, *, cluster: description.Cluster, late: bool) -> Any:
    if len(cluster.indexes) == 1:
        return schedd.submit(htcondor.Submit(cluster.template), count=1)
    if late:
        # late materialization: the client sends the description and the item data once and
        # the schedd makes the procs (ids = item order); all of them at once, so that a
        # recovering executor's find() sees every proc
        template = {**cluster.template, "max_materialize": str(len(cluster.indexes))}
        try:
            return schedd.submit(htcondor.Submit(template), itemdata=iter(cluster.items))
        except htcondor.HTCondorException as exc:
            if "materializ" not in str(exc).lower():
                raise
            log.info("schedd refuses late materialization (%s): procs made by the client", exc)
    return schedd.submit(htcondor.Submit(cluster.template), itemdata=iter(cluster.items))


USAGE_PROJECTION = ["ClusterId", "ProcId", "RemoteWallClockTime", "RemoteUserCpu", "RemoteSysCpu",
                    "ResidentSetSize"]


def _usage_of(ad: Any) -> Usage:
    def number(key: str) -> float | None:
        value = ad.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    user, system, rss_kib = number("RemoteUserCpu"), number("RemoteSysCpu"), number("ResidentSetSize")
    return Usage(
        wall_s=number("RemoteWallClockTime"),
        cpu_s=None if user is None and system is None else (user or 0.0) + (system or 0.0),
        max_memory_mib=None if rss_kib is None else -(-int(rss_kib) // 1024),
    )


def _since_expression(since: float) -> str:
    """History is read newest first: stop at the first job that left the queue before the run."""
    return f"EnteredCurrentStatus < {int(since) - 60}"


def _native_of(ad: Mapping[str, Any]) -> str:
    return f"{ad['ClusterId']}.{ad['ProcId']}"


def _check_reachable_by_others(work_root: str, site: Site) -> None:
    """Root submits for another user: that user must reach the work root (/root is 0700)."""
    path = Path(work_root).resolve()
    for parent in [path, *path.parents]:
        if not parent.exists():
            continue
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise BadInput(
                f"work_root {work_root}: {parent} is not reachable by the job owner "
                f"{site.options.get('owner')}; use a work_root under /tmp or /home",
                source=site.source, line=site.line, field=f"{site.name}.work_root",
            )


def owner_can_enter(path: Path, uid: int, gid: int) -> bool:
    """Whether a user may search every directory down to `path` and list it (permission bits)."""
    chain = [path.resolve(), *path.resolve().parents]
    for position, directory in enumerate(chain):
        info = directory.stat()
        needed = 0o5 if position == 0 else 0o1  # r-x on the directory itself, x on its parents
        if info.st_uid == uid:
            bits = (info.st_mode >> 6) & 0o7
        elif info.st_gid == gid:
            bits = (info.st_mode >> 3) & 0o7
        else:
            bits = info.st_mode & 0o7
        if bits & needed != needed:
            return False
    return True
