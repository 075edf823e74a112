"""Runs: one invocation of a front. Its id is carried by every scheduler job, so a rerun
with the same key reattaches to live jobs instead of resubmitting them.

`Run` is the fronts' handle on a run. It holds no logic of its own: a `Submitter`
(submitter.py) sends the jobs and a `Tracker` (tracker.py) owns their status, both on one
`Store` and one set of backends (site_backends.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from . import run_lock
from .backends import Backend
from .run_owner import record_owner
from .site_backends import SiteBackends
from .sites import Catalogue, Site
from .store import JobRecord, Store
from .submitter import JobRequest, Submitter, check_limits, run_id_for, submission
from .tracker import Listener, Tracker

__all__ = ["JobRecord", "JobRequest", "Listener", "Run", "check_limits", "run_id_for"]

_submission = submission  # kept for tests that drive a backend by hand


class Run:
    def __init__(
        self,
        key: str,
        *,
        catalogue: Catalogue | None = None,
        store: Store,
        front: str = "cli",
        default_site: str | None = None,
    ) -> None:
        self.key = key
        self.run_id = run_id_for(key)
        self.catalogue = catalogue or Catalogue.load()
        self.store = store
        self.front = front
        self.default_site = default_site
        if default_site is not None:
            self.catalogue.get(default_site)
        run_lock.acquire(self.run_id)
        try:
            self._attach(key, front, default_site)
        except BaseException:
            run_lock.release(self.run_id)
            raise

    def _attach(self, key: str, front: str, default_site: str | None) -> None:
        self.store.ensure_run(self.run_id, key, front)
        self.since = self.store.run_created(self.run_id) or time.time()
        self.backends = SiteBackends(self.catalogue, self.store)
        self.tracker = Tracker(self.store, self.backends, retry=self._resubmit)
        self.tracker.adopt(self.store.jobs_of_run(self.run_id))
        self.submitter = Submitter(self.run_id, catalogue=self.catalogue, store=self.store,
                                   backends=self.backends, tracker=self.tracker, since=self.since,
                                   default_site=default_site)

    @classmethod
    def open(
        cls,
        key: str,
        *,
        catalogue: Catalogue | None = None,
        store: Store,
        front: str = "cli",
        default_site: str | None = None,
    ) -> Run:
        """The run of `key`, reattached to its jobs (and those a crash left unsent, resent)."""
        run = cls(key, catalogue=catalogue, store=store, front=front, default_site=default_site)
        try:
            record_owner(run.store, run.run_id)  # `esap status --watch` reads the store while we poll
            run.submitter.recover()
        except BaseException:
            run.close()
            raise
        return run

    def backend(self, site_name: str) -> Backend:
        return self.backends.get(site_name)

    # submission
    def choose_site(self, request: JobRequest) -> Site:
        return self.submitter.choose_site(request)

    def prepare(self, requests: Sequence[JobRequest]) -> tuple[list[JobRecord], list[JobRecord]]:
        return self.submitter.prepare(requests)

    def submit(self, requests: Sequence[JobRequest]) -> list[JobRecord]:
        return self.submitter.submit(requests)

    def _resubmit(self, failed: Sequence[JobRecord]) -> None:
        self.submitter.resubmit(failed)

    # status
    def latest(self, key: str) -> JobRecord | None:
        return self.tracker.latest(self.run_id, key)

    def snapshot(self) -> dict[str, JobRecord]:
        """The run's records now, frozen: later changes never show through them."""
        return self.tracker.snapshot(self.run_id)

    def add_listener(self, callback: Listener) -> None:
        self.tracker.add_listener(callback)

    def settled(self, record: JobRecord) -> bool:
        """Final, and no retry of it on its way."""
        return self.tracker.settled(record)

    def wait(self, job_ids: Iterable[str] | None = None, timeout: float | None = None) -> dict[str, JobRecord]:
        """Block until the jobs (by default all of the run) are final; follows retries."""
        keys = None if job_ids is None else {self.tracker.get(j).key for j in job_ids}
        return self.tracker.wait(self.run_id, keys, timeout)

    def cancel(self, job_ids: Iterable[str] | None = None) -> None:
        records = self.snapshot()
        targets = [records[j] for j in job_ids] if job_ids is not None else list(records.values())
        self.tracker.cancel(targets, follow=True)

    def close(self) -> None:
        try:
            self.submitter.close()
            self.tracker.close()
            self.backends.close()
        finally:
            run_lock.release(self.run_id)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
