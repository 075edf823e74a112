"""The `esap` executor: Snakemake jobs become core JobRequests, submitted in batches.

Status comes from the core's one poller per run (one scheduler query per site and cycle);
`check_active_jobs` only reads its snapshot.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import threading
import time
import uuid
from collections.abc import AsyncGenerator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_executor_plugins.executors.base import SubmittedJobInfo
from snakemake_interface_executor_plugins.executors.remote import RemoteExecutor
from snakemake_interface_executor_plugins.jobs import JobExecutorInterface

from snakemake_storage_plugin_esap import LOCAL_COPIES_ONLY

from . import bundles, transfer
from .basket import check_read
from .checkpoints import forwarding, snakemake_checkpoint
from .direct import DirectShell, direct_shell
from .resources import JobResources, job_resources, snakemake_retry_policy
from .settings import ExecutorSettings

if TYPE_CHECKING:
    from esap_executors.backends.base import Capabilities
    from esap_executors.job import JobSpec
    from esap_executors.runs import JobRecord, JobRequest, Run
    from esap_executors.sites import Catalogue, Site

# Longest wait between two reads of the snapshot when the poller reports no change.
SNAPSHOT_WAIT_CEILING_S = 2.0
BUNDLE_KEY_PREFIX = "bundle:"
# how long the end of a run waits for bundles whose jobs all reported (their runner is exiting)
BUNDLE_END_WAIT_S = 60.0
LOG_DIR = Path(".snakemake") / "esap_logs"


class Executor(RemoteExecutor):
    def __post_init__(self) -> None:
        from esap_executors.errors import EsapError
        from esap_executors.notify import Notifier
        from esap_executors.runs import Run
        from esap_executors.sites import Catalogue
        from esap_executors.stores import open_store

        settings = self.workflow.executor_settings
        self.esap_settings: ExecutorSettings = (
            settings if isinstance(settings, ExecutorSettings) else ExecutorSettings()
        )
        try:
            check_settings(self.esap_settings)
            config_settings = getattr(self.workflow, "config_settings", None)  # not in the executor interface
            check_read(self.esap_settings.inputs_from_basket, list(getattr(config_settings, "configfiles", [])))
            self.catalogue: Catalogue = _tuned_catalogue(
                Catalogue.load(self.esap_settings.sites), self.esap_settings
            )
            if self.esap_settings.site:
                self.catalogue.get(self.esap_settings.site)
            # One run per Snakemake invocation: Snakemake decides what reruns, not the core.
            self.run: Run = Run.open(
                self.esap_settings.run_id or f"snakemake:{os.getcwd()}:{uuid.uuid4()}",
                catalogue=self.catalogue,
                store=open_store(),
                front="snakemake",
                default_site=self.esap_settings.site,
            )
            notify, with_token = self.esap_settings.notify, self.esap_settings.notify_auth == "token"
            self._notifier = (Notifier.for_url(notify, with_token=with_token, field="--esap-notify")
                              if notify else None)
        except EsapError as exc:
            raise WorkflowError(str(exc)) from None
        self._changed = threading.Event()
        self.run.add_listener(self._on_change)
        self._python_override: str | None = None
        self._cancelled = False
        self._site_cpus: dict[str, int | None] = {}
        self._files_in: set[str] = set()  # every job's inputs and outputs, for the run's RO-Crate
        self._files_out: set[str] = set()
        self._sources: list[str] | None = None  # the workflow's source files (for transfer sites)

    # ---------------------------------------------------------------- submission
    def run_job(self, job: JobExecutorInterface) -> None:
        self.run_jobs([job])

    def run_jobs(self, jobs: list[JobExecutorInterface]) -> None:
        from esap_executors.errors import BadInput, EsapError

        if not jobs:
            return
        try:
            members = []
            for job in jobs:
                _check_storage_outputs(job)
                self.run_job_pre(job)
                members.append(self._member(job))
                self._files_in.update(os.path.abspath(str(f)) for f in job.input)
                self._files_out.update(os.path.abspath(str(f)) for f in job.output)
            groups = bundles.plan(members, self._slots, self.esap_settings.max_bundle)
            try:
                records = self.run.submit([self._request(group) for group in groups])
            except BadInput:
                if all(len(group) == 1 for group in groups):
                    raise
                # The site refused a bundle (e.g. its members' summed walltime): one job each.
                groups = [[member] for member in members]
                records = self.run.submit([self._request(group) for group in groups])
        except EsapError as exc:
            # Nothing was sent: the core validates the whole batch before submitting.
            for job in jobs:
                self.report_job_error(SubmittedJobInfo(job), msg=f"esap: {exc}")
            return
        for group, record in zip(groups, records, strict=True):
            for member in group:
                aux = {"esap_job": record.job_id, "site": record.site}
                if len(group) > 1:
                    aux.update(status=member.status_path, stdout=member.spec.stdout or "",
                               stderr=member.spec.stderr or "", bundle_size=str(len(group)))
                self.report_job_submission(
                    SubmittedJobInfo(member.job, external_jobid=record.native_id or record.job_id, aux=aux)
                )
        self._changed.set()

    def _request(self, group: list[bundles.Member]) -> JobRequest:
        from esap_executors.runs import JobRequest

        first = group[0]
        site_name = first.site.name if first.site else None
        if len(group) == 1:
            return JobRequest(key=first.key, spec=first.spec, site=site_name, name=first.name)
        spec = bundles.bundle_spec(
            group, python=_execute_python(first.site) or sys.executable, workdir=os.getcwd(),
            log_dir=Path(os.getcwd()) / LOG_DIR / "bundles",
        )
        return JobRequest(key=f"{BUNDLE_KEY_PREFIX}{first.key}+{len(group)}", spec=spec, site=site_name,
                          name=f"{first.name} (bundle of {len(group)})")

    def _slots(self, site: Site, cores: int) -> int | None:
        """How many jobs of `cores` cores the site runs at once, from what it reports (cached)."""
        if site.name not in self._site_cpus:
            from esap_executors.matchmaking import discovered_attributes

            # the catalogue's value wins over the backend's report, as in matchmaking
            total = site.attributes.get("GlueCEInfoTotalCPUs") or discovered_attributes(site).get("GlueCEInfoTotalCPUs")
            self._site_cpus[site.name] = int(total) if isinstance(total, int | float) and total > 0 else None
        total_cpus = self._site_cpus[site.name]
        return None if total_cpus is None else max(1, total_cpus // max(1, cores))

    def _member(self, job: JobExecutorInterface) -> bundles.Member:
        from esap_executors.job import JobSpec

        members = [member.resources for member in getattr(job, "jobs", ())] if job.is_group() else []
        wanted = job_resources(job.resources, job.threads, members)
        site = self._choose_site(wanted)
        log_dir = Path(os.getcwd()) / LOG_DIR / _safe(_job_name(job))
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{_safe(_wildcards_text(job)) or 'job'}.{job.jobid}.{job.attempt}"
        status_path = log_dir / f"{stem}.status"
        status_path.unlink(missing_ok=True)  # from an earlier invocation (job ids restart at 1)
        self._python_override = _execute_python(site)
        try:
            command = self.format_job_exec(job)
        finally:
            self._python_override = None
        if site is not None and site.execute:
            command = _without_submit_side_paths(command)
        env = dict(self.envvars())
        tmpdir = wanted.get("tmpdir")
        if tmpdir:
            env["TMPDIR"] = tmpdir
        files: dict[str, Any] = {}
        direct = None
        if site is not None and _transfers_files(site):
            # No shared filesystem: the job's files go with it and its outputs come back (transfer.py).
            stage_in, stage_out = transfer.files_of(job, self._workflow_sources(), os.getcwd())
            rule_image = None if job.is_group() else getattr(job, "container_img_url", None)
            image = transfer.job_image(site.execute.get("image"), rule_image,
                                       step_images=_capabilities(site).step_images)
            files = {"stage_in": stage_in, "stage_out": stage_out, "container": image}
            env[LOCAL_COPIES_ONLY] = "1"  # storage files: only the copies sent with the job
            in_rule_image = image is not None and bool(rule_image)
            script = transfer.job_command(command, os.getcwd(), in_rule_image=in_rule_image) + "\n"
        else:
            # The job's own directory (the site's, per job) holds what the backend writes for it;
            # Snakemake runs in the workflow directory on the shared filesystem.
            script = f"cd {shlex.quote(os.getcwd())} && {command}\n"
        checkpoint = snakemake_checkpoint(wanted.get("checkpoint"), _job_name(job), wanted.walltime_s,
                                          moves_files=bool(files))
        if checkpoint is not None:  # Snakemake runs the rule: the job's shell passes the signal on
            script = forwarding(os.getcwd(), command, checkpoint)
        elif not files:
            direct = self._direct(job)
            if direct is not None:
                script = direct.script(os.getcwd())
                env.update(direct.env)
        spec = JobSpec(
            script=script,
            **files,
            env=env,
            stdout=str(log_dir / f"{stem}.out"),
            stderr=str(log_dir / f"{stem}.err"),
            cores=wanted.cores,
            tasks=wanted.tasks,
            memory_mib=wanted.memory_mib,
            gpus=wanted.gpus,
            walltime_s=wanted.walltime_s,
            scratch_mib=wanted.scratch_mib,
            requirements=wanted.get("requirements"),
            rank=wanted.get("rank"),
            labels={"snakemake_rule": _job_name(job), "snakemake_jobid": str(job.jobid)},
            retry_policy=snakemake_retry_policy(wanted.get("retry"), _job_name(job)),
            checkpoint=checkpoint,
            **self._placement(site, wanted),
        )
        if self.esap_settings.right_size == "yes":
            spec = self._right_sized(spec, _job_name(job), site)
        # (a job whose files travel with it is never bundled: a bundle shares one directory)
        return bundles.Member(job=job, key=_job_key(job), name=_job_name(job), site=site, spec=spec,
                              snakemake_args=None if files or direct or checkpoint else bundles.snakemake_args(command),
                              status_path=str(status_path), direct=direct)

    def _direct(self, job: JobExecutorInterface) -> DirectShell | None:
        """The job's shell command to run without a Snakemake start, where that changes nothing."""
        if self.esap_settings.direct_shell != "yes":
            return None
        remote = getattr(self.workflow, "remote_execution_settings", None)
        if remote is None or getattr(remote, "precommand", None):
            return None  # a precommand prepares the remote Snakemake's environment: keep it
        return direct_shell(job)

    def _workflow_sources(self) -> list[str]:
        if self._sources is None:
            self._sources = transfer.workflow_sources(self.workflow)
        return self._sources

    def _right_sized(self, spec: JobSpec, rule: str, site: Site | None) -> JobSpec:
        from esap_executors.right_size import right_size

        site_name = site.name if site else (self.run.default_site or "local")
        spec, note = right_size(self.run.store, spec, rule, site_name)
        if note:
            self.logger.info(f"esap: {note}")
        return spec

    def _choose_site(self, wanted: JobResources) -> Site | None:
        """The site the command is built for: the rule's, matchmaking's, or the default."""
        name = wanted.get("site")
        if name:
            return self.catalogue.get(name)
        requirements = wanted.get("requirements") or self.esap_settings.requirements
        if requirements:
            from esap_executors.job import JobSpec
            from esap_executors.matchmaking import choose_site

            probe = JobSpec(
                argv=("true",), cores=wanted.cores, memory_mib=wanted.memory_mib,
                gpus=wanted.gpus, walltime_s=wanted.walltime_s,
                requirements=requirements, rank=wanted.get("rank"),
            )
            return choose_site(self.catalogue, probe)
        return self.catalogue.get(self.esap_settings.site or "local")

    def _placement(self, site: Site | None, wanted: JobResources) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key in ("account", "partition", "qos", "constraints", "accounting_group"):
            value = wanted.get(key)
            if value:
                values[key] = value
        if site is not None:
            from esap_executors.backends import capabilities_of

            # Snakemake's own --slurm-style settings, where the site's scheduler bills by them
            billed_by = capabilities_of(site).billing_fields
            for key, value in (("account", self.esap_settings.effective_account()),
                               ("partition", self.esap_settings.partition), ("qos", self.esap_settings.qos)):
                if key in billed_by:
                    values.setdefault(key, value)
        return {k: v for k, v in values.items() if v}

    def get_python_executable(self) -> str:
        return self._python_override or sys.executable

    # ---------------------------------------------------------------- status
    def _on_change(self, record: JobRecord, status: Any) -> None:
        self._changed.set()

    async def check_active_jobs(
        self, active_jobs: list[SubmittedJobInfo]
    ) -> AsyncGenerator[SubmittedJobInfo, None]:
        run = getattr(self, "run", None)  # the wait thread starts before __post_init__
        snapshot = run.snapshot() if run is not None and active_jobs else {}
        for job_info in active_jobs:
            aux = job_info.aux or {}
            record = snapshot.get(aux.get("esap_job", ""))
            if aux.get("status"):
                if self._bundle_member_ended(job_info, record):
                    continue
                yield job_info
                continue
            if record is not None and run is not None:
                record = run.latest(record.key) or record  # esap's retries are the same Snakemake job
            if record is None or run is None or not run.settled(record):
                yield job_info
                continue
            if record.state.value == "completed":
                self.report_job_success(job_info)
            else:
                self.report_job_error(
                    job_info, msg=_failure_message(record), aux_logs=_logs(record)
                )

    def _bundle_member_ended(self, job_info: SubmittedJobInfo, record: JobRecord | None) -> bool:
        """Report a bundled job once the bundle wrote its exit code (or ended without running it)."""
        aux = job_info.aux or {}
        code = bundles.read_status(aux["status"])
        logs = [path for path in (aux.get("stderr"), aux.get("stdout")) if path and os.path.exists(path)]
        if code == 0:
            self.report_job_success(job_info)
            return True
        if code is not None:
            where = f"{record.site} job {record.native_id}" if record and record.native_id else aux.get("site")
            self.report_job_error(job_info, aux_logs=logs, msg=(
                f"esap job {aux['esap_job']} ({where}, a bundle of {aux.get('bundle_size')} jobs) ran this "
                f"job: exit code {code}. Log: {aux.get('stderr')} (stdout {aux.get('stdout')}). "))
            return True
        if record is None or not record.state.is_final:
            return False
        self.report_job_error(job_info, aux_logs=logs + _logs(record), msg=(
            f"{_failure_message(record)}The bundle ended before this job ran. "))
        return True

    async def sleep(self) -> None:
        """Wake as soon as the poller reports a change (reading the snapshot is free)."""
        changed: threading.Event | None = getattr(self, "_changed", None)
        deadline = time.monotonic() + SNAPSHOT_WAIT_CEILING_S
        while (changed is None or not changed.is_set()) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if changed is not None:
            changed.clear()

    # ---------------------------------------------------------------- cancel / end
    def cancel_jobs(self, active_jobs: list[SubmittedJobInfo]) -> None:
        # Every scheduler job of the run, not only those Snakemake still tracks.
        if not self._cancelled:
            self._cancelled = True
            self.run.cancel()

    def shutdown(self) -> None:
        super().shutdown()
        self._let_bundles_end()
        self.run.close()
        run_id = self.run.run_id
        self.logger.info(f"esap run {run_id}: jobs with `esap status {run_id}`, "
                         f"what they used against their requests with `esap usage {run_id}`")
        self._remember_usage()
        if self.esap_settings.usage_report:
            self._write_usage_report(self.esap_settings.usage_report)
        self._record_run_metadata()
        if self.esap_settings.report or self._notifier:
            from esap_executors.report.at_end import end_of_run

            end_of_run(self.run.store, self.catalogue, run_id, html=self.esap_settings.report,
                       notifier=self._notifier)
            if self.esap_settings.report:
                self.logger.info(f"esap report: {self.esap_settings.report}")

    def _let_bundles_end(self) -> None:
        """A bundle's jobs are reported from their status files, so Snakemake may end while the
        bundle's scheduler job is still exiting: its end (completed, failed) goes into the run's
        records before they close, or `esap status` would show it running."""
        ending = [r.job_id for r in self.run.snapshot().values()
                  if r.key.startswith(BUNDLE_KEY_PREFIX) and not r.state.is_final]
        if ending:
            self.run.wait(ending, timeout=BUNDLE_END_WAIT_S)

    def _record_run_metadata(self) -> None:
        import snakemake

        workflow = {"path": os.path.abspath(str(self.workflow.main_snakefile)), "language": "snakemake"}
        self.run.store.update_run_metadata(self.run.run_id, {
            "workflow": workflow,
            "engine": {"name": "Snakemake (esap executor)", "version": snakemake.__version__},
            "inputs": [{"path": f} for f in sorted(self._files_in - self._files_out)],
            "outputs": [{"path": f} for f in sorted(self._files_out)],
        })

    def _remember_usage(self) -> None:
        """What the rules used, for the next run's --esap-right-size (one accounting query per site)."""
        from esap_executors.errors import EsapError
        from esap_executors.right_size import remember_usage

        try:
            remember_usage(self.run.store, self.catalogue, self.run.store.jobs_of_run(self.run.run_id))
        except EsapError as exc:
            self.logger.info(f"esap: usage not recorded for right-sizing: {exc}")

    def _write_usage_report(self, path: str) -> None:
        from esap_executors.errors import EsapError
        from esap_executors.usage import usage_of, write_csv

        try:
            rows = usage_of(self.run.store, self.catalogue, self.run.store.jobs_of_run(self.run.run_id),
                            settle_s=USAGE_SETTLE_S)
            with open(path, "w", newline="") as report:
                write_csv(rows, report)
        except (EsapError, OSError) as exc:
            self.logger.warning(f"esap usage report {path} not written: {exc}")
            return
        wasteful = [row.record.name for row in rows if row.wasteful]
        self.logger.info(f"esap usage report: {path} ({len(rows)} scheduler jobs)")
        if wasteful:
            self.logger.warning(f"{len(wasteful)} scheduler job(s) used less than half of the cores or "
                                f"memory they asked for: {', '.join(sorted(set(wasteful)))} (see {path})")


USAGE_SETTLE_S = 30.0  # how long the report waits for the accounting of the last jobs


def check_settings(settings: ExecutorSettings) -> None:
    """The plugin's settings (command line or profile) as the esap CLI checks its options."""
    import math

    from esap_executors.errors import BadInput
    from esap_executors.formats.expressions import parse_classad_expression

    for name in ("site", "sites", "account", "partition", "qos", "requirements"):
        value = getattr(settings, name, None)
        if isinstance(value, str) and not value.strip():
            raise BadInput("is empty: give a value or leave the setting out", field=f"--esap-{name}")
    for name in ("poll_interval", "max_poll_interval"):
        value = getattr(settings, name, None)
        if value is not None and (not math.isfinite(value) or not 0 < value <= 86400):
            raise BadInput(f"{value} is not a number of seconds between 0 and 86400",
                           field=f"--esap-{name.replace('_', '-')}")
    if settings.requirements:
        parse_classad_expression(settings.requirements, field="--esap-requirements")


def _tuned_catalogue(catalogue: Catalogue, settings: ExecutorSettings) -> Catalogue:
    """The catalogue with the plugin's poll settings applied to every site."""
    if settings.poll_interval is None and settings.max_poll_interval is None:
        return catalogue
    from esap_executors.sites import Catalogue

    sites = {}
    for name, site in catalogue.sites.items():
        start = settings.poll_interval or site.poll.start
        ceiling = settings.max_poll_interval or max(site.poll.ceiling, start)
        floor = min(site.poll.floor, start)
        given = site.poll.given | ({"start"} if settings.poll_interval else set())
        sites[name] = replace(site, poll=replace(site.poll, start=start, floor=floor,
                                                 ceiling=max(ceiling, start), given=given))
    return Catalogue(sites, catalogue.source)


def _check_storage_outputs(job: JobExecutorInterface) -> None:
    """Outputs going to storage by the `esap` plugin: a token that visibly may not write there stops
    the job before it is submitted (not after it ran)."""
    from esap_executors.staging.remote import check_writable

    for output in job.output:
        if getattr(output, "is_storage", False):
            storage = output.storage_object
            if type(storage).__module__.startswith("snakemake_storage_plugin_esap"):
                check_writable(str(storage.query))


def _transfers_files(site: Site) -> bool:
    from esap_executors.backends import capabilities_of

    return capabilities_of(site).transfers_files


def _capabilities(site: Site) -> Capabilities:
    from esap_executors.backends import capabilities_of

    return capabilities_of(site)


def _execute_python(site: Site | None) -> str | None:
    """The interpreter of the site's execute-side Snakemake (e.g. inside the pool's root)."""
    if site is None:
        return None
    snakemake = site.execute.get("snakemake")
    if snakemake:
        path = Path(snakemake)
        if path.name.startswith("snakemake"):  # .../bin/snakemake -> .../bin/python
            return str(path.with_name("python"))
        return str(path / "bin" / "python")  # an environment prefix
    return site.execute.get("python")


# Paths of the submitting Python environment that mean nothing in a site's own execute-side
# environment (another root or user): the remote Snakemake then uses its own defaults.
_SUBMIT_SIDE_OPTIONS = re.compile(
    r"\s--(?:runtime-source-cache-path|scheduler-solver-path)\s+(?:'[^']*'|\"[^\"]*\"|\S+)"
)


def _without_submit_side_paths(command: str) -> str:
    return _SUBMIT_SIDE_OPTIONS.sub("", command)


def _failure_message(record: JobRecord) -> str:
    where = f"{record.site} job {record.native_id}" if record.native_id else record.site
    details = []
    if record.cause and record.cause not in (record.reason or ""):
        details.append(record.cause)
    if record.reason and record.reason != "exit code":
        details.append(record.reason)
    if record.exit_code is not None:
        details.append(f"exit code {record.exit_code}")
    if record.signal:
        details.append(f"signal {record.signal}")
    if record.retry_note:
        details.append(f"attempt {record.attempt + 1}, {record.retry_note}")
    why = ", ".join(details) or record.state.value
    return (f"esap job {record.job_id} ({where}) {record.state.value}: {why}. "
            f"Log: {record.stderr} (stdout {record.stdout}). ")


def _logs(record: JobRecord) -> list[str]:
    return [path for path in (record.stderr, record.stdout) if path and os.path.exists(path)]


def _job_key(job: JobExecutorInterface) -> str:
    return f"{job.jobid}.{job.attempt}"


def _job_name(job: JobExecutorInterface) -> str:
    return str(job.name)


def _wildcards_text(job: JobExecutorInterface) -> str:
    if job.is_group():
        return ""
    wildcards = getattr(job, "wildcards", None)
    if not wildcards:
        return ""
    return "_".join(f"{k}={v}" for k, v in dict(wildcards).items())


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.=" else "_" for c in text)[:80]

