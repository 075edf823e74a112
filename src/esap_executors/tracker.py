"""The Tracker: the one owner of a sent job's status.

Every status question goes down one path: poll (one backend query per site and run, whatever
the number of jobs) -> explain failures -> map exit codes to states -> stage outputs out (once
per job) -> store -> retry -> notify. A run follows its jobs with a Tracker and a poller thread;
`esap status`, `esap cancel`, `esap runs`, `esap usage` and `esap output` use a Tracker once
(`refresh`). No other code turns a scheduler's answer into a job state.

Records handed out are frozen snapshots: a reader never sees a final state before its exit code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

from .backends import Backend, capabilities_of
from .causes import cause_of
from .job import JobSpec
from .poller import Change, PollInterval, StatusPoller, env_overrides
from .retry_plan import wants_retry
from .site_backends import SiteBackends
from .sites import Catalogue
from .staging import stage_out
from .states import JobState, JobStatus
from .store import JobRecord, Store

log = logging.getLogger(__name__)

Listener = Callable[[JobRecord, JobStatus], None]
_CHECK_CHUNK = 1000  # records read back at once after a submission (memory stays bounded)
RetryHook = Callable[[Sequence[JobRecord]], None]  # submits the next attempt of failed jobs


@dataclass(frozen=True)
class _Observed:
    record: JobRecord  # as the tracker knew it before this poll
    status: JobStatus  # the backend's answer, explained and mapped


class Tracker:
    def __init__(self, store: Store, backends: SiteBackends, *, retry: RetryHook | None = None) -> None:
        self.store = store
        self.backends = backends
        self._retry_hook = retry
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._records: dict[str, JobRecord] = {}
        self._latest: dict[str, dict[str, str]] = defaultdict(dict)  # run id -> key -> job id of its latest attempt
        self._since: dict[str, float] = {}
        self._staged: set[str] = set()  # jobs whose outputs this process has staged out
        self._retrying: set[str] = set()  # failed attempts whose next attempt is being submitted
        self._listeners: list[Listener] = []
        # Sent jobs not final yet: site -> run id -> native id -> job id. A poll cycle costs what
        # changed, not the number of jobs tracked (backends may report only the changed jobs).
        self._live: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
        self._poll_overrides = env_overrides()  # bad ESAP_POLL_* values refuse here, before any job is sent
        self._poller = StatusPoller(self._cycle, self._interval_for)

    # --- the jobs it knows ---------------------------------------------------------------
    def adopt(self, records: Iterable[JobRecord]) -> None:
        """Know these records (new, reloaded, or given their native id)."""
        with self._lock:
            for record in records:
                self._records[record.job_id] = record
                self._index_live(record)
                latest = self._latest[record.run_id]
                current = self._records.get(latest.get(record.key, ""))
                if current is None or current.attempt <= record.attempt:
                    latest[record.key] = record.job_id

    def _index_live(self, record: JobRecord) -> None:
        """Keep the live-job index in step with a record the tracker now holds (lock held)."""
        if not record.native_id:
            return
        if not record.state.is_final:
            self._live[record.site][record.run_id][record.native_id] = record.job_id
            return
        runs = self._live.get(record.site, {})
        natives = runs.get(record.run_id)
        if natives is not None:
            natives.pop(record.native_id, None)
            if not natives:
                del runs[record.run_id]

    def confirm_sent(self, records: Sequence[JobRecord]) -> None:
        """The scheduler accepted these jobs: their records with their native ids (store first,
        then readers).

        A job cancelled (`esap cancel`, another process) between being recorded and being sent
        is final in the store, which refuses any later state: its scheduler job is cancelled now,
        or it would run unobserved."""
        self.store.set_native_ids((record.job_id, record.native_id or "") for record in records)
        ended: dict[str, JobRecord] = {}
        for start in range(0, len(records), _CHECK_CHUNK):
            chunk = records[start:start + _CHECK_CHUNK]
            ended.update((r.job_id, r) for r in self.store.jobs_by_ids([c.job_id for c in chunk])
                         if r.state.is_final)
        if not ended:
            self.adopt(records)
            return
        with self._lock:  # readers of this process that heard the cancel already are not told twice
            told = {j for j in ended if j in self._records and self._records[j].state.is_final}
        self.adopt([ended.get(r.job_id, r) for r in records])
        by_site: dict[str, list[str]] = defaultdict(list)
        for record in ended.values():
            if record.native_id:
                by_site[record.site].append(record.native_id)
        for site_name, native_ids in by_site.items():
            log.info("site %s: cancelling %d job(s) cancelled while they were being sent",
                     site_name, len(native_ids))
            try:
                self.backends.get(site_name).cancel(native_ids)
            except Exception:  # the jobs are sent; the store already holds them as ended
                log.exception("site %s: cancelling jobs %s failed", site_name, " ".join(native_ids))
        self.ended_elsewhere([r for r in ended.values() if r.job_id not in told])

    def note_retry(self, job_id: str, note: str) -> None:
        """Why a failed job gets no next attempt (store first, then readers)."""
        self.store.set_retry_note(job_id, note)
        with self._lock:
            if job_id in self._records:
                self._records[job_id] = replace(self._records[job_id], retry_note=note)

    def live_count(self, site_name: str) -> int:
        """This process's jobs sent to the site and not seen ending yet."""
        with self._lock:
            return sum(len(natives) for natives in self._live.get(site_name, {}).values())

    def fail_unsent(self, records: Sequence[JobRecord], reason: str) -> None:
        """Jobs that could not be sent end failed, with the reason."""
        status = JobStatus(JobState.FAILED, reason=reason)
        self.store.update_states((r.job_id, status) for r in records)
        # Another process may have ended some first (e.g. `esap cancel`): readers get the rows
        # as the store holds them, never a state the store refused.
        stored = {r.job_id: r for r in self.store.jobs_by_ids([r.job_id for r in records])}
        failed = [stored.get(r.job_id) or _applied(self._records.get(r.job_id, r), status, None)
                  for r in records]
        retry = self._publish(failed)
        for record in failed:  # listeners (a front waiting for its steps) hear it like any failure
            self._notify(record, record.status())
        if retry:
            self._retry(retry)

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            return self._records[job_id]

    def latest(self, run_id: str, key: str) -> JobRecord | None:
        with self._lock:
            job_id = self._latest.get(run_id, {}).get(key)
            return None if job_id is None else self._records[job_id]

    def snapshot(self, run_id: str | None = None) -> dict[str, JobRecord]:
        """Every known record (of one run), as frozen values."""
        with self._lock:
            if run_id is None:
                return dict(self._records)
            return {j: r for j, r in self._records.items() if r.run_id == run_id}

    def add_listener(self, callback: Listener) -> None:
        self._listeners.append(callback)

    # --- following jobs ------------------------------------------------------------------
    def follow(self, site_name: str) -> None:
        """Poll `site_name` in the background until its known jobs are final."""
        self._poller.track(site_name)

    def follow_live(self) -> None:
        with self._lock:
            sites = [site_name for site_name, runs in self._live.items() if runs]
        for site_name in sites:
            self.follow(site_name)

    @property
    def poll_cycles(self) -> int:
        return self._poller.cycles

    def _interval_for(self, site_name: str) -> PollInterval:
        site = self.backends.catalogue.get(site_name)
        poll = site.poll
        quick = capabilities_of(site).status_poll_floor
        if quick is not None:  # a cheap status read: poll as often, unless the catalogue says otherwise
            poll = replace(poll, **{key: min(getattr(poll, key), quick) for key in ("start", "floor")
                                    if key not in poll.given})
        return PollInterval.from_settings(poll, self._poll_overrides)

    def _cycle(self, site_name: str) -> tuple[Change, bool]:
        """One poll of a site: (what changed, the site still has live jobs)."""
        with self._lock:
            by_run = {run_id: list(natives) for run_id, natives in self._live.get(site_name, {}).items() if natives}
        if not by_run:
            return Change.NONE, False
        updated: list[JobRecord] = []
        for run_id, native_ids in by_run.items():
            updated += self._update(site_name, run_id, native_ids)
        with self._lock:
            still_live = any(self._live.get(site_name, {}).values())
            retrying = any(self._records[j].site == site_name for j in self._retrying)
        change = Change.NONE if not updated else Change.SOME
        if still_live and any(record.state.is_final for record in updated):
            change = Change.ENDING
        return change, still_live or retrying

    def refresh(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """Bring records up to date now: one backend query per run and site (`esap status`)."""
        self.adopt(records)
        by_run_site: dict[tuple[str, str], list[str]] = defaultdict(list)
        for record in records:
            if not record.state.is_final and record.native_id and self.backends.knows(record.site):
                by_run_site[(record.run_id, record.site)].append(record.native_id)
        for (run_id, site_name), native_ids in by_run_site.items():
            self._update(site_name, run_id, native_ids)
        return self.store.jobs_by_ids([r.job_id for r in records])

    def cancel(self, records: Sequence[JobRecord], *, follow: bool = False) -> int:
        """Cancel the live jobs among `records`, one backend call per site; how many were asked.

        With `follow`, the sites are polled soon so that the cancellations are seen."""
        by_site: dict[str, list[str]] = defaultdict(list)
        unsent: list[JobRecord] = []
        for record in records:
            if not record.state.is_final and record.native_id:
                by_site[record.site].append(record.native_id)
            elif not record.state.is_final:
                unsent.append(record)
        if unsent:  # e.g. waiting for their site's submission limits: they are never sent now
            status = JobStatus(JobState.CANCELLED, reason="cancelled before it was sent")
            self.ended_elsewhere(self._recorded(unsent, status))
        for site_name, native_ids in by_site.items():
            self.backends.get(site_name).cancel(native_ids)
            if follow:
                self.follow(site_name)
        return sum(len(ids) for ids in by_site.values()) + len(unsent)

    def _recorded(self, records: Sequence[JobRecord], status: JobStatus) -> list[JobRecord]:
        """Move unsent records to a final state in the store; the records as the store holds them."""
        self.store.update_states((r.job_id, status) for r in records)
        return self.store.jobs_by_ids([r.job_id for r in records])

    def ended_elsewhere(self, records: Sequence[JobRecord]) -> None:
        """Records that reached a final state without a poll (cancelled before they were sent,
        here or by another process): readers and listeners hear it."""
        ended = [r for r in records if r.state.is_final]
        retry = self._publish(ended)
        for record in ended:
            self._notify(record, record.status())
        if retry:
            self._retry(retry)

    # --- the status path -----------------------------------------------------------------
    def _update(self, site_name: str, run_id: str, native_ids: Sequence[str]) -> list[JobRecord]:
        backend = self.backends.get(site_name)
        statuses = backend.poll(native_ids, run_id=run_id, since=self._run_since(run_id))
        observed: list[_Observed] = []
        with self._lock:
            runs = self._live.get(site_name, {})
            for native, status in statuses.items():
                # A backend may answer for live jobs of the site's other runs too: apply those.
                job_id = runs.get(run_id, {}).get(native) or next(
                    (natives[native] for natives in runs.values() if native in natives), None)
                record = None if job_id is None else self._records[job_id]
                if record is not None and status.state != record.state:
                    observed.append(_Observed(record, status))
        if not observed:
            return []
        observed = _explained(backend, observed)
        missing = self._stage_out(backend, observed)
        changed = set(self.store.update_states((o.record.job_id, o.status) for o in observed))
        # Rows another process (e.g. `esap status`) moved first still get the details seen here,
        # and readers get them as the store holds them.
        recorded_elsewhere = [o for o in observed if o.record.job_id not in changed]
        if recorded_elsewhere:
            self.store.fill_details((o.record.job_id, o.status) for o in recorded_elsewhere)
        stored = {r.job_id: r for r in self.store.jobs_by_ids([o.record.job_id for o in recorded_elsewhere])}
        updated = [
            stored.get(o.record.job_id) or _applied(o.record, o.status, missing.get(o.record.job_id))
            for o in observed
        ]
        retry = self._publish(updated)
        for record, o in zip(updated, observed, strict=True):
            self._notify(record, o.status)
        if retry:
            self._retry(retry)
        return updated

    def _run_since(self, run_id: str) -> float:
        since = self._since.get(run_id)
        if since is None:
            since = self._since[run_id] = self.store.run_created(run_id) or time.time()
        return since

    def _stage_out(self, backend: Backend, observed: Sequence[_Observed]) -> dict[str, tuple[str, ...]]:
        """Copy the outputs of jobs that just ended, once per job; {job id: outputs missing}."""
        if backend.site_capabilities.transfers_files:
            return {}
        ending = [o.record for o in observed
                  if o.status.state.is_final and o.record.spec.stage_out and o.record.job_id not in self._staged]
        if not ending:
            return {}
        # A job another process already recorded as ended had its outputs staged there.
        ended = {r.job_id for r in self.store.jobs_by_ids([r.job_id for r in ending]) if r.state.is_final}
        missing: dict[str, tuple[str, ...]] = {}
        for record in ending:
            self._staged.add(record.job_id)
            if record.job_id in ended:
                continue
            try:
                lost = stage_out(record.spec, record.workdir)
            except Exception as exc:  # an unreachable destination must not stop the status path
                lost = [f"{o.source} ({exc})" for o in record.spec.stage_out]
            if lost:
                missing[record.job_id] = tuple(lost)
                self.store.set_missing_outputs(record.job_id, lost)
        return missing

    def _publish(self, updated: Sequence[JobRecord]) -> list[JobRecord]:
        """Hand the new records to readers; returns the failed attempts to retry."""
        retry: list[JobRecord] = []
        with self._changed:
            for record in updated:
                self._records[record.job_id] = record
                self._index_live(record)
                if self._should_retry(record):
                    retry.append(record)
                    self._retrying.add(record.job_id)
            self._changed.notify_all()
        return retry

    def _should_retry(self, record: JobRecord) -> bool:
        return (self._retry_hook is not None and wants_retry(record)
                and self._latest.get(record.run_id, {}).get(record.key) == record.job_id
                and record.job_id not in self._retrying)

    def _retry(self, failed: Sequence[JobRecord]) -> None:
        assert self._retry_hook is not None
        try:
            self._retry_hook(failed)
        except Exception:
            log.exception("resubmitting %d failed job(s) failed", len(failed))
        finally:
            with self._changed:
                self._retrying.difference_update(r.job_id for r in failed)
                # those left without a next attempt (refused) have settled: listeners hear it
                ended = [self._records[r.job_id] for r in failed
                         if self._latest.get(r.run_id, {}).get(r.key) == r.job_id]
                self._changed.notify_all()
            for record in ended:
                self._notify(record, record.status())

    def _notify(self, record: JobRecord, status: JobStatus) -> None:
        for callback in list(self._listeners):
            try:
                callback(record, status)
            except Exception:
                log.exception("a run listener failed")

    # --- waiting -------------------------------------------------------------------------
    def settled(self, record: JobRecord) -> bool:
        """Final, and no next attempt on its way (the Tracker retries failed jobs with retries left)."""
        with self._lock:
            current = self._records.get(record.job_id, record)
            latest = self._latest.get(current.run_id, {}).get(current.key, current.job_id)
            return current.state.is_final and latest == current.job_id and current.job_id not in self._retrying

    def wait(
        self, run_id: str, keys: Iterable[str] | None = None, timeout: float | None = None
    ) -> dict[str, JobRecord]:
        """Block until the latest attempt of each key (by default: every key of the run) is final
        and not being retried."""
        with self._lock:
            wanted = list(self._latest[run_id]) if keys is None else list(set(keys))
        pending = list(wanted)  # a settled job stays settled: each wake resumes where the last stopped
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                latest_of = self._latest[run_id]
                while pending and self.settled(self._records[latest_of[pending[-1]]]):
                    pending.pop()
                remaining = None if deadline is None else deadline - time.monotonic()
                if not pending or (remaining is not None and remaining <= 0):
                    latest = (self._records[latest_of[k]] for k in wanted)
                    return {r.job_id: r for r in latest}
                self._changed.wait(timeout=min(remaining or 1.0, 1.0))

    def close(self) -> None:
        self._poller.stop()


@contextmanager
def tracker_for(store: Store, catalogue: Catalogue) -> Iterator[Tracker]:
    """A Tracker for one command (`esap status`, `cancel`, `runs`, `output`), closed after it."""
    with SiteBackends(catalogue, store) as backends:
        tracker = Tracker(store, backends)
        try:
            yield tracker
        finally:
            tracker.close()


def exit_ok(spec: JobSpec, status: JobStatus) -> bool:
    return status.exit_code is None or status.exit_code in spec.success_exit_codes


def _explained(backend: Backend, observed: list[_Observed]) -> list[_Observed]:
    """Failure details from the backend (one call), then exit codes mapped to states: a job that
    ended by itself (COMPLETED, from the poll or from `explain`) completed if its exit code is one
    of its success codes and failed otherwise."""
    failed = [o.record.native_id for o in observed if o.status.state is JobState.FAILED and o.record.native_id]
    details: Mapping[str, JobStatus] = backend.explain(failed) if failed else {}
    result = []
    for o in observed:
        status = o.status
        detail = details.get(o.record.native_id or "")
        if detail is not None:
            status = status.with_details(
                exit_code=status.exit_code if status.exit_code is not None else detail.exit_code,
                signal=status.signal or detail.signal,
                reason=status.reason or detail.reason,
                cause=status.cause or detail.cause,
                node=status.node or detail.node,
            )
            if status.state is JobState.FAILED and detail.state is JobState.COMPLETED:
                # A closer look found that the job ended by itself: its exit code decides below.
                status = status.with_details(state=JobState.COMPLETED, reason=None)
        if status.state is JobState.COMPLETED and not exit_ok(o.record.spec, status):
            status = status.with_details(state=JobState.FAILED, reason=status.reason or "exit code")
        cause = cause_of(status) if status.state.is_final else None  # a hold may yet be released
        if cause is not None and status.cause != cause:
            status = status.with_details(cause=cause.value)
        result.append(_Observed(o.record, status))
    return result


def _applied(record: JobRecord, status: JobStatus, missing: tuple[str, ...] | None) -> JobRecord:
    """The record as the store now holds it (details kept where the status has none)."""
    return replace(
        record,
        state=status.state,
        exit_code=status.exit_code if status.exit_code is not None else record.exit_code,
        signal=status.signal or record.signal,
        reason=status.reason or record.reason,
        cause=status.cause or record.cause,
        node=status.node or record.node,
        missing_outputs=missing if missing is not None else record.missing_outputs,
        updated=status.time,
    )
