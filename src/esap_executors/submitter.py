"""The Submitter: how a run's jobs reach their sites.

prepare (site choice, validation, limits, containers, stage-in check) -> authorize -> record
in the store -> send (one backend submission per site) -> hand to the Tracker. After a crash,
`recover` confirms the jobs recorded but not confirmed and resends those never sent. What
happens to a job once it is sent is the Tracker's business.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import overload

from .backends import Submission, capabilities_of
from .containers import check_container
from .errors import BadInput, EsapError
from .faultpoints import reached
from .job import JobSpec
from .retry_plan import RetryRefused, next_spec
from .site_backends import SiteBackends
from .sites import Catalogue, Site
from .staging import check_stage_in, stage_in
from .states import JobState
from .store import JobRecord, Store, work_root_of
from .throttle import Dispatcher, SubmitLimits
from .tracker import Tracker

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRequest:
    key: str  # stable within the run: the same key on a rerun reattaches
    spec: JobSpec
    site: str | None = None  # None: matchmaking on the spec's requirements, else the default
    name: str = ""
    retry_note: str | None = None  # a retry: what changed in its request, and why


def run_id_for(key: str) -> str:
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:11]


def reattaches(previous: JobRecord) -> bool:
    """A key submitted again joins its latest attempt unless that one failed or was cancelled."""
    return previous.state not in (JobState.FAILED, JobState.CANCELLED)


def check_limits(site: Site, spec: JobSpec) -> None:
    limits = site.limits
    problems = []
    if limits.max_cores is not None and spec.cores > limits.max_cores:
        problems.append(("cores", f"{spec.cores} cores exceed the limit of {limits.max_cores}"))
    if limits.max_gpus is not None and spec.gpus > limits.max_gpus:
        problems.append(("gpus", f"{spec.gpus} GPUs exceed the limit of {limits.max_gpus}"))
    if limits.max_memory_mib is not None and (spec.memory_mib or 0) > limits.max_memory_mib:
        problems.append(("memory", f"{spec.memory_mib} MiB exceed the limit of {limits.max_memory_mib} MiB"))
    if limits.max_walltime_s is not None and (spec.walltime_s or 0) > limits.max_walltime_s:
        problems.append(("walltime", f"{spec.walltime_s} s exceed the limit of {limits.max_walltime_s} s"))
    if problems:
        field, message = problems[0]
        raise BadInput(f"{message} on site {site.name}", field=field)


class Submitter:
    def __init__(self, run_id: str, *, catalogue: Catalogue, store: Store, backends: SiteBackends,
                 tracker: Tracker, since: float, default_site: str | None = None) -> None:
        self.run_id = run_id
        self.catalogue = catalogue
        self.store = store
        self.backends = backends
        self.tracker = tracker
        self.since = since
        self.default_site = default_site
        self._limits: dict[str, SubmitLimits] = {}
        self._waiting: Dispatcher | None = None  # jobs held back by their site's submission limits

    def choose_site(self, request: JobRequest) -> Site:
        if request.site:
            return self.catalogue.get(request.site)
        if request.spec.requirements:
            from .matchmaking import choose_site

            return choose_site(self.catalogue, request.spec)
        return self.catalogue.get(self.default_site or "local")

    def prepare(self, requests: Sequence[JobRequest]) -> tuple[list[JobRecord], list[JobRecord]]:
        """Validate every request and build its record; nothing is recorded or sent.

        Returns (new records to send, existing records reattached).
        """
        # One entry per new job in parallel lists of shared objects: a big run's requests
        # mostly share a site and a spec, so preparing costs a few references per job.
        fresh: list[JobRequest] = []
        sites: list[Site] = []
        specs: list[JobSpec] = []
        attempts: list[int] = []
        existing: list[JobRecord] = []
        seen: set[str] = set()
        prepared: dict[tuple[int, str], JobSpec] = {}
        for request in requests:
            if request.key in seen:
                raise BadInput(f"job key {request.key!r} appears twice in one submission", field="key")
            seen.add(request.key)
            previous = self.tracker.latest(self.run_id, request.key)
            if previous is not None and reattaches(previous):
                existing.append(previous)
                continue
            site = self.choose_site(request)
            spec = prepared.get((id(request.spec), site.name))
            if spec is None:  # requests sharing a spec share the prepared one (memory of big runs)
                spec = prepared[(id(request.spec), site.name)] = _with_site_defaults(request.spec, site).validate()
                check_limits(site, spec)
                if spec.interactive and not capabilities_of(site).interactive:
                    raise BadInput(f"site {site.name} runs no interactive jobs", field="interactive")
                check_container(site, spec)
                check_stage_in(spec)
            fresh.append(request)
            sites.append(site)
            specs.append(spec)
            attempts.append(0 if previous is None else previous.attempt + 1)
        del seen, prepared
        specs = self._authorize(sites, specs)
        job_ids = self.store.new_job_ids(self.run_id, len(fresh)) if fresh else []
        now = time.time()  # one float shared by the records of a submission
        work_roots: dict[str, str] = {}
        records: list[JobRecord] = []
        for request, site, spec, attempt, job_id in zip(fresh, sites, specs, attempts, job_ids, strict=True):
            work_root = work_roots.get(site.name)
            if work_root is None:
                work_root = work_roots[site.name] = work_root_of(site.work_root)
            records.append(
                JobRecord(
                    job_id=job_id,
                    run_id=self.run_id,
                    key=request.key,
                    name=request.name or request.key,
                    site=site.name,
                    native_id=None,
                    state=JobState.QUEUED,
                    spec=spec,
                    location=work_root,  # paths derived from it (store.derived_paths)
                    attempt=attempt,
                    retry_note=request.retry_note,
                    created=now,
                    updated=now,
                )
            )
        for site_name, group in by_site(records).items():
            self.backends.get(site_name).validate(Submissions(group))
        return records, existing

    def submit(self, requests: Sequence[JobRequest], *, unattended: bool = False) -> list[JobRecord]:
        """Validate all, record all, then send: one backend submission per site.

        `unattended` (retries, which no caller waits on): jobs recorded but not sent end failed,
        with the reason, instead of raising."""
        records, existing = self.prepare(requests)
        reached("before-record")
        self.store.add_jobs(records)
        self.tracker.adopt(records)
        reached("after-record")
        self._send(records, unattended=unattended)
        del records  # the Tracker holds them now, with their scheduler ids
        for record in existing:
            if not record.state.is_final:
                self.tracker.follow(record.site)
        latest = (self.tracker.latest(self.run_id, request.key) for request in requests)
        return [record for record in latest if record is not None]

    def resubmit(self, failed: Sequence[JobRecord]) -> None:
        """The next attempt of failed jobs (the Tracker decides which), each a new scheduler job
        whose request the retry policy changed for its cause; one that would exceed a limit of
        the policy or the site is refused, with the reason kept on the failed job."""
        requests = []
        for record in failed:
            try:
                spec, note = next_spec(record, self.catalogue.get(record.site).limits)
            except RetryRefused as exc:
                note = f"not retried: {exc}"
                log.warning("%s %s", record.job_id, note)
                self.tracker.note_retry(record.job_id, note)
                continue
            log.info("%s: retrying %s", record.job_id, note)
            requests.append(JobRequest(key=record.key, spec=spec, site=record.site, name=record.name,
                                       retry_note=note))
        if not requests:
            return
        try:
            self.submit(requests, unattended=True)
        except EsapError as exc:  # e.g. the site cannot express the changed request
            note = f"not retried: {exc}"
            log.warning("%d failed job(s) %s", len(requests), note)
            tried = {request.key for request in requests}
            for record in failed:
                if record.key in tried:
                    self.tracker.note_retry(record.job_id, note)

    def _send(self, records: list[JobRecord], *, unattended: bool = False) -> None:
        """One backend submission per site; a site with submission limits gets what they allow
        now, the rest as they allow (the dispatcher's thread). `unattended`: see submit."""
        for site_name, group in by_site(records).items():
            try:
                limits = self._submit_limits(site_name)
            except Exception as exc:
                if not unattended:
                    raise
                self._fail_unsent(site_name, group, exc)
                continue
            if limits.any:
                self._dispatcher().send(site_name, limits, group)
            elif unattended:
                self._send_waiting(site_name, group)
            else:
                self._send_now(site_name, group)

    def _send_now(self, site_name: str, group: Sequence[JobRecord]) -> None:
        """Then the Tracker holds the records with their scheduler ids (in a list, they replace
        the records sent: a one-site submission never keeps two copies)."""
        backend = self.backends.get(site_name)
        core_copies = not backend.site_capabilities.transfers_files
        for record in group:
            paths = record.paths
            directories = {os.path.dirname(paths.stdout), os.path.dirname(paths.stderr)}
            if core_copies:
                directories.add(paths.workdir)
            for directory in directories:
                if directory:  # "" is the current directory (a relative work root)
                    os.makedirs(directory, exist_ok=True)
            if core_copies and record.spec.stage_in:
                stage_in(record.spec, paths.workdir)
        native_ids = backend.submit(Submissions(group))
        reached("after-send")
        sent = group if isinstance(group, list) else list(group)
        for index, native in enumerate(native_ids):
            sent[index] = replace(sent[index], native_id=native)
        self.tracker.confirm_sent(sent)
        self.tracker.follow(site_name)

    def _send_waiting(self, site_name: str, group: Sequence[JobRecord]) -> None:
        """Jobs that waited for the site's limits, or retries: a failure ends them (no caller would see
        it); those cancelled meanwhile (`esap cancel` marks them in the store) are not sent."""
        stored = self.store.jobs_by_ids([r.job_id for r in group])
        ended = [r for r in stored if r.state.is_final]
        if ended:  # readers hear it once (a cancel in this process told them already)
            self.tracker.ended_elsewhere([r for r in ended if not self.tracker.get(r.job_id).state.is_final])
            gone = {r.job_id for r in ended}
            group = [r for r in group if r.job_id not in gone]
            if not group:
                return
        try:
            self._send_now(site_name, group)
        except Exception as exc:
            self._fail_unsent(site_name, group, exc)

    def _fail_unsent(self, site_name: str, group: Sequence[JobRecord], exc: Exception) -> None:
        log.error("site %s: %d recorded job(s) could not be sent: %s", site_name, len(group), exc)
        self.tracker.fail_unsent(group, f"not submitted: {exc}")

    def _submit_limits(self, site_name: str) -> SubmitLimits:
        limits = self._limits.get(site_name)
        if limits is None:
            site = self.catalogue.get(site_name).limits
            limits = SubmitLimits(site.max_submit_per_minute, site.max_queued).tighter(
                SubmitLimits(max_queued=self.backends.get(site_name).scheduler_max_queued()))
            self._limits[site_name] = limits
        return limits

    def _dispatcher(self) -> Dispatcher:
        if self._waiting is None:
            self._waiting = Dispatcher(self._send_waiting, self.tracker.live_count)
        return self._waiting

    def waiting(self) -> int:
        """Jobs recorded and waiting for their site's limits."""
        return 0 if self._waiting is None else self._waiting.waiting()

    def close(self) -> None:
        if self._waiting is not None:
            self._waiting.close()

    def recover(self) -> None:
        """After a crash: find jobs recorded but not confirmed, resend those never sent."""
        by_site: dict[str, list[JobRecord]] = defaultdict(list)
        for record in self.store.unsent(self.run_id):
            by_site[record.site].append(record)
        for site_name, group in by_site.items():
            found = {f.job_id: f for f in self.backends.get(site_name).find(self.run_id, since=self.since)}
            self.tracker.confirm_sent([replace(r, native_id=found[r.job_id].native_id)
                                       for r in group if r.job_id in found])
            lost = [r for r in group if r.job_id not in found]
            if lost:
                log.info("resending %d job(s) recorded but never sent", len(lost))
                self._send(lost)
        self.tracker.follow_live()

    def _authorize(self, sites: Sequence[Site], specs: list[JobSpec]) -> list[JobSpec]:
        """The specs as each site's policy admits them; each distinct spec is authorized once."""
        if all(site.policy is None for site in {site.name: site for site in sites}.values()):
            return specs
        from .auth.policy import authorize

        by_site_name: dict[str, tuple[Site, dict[int, JobSpec]]] = {}
        for site, spec in zip(sites, specs, strict=True):
            if site.policy is not None:
                by_site_name.setdefault(site.name, (site, {}))[1].setdefault(id(spec), spec)
        admitted: dict[tuple[str, int], JobSpec] = {}
        for site_name, (site, distinct) in by_site_name.items():
            allowed = authorize(site, list(distinct.values()), run_id=self.run_id, store=self.store)
            for key, spec in zip(distinct, allowed, strict=True):
                admitted[(site_name, key)] = spec
        return [admitted.get((site.name, id(spec)), spec) for site, spec in zip(sites, specs, strict=True)]


class Submissions(Sequence[Submission]):
    """Records as the backends see them, each `Submission` made when it is read: a submission
    of 100,000 jobs never holds 100,000 of them."""

    def __init__(self, records: Sequence[JobRecord]) -> None:
        self._records = records

    def __len__(self) -> int:
        return len(self._records)

    @overload
    def __getitem__(self, index: int) -> Submission: ...

    @overload
    def __getitem__(self, index: slice) -> Submissions: ...

    def __getitem__(self, index: int | slice) -> Submission | Submissions:
        if isinstance(index, slice):
            return Submissions(self._records[index])
        return submission(self._records[index])

    def __iter__(self) -> Iterator[Submission]:
        return (submission(record) for record in self._records)


def by_site(records: list[JobRecord]) -> dict[str, list[JobRecord]]:
    """Records grouped by site, in order; all on one site: the list itself, not a copy."""
    if not records or all(record.site == records[0].site for record in records):
        return {records[0].site: records} if records else {}
    groups: dict[str, list[JobRecord]] = defaultdict(list)
    for record in records:
        groups[record.site].append(record)
    return groups


def submission(record: JobRecord) -> Submission:
    paths = record.paths
    return Submission(
        job_id=record.job_id,
        run_id=record.run_id,
        name=record.name,
        spec=record.spec,
        workdir=paths.workdir,
        stdout=paths.stdout,
        stderr=paths.stderr,
    )


def _with_site_defaults(spec: JobSpec, site: Site) -> JobSpec:
    changes: dict[str, object] = {}
    for name in ("account", "partition", "qos", "accounting_group"):
        if getattr(spec, name) is None and site.defaults.get(name):
            changes[name] = site.defaults[name]
    labels = dict(spec.labels)
    labels.setdefault("site", site.name)
    changes["labels"] = labels
    if site.retry is not None:
        changes["retry_policy"] = site.retry if spec.retry_policy is None else spec.retry_policy.under(site.retry)
    return spec.with_changes(**changes)
