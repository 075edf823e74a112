"""Runs: one invocation of a front. Its id is carried by every scheduler job, so a rerun
with the same key reattaches to live jobs instead of resubmitting them."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .backends import Backend, Submission, backend_class
from .containers import check_container
from .errors import BadInput
from .job import JobSpec
from .poller import PollInterval, StatusPoller
from .sites import Catalogue, Site
from .staging import check_stage_in, stage_in, stage_out
from .states import JobState, JobStatus
from .store import JobRecord, Store

log = logging.getLogger(__name__)

Listener = Callable[[JobRecord, JobStatus], None]


@dataclass(frozen=True)
class JobRequest:
    key: str  # stable within the run: the same key on a rerun reattaches
    spec: JobSpec
    site: str | None = None  # None: matchmaking on the spec's requirements, else the default
    name: str = ""


def run_id_for(key: str) -> str:
    return "r" + hashlib.sha256(key.encode()).hexdigest()[:11]


def job_id_for(run_id: str, key: str, attempt: int) -> str:
    token = key if attempt == 0 else f"{key}#{attempt}"
    return f"{run_id}.{hashlib.sha256(token.encode()).hexdigest()[:8]}"


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


class Run:
    def __init__(
        self,
        key: str,
        *,
        catalogue: Catalogue | None = None,
        store: Store | None = None,
        front: str = "cli",
        default_site: str | None = None,
    ) -> None:
        self.key = key
        self.run_id = run_id_for(key)
        self.catalogue = catalogue or Catalogue.load()
        self.store = store or Store()
        self.front = front
        self.default_site = default_site
        if default_site is not None:
            self.catalogue.get(default_site)
        self.store.ensure_run(self.run_id, key, front)
        self.since = self.store.run_created(self.run_id) or time.time()
        self._lock = threading.RLock()
        self._finished = threading.Condition(self._lock)
        self._records: dict[str, JobRecord] = {r.job_id: r for r in self.store.jobs_of_run(self.run_id)}
        self._latest_by_key: dict[str, str] = {}
        for record in sorted(self._records.values(), key=lambda r: r.attempt):
            self._latest_by_key[record.key] = record.job_id
        self._backends: dict[str, Backend] = {}
        self._listeners: list[Listener] = []
        self._poller = StatusPoller(self._poll_site, self._interval_for)
        self._retrying: set[str] = set()  # failed attempts whose next attempt is being submitted

    @classmethod
    def open(
        cls,
        key: str,
        *,
        catalogue: Catalogue | None = None,
        store: Store | None = None,
        front: str = "cli",
        default_site: str | None = None,
    ) -> Run:
        run = cls(key, catalogue=catalogue, store=store, front=front, default_site=default_site)
        run._recover()
        return run

    # --- backends -------------------------------------------------------------------
    def backend(self, site_name: str) -> Backend:
        with self._lock:
            backend = self._backends.get(site_name)
            if backend is None:
                site = self.catalogue.get(site_name)
                backend = self._backends[site_name] = backend_class(site.backend)(site)
            return backend

    def _interval_for(self, site_name: str) -> PollInterval:
        return PollInterval.from_settings(self.catalogue.get(site_name).poll)

    # --- submission -----------------------------------------------------------------
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
        fresh: list[tuple[Site, JobRequest, JobSpec, int]] = []
        existing: list[JobRecord] = []
        seen: set[str] = set()
        for request in requests:
            if request.key in seen:
                raise BadInput(f"job key {request.key!r} appears twice in one submission", field="key")
            seen.add(request.key)
            previous = self.latest(request.key)
            if previous is not None and previous.state not in (JobState.FAILED, JobState.CANCELLED):
                existing.append(previous)
                continue
            attempt = 0 if previous is None else previous.attempt + 1
            site = self.choose_site(request)
            spec = _with_site_defaults(request.spec, site).validate()
            check_limits(site, spec)
            check_container(site, spec)
            check_stage_in(spec)
            fresh.append((site, request, spec, attempt))
        by_site: dict[str, list[int]] = defaultdict(list)
        for index, (site, _, _, _) in enumerate(fresh):
            by_site[site.name].append(index)
        authorized = _authorize_all(self, fresh, by_site)
        records: list[JobRecord] = []
        for (site, request, _, attempt), spec in zip(fresh, authorized, strict=True):
            job_id = job_id_for(self.run_id, request.key, attempt)
            # The job's own directory under the site's work root always holds its default std
            # streams; it is also the working directory unless the job names one (like sbatch,
            # the CLI runs a job where it was submitted from).
            private = str(Path(site.work_root) / self.run_id / job_id.split(".")[1])
            workdir = spec.cwd or private
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
                    workdir=workdir,
                    stdout=_stream_path(workdir, spec.stdout, private, "esap.out"),
                    stderr=_stream_path(workdir, spec.stderr, private, "esap.err"),
                    attempt=attempt,
                )
            )
        for site_name, indexes in by_site.items():
            self.backend(site_name).validate([_submission(records[i]) for i in indexes])
        return records, existing

    def submit(self, requests: Sequence[JobRequest]) -> list[JobRecord]:
        """Validate all, record all, then send: one backend submission per site."""
        records, existing = self.prepare(requests)
        self.store.add_jobs(records)
        with self._lock:
            for record in records:
                self._records[record.job_id] = record
                self._latest_by_key[record.key] = record.job_id
        self._send(records)
        for record in existing:
            if not record.state.is_final:
                self._poller.track(record.site)
        by_key = {r.key: r for r in [*records, *existing]}
        return [by_key[request.key] for request in requests]

    def _send(self, records: Sequence[JobRecord]) -> None:
        by_site: dict[str, list[JobRecord]] = defaultdict(list)
        for record in records:
            by_site[record.site].append(record)
        for site_name, group in by_site.items():
            backend = self.backend(site_name)
            for record in group:
                Path(record.stdout).parent.mkdir(parents=True, exist_ok=True)
                Path(record.stderr).parent.mkdir(parents=True, exist_ok=True)
                if not backend.site_capabilities.transfers_files:
                    Path(record.workdir).mkdir(parents=True, exist_ok=True)
                    stage_in(record.spec, record.workdir)
            native_ids = backend.submit([_submission(r) for r in group])
            self.store.set_native_ids((r.job_id, n) for r, n in zip(group, native_ids, strict=True))
            with self._lock:
                for record, native in zip(group, native_ids, strict=True):
                    record.native_id = native
            self._poller.track(site_name)

    def _recover(self) -> None:
        """After a crash: find jobs recorded but not confirmed, resend those never sent."""
        unsent = self.store.unsent(self.run_id)
        by_site: dict[str, list[JobRecord]] = defaultdict(list)
        for record in unsent:
            by_site[record.site].append(record)
        for site_name, group in by_site.items():
            found = {f.job_id: f for f in self.backend(site_name).find(self.run_id, since=self.since)}
            confirmed = [(r.job_id, found[r.job_id].native_id) for r in group if r.job_id in found]
            self.store.set_native_ids(confirmed)
            with self._lock:
                for job_id, native in confirmed:
                    self._records[job_id].native_id = native
            lost = [r for r in group if r.job_id not in found]
            if lost:
                log.info("resending %d job(s) recorded but never sent", len(lost))
                self._send(lost)
        for record in list(self._records.values()):
            if not record.state.is_final and record.native_id:
                self._poller.track(record.site)

    # --- status ---------------------------------------------------------------------
    def latest(self, key: str) -> JobRecord | None:
        with self._lock:
            job_id = self._latest_by_key.get(key)
            return None if job_id is None else self._records[job_id]

    def snapshot(self) -> dict[str, JobRecord]:
        with self._lock:
            return dict(self._records)

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    def _poll_site(self, site_name: str) -> tuple[bool, bool]:
        with self._lock:
            live = [
                r for r in self._records.values()
                if r.site == site_name and not r.state.is_final and r.native_id
            ]
        if not live:
            return False, False
        backend = self.backend(site_name)
        statuses = backend.poll([r.native_id for r in live if r.native_id], run_id=self.run_id, since=self.since)
        changes: list[tuple[JobRecord, JobStatus]] = []
        for record in live:
            status = statuses.get(record.native_id or "")
            if status is not None and status.state != record.state:
                changes.append((record, status))
        if not changes:
            return False, True
        failed = [r.native_id for r, s in changes if s.state is JobState.FAILED and r.native_id]
        details = backend.explain(failed) if failed else {}
        applied: list[tuple[JobRecord, JobStatus]] = []
        for record, status in changes:
            detail = details.get(record.native_id or "")
            if detail is not None:
                status = status.with_details(
                    exit_code=status.exit_code if status.exit_code is not None else detail.exit_code,
                    signal=status.signal or detail.signal,
                    reason=status.reason or detail.reason,
                )
            if status.state is JobState.COMPLETED and not _exit_ok(record.spec, status):
                status = status.with_details(state=JobState.FAILED, reason=status.reason or "exit code")
            applied.append((record, status))
        self._finish_outputs(backend, applied)
        changed_ids = set(self.store.update_states((r.job_id, s) for r, s in applied))
        retry: list[JobRecord] = []
        # A job missing from changed_ids was already recorded by another process (e.g. `esap
        # status` refreshing the store): this run still has to see the change and tell its listeners.
        with self._finished:
            for record, status in applied:
                record.state = status.state
                record.exit_code = status.exit_code if status.exit_code is not None else record.exit_code
                record.signal = status.signal or record.signal
                record.reason = status.reason or record.reason
                record.updated = status.time
                if (status.state is JobState.FAILED and record.attempt < record.spec.retries
                        and record.job_id in changed_ids):
                    retry.append(record)
                    self._retrying.add(record.job_id)
            self._finished.notify_all()
        for record, status in applied:
            self._notify(record, status)
        if retry:
            self._retry(retry)
        still_live = any(not r.state.is_final for r in live) or bool(retry)
        return True, still_live

    def _finish_outputs(self, backend: Backend, applied: list[tuple[JobRecord, JobStatus]]) -> None:
        if backend.site_capabilities.transfers_files:
            return
        for record, status in applied:
            if status.state.is_final and record.spec.stage_out:
                try:
                    missing = stage_out(record.spec, record.workdir)
                except Exception as exc:  # an unreachable destination must not kill the poller
                    missing = [f"{o.source} ({exc})" for o in record.spec.stage_out]
                if missing:
                    record.missing_outputs = tuple(missing)
                    self.store.set_missing_outputs(record.job_id, missing)

    def _retry(self, failed: Sequence[JobRecord]) -> None:
        requests = [JobRequest(key=r.key, spec=r.spec, site=r.site, name=r.name) for r in failed]
        try:
            self.submit(requests)
        except Exception:
            log.exception("resubmitting %d failed job(s) failed", len(requests))
        finally:
            with self._finished:
                self._retrying.difference_update(r.job_id for r in failed)
                self._finished.notify_all()

    def _settled(self, record: JobRecord) -> bool:
        """Final, and not a failed attempt whose retry is being submitted."""
        return record.state.is_final and record.job_id not in self._retrying

    def _notify(self, record: JobRecord, status: JobStatus) -> None:
        for callback in list(self._listeners):
            try:
                callback(record, status)
            except Exception:
                log.exception("a run listener failed")

    def wait(self, job_ids: Iterable[str] | None = None, timeout: float | None = None) -> dict[str, JobRecord]:
        """Block until the jobs (by default all of the run) are final; follows retries."""
        with self._lock:
            keys = {self._records[j].key for j in job_ids} if job_ids is not None else set(self._latest_by_key)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while True:
                latest = {k: self._records[self._latest_by_key[k]] for k in keys}
                if all(self._settled(r) for r in latest.values()):
                    return {r.job_id: r for r in latest.values()}
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return {r.job_id: r for r in latest.values()}
                self._finished.wait(timeout=min(remaining or 1.0, 1.0))

    def cancel(self, job_ids: Iterable[str] | None = None) -> None:
        with self._lock:
            targets = [self._records[j] for j in job_ids] if job_ids is not None else list(self._records.values())
        by_site: dict[str, list[str]] = defaultdict(list)
        for record in targets:
            if not record.state.is_final and record.native_id:
                by_site[record.site].append(record.native_id)
        for site_name, natives in by_site.items():
            self.backend(site_name).cancel(natives)
            self._poller.track(site_name)

    def close(self) -> None:
        self._poller.stop()
        for backend in self._backends.values():
            backend.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cancel_records(catalogue: Catalogue, records: Sequence[JobRecord]) -> int:
    """Cancel the live jobs among `records`, one backend call per site; how many were asked."""
    by_site: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if not record.state.is_final and record.native_id:
            by_site[record.site].append(record.native_id)
    for site_name, native_ids in by_site.items():
        site = catalogue.get(site_name)
        backend = backend_class(site.backend)(site)
        try:
            backend.cancel(native_ids)
        finally:
            backend.close()
    return sum(len(ids) for ids in by_site.values())


def refresh(store: Store, catalogue: Catalogue, records: Sequence[JobRecord]) -> list[JobRecord]:
    """Bring records up to date with one backend query per site (for `esap status`)."""
    by_run_site: dict[tuple[str, str], list[JobRecord]] = defaultdict(list)
    for record in records:
        if not record.state.is_final and record.native_id:
            by_run_site[(record.run_id, record.site)].append(record)
    for (run_id, site_name), group in by_run_site.items():
        if site_name not in catalogue.sites:
            continue
        site = catalogue.get(site_name)
        backend = backend_class(site.backend)(site)
        try:
            since = store.run_created(run_id) or time.time()
            statuses = backend.poll([r.native_id for r in group if r.native_id], run_id=run_id, since=since)
            changes = []
            for record in group:
                status = statuses.get(record.native_id or "")
                if status is None or status.state == record.state:
                    continue
                if status.state is JobState.COMPLETED and not _exit_ok(record.spec, status):
                    status = status.with_details(state=JobState.FAILED, reason=status.reason or "exit code")
                if status.state.is_final and record.spec.stage_out and not backend.site_capabilities.transfers_files:
                    missing = stage_out(record.spec, record.workdir)
                    if missing:
                        store.set_missing_outputs(record.job_id, missing)
                changes.append((record.job_id, status))
            store.update_states(changes)
        finally:
            backend.close()
    return store.jobs_by_ids([r.job_id for r in records])


def _exit_ok(spec: JobSpec, status: JobStatus) -> bool:
    return status.exit_code is None or status.exit_code in spec.success_exit_codes


def _stream_path(workdir: str, given: str | None, private: str, default: str) -> str:
    if not given:
        return str(Path(private) / default)
    return given if given.startswith("/") else str(Path(workdir) / given)


def _submission(record: JobRecord) -> Submission:
    return Submission(
        job_id=record.job_id,
        run_id=record.run_id,
        name=record.name,
        spec=record.spec,
        workdir=record.workdir,
        stdout=record.stdout,
        stderr=record.stderr,
    )


def _with_site_defaults(spec: JobSpec, site: Site) -> JobSpec:
    changes: dict[str, object] = {}
    for name in ("account", "partition", "qos", "accounting_group"):
        if getattr(spec, name) is None and site.defaults.get(name):
            changes[name] = site.defaults[name]
    labels = dict(spec.labels)
    labels.setdefault("site", site.name)
    changes["labels"] = labels
    return spec.with_changes(**changes)


def _authorize_all(
    run: Run, fresh: list[tuple[Site, JobRequest, JobSpec, int]], by_site: dict[str, list[int]]
) -> list[JobSpec]:
    specs = [spec for _, _, spec, _ in fresh]
    for site_name, indexes in by_site.items():
        site = run.catalogue.get(site_name)
        if site.policy is None:
            continue
        from .auth.policy import authorize

        allowed = authorize(site, [specs[i] for i in indexes], run_id=run.run_id, store=run.store)
        for i, spec in zip(indexes, allowed, strict=True):
            specs[i] = spec
    return specs
