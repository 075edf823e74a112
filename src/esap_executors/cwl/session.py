"""One executor invocation as a run of the core: batched submission, completion by the run's listener."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from cwltool.context import RuntimeContext

from ..backends import capabilities_of
from ..errors import EsapError, Unreachable
from ..job import JobSpec
from ..runs import JobRequest, Run
from ..sites import Catalogue, Site
from ..states import JobStatus
from ..store import JobRecord, Store
from .job import EsapCommandLineJob
from .keys import current_generation, digest, end_generation, run_base_key

log = logging.getLogger("cwltool")
RESEND_DELAY_S = 5
VIRTUAL_BASE = "/tmp"  # present and writable on any execute host (often private to the job)


@dataclass(frozen=True)
class EsapSettings:
    sites_file: str | None = None
    default_site: str | None = None
    run_key: str | None = None  # --esap-run-id: an explicit key instead of workflow + inputs + dirs
    work_dir: str | None = None  # where the per-job directories go (shared with the sites)
    job_order_file: str | None = None  # named in errors about the inputs
    right_size: bool = False  # --esap-right-size: requests from the steps' recorded peaks


class Session:
    def __init__(
        self, settings: EsapSettings, store: Store, process: Any, job_order: Any, runtime_context: RuntimeContext
    ) -> None:
        self.settings = settings
        self.runtime_context = runtime_context
        catalogue = Catalogue.load(settings.sites_file)
        self.default_site = settings.default_site
        if self.default_site is not None:
            catalogue.get(self.default_site)
        outdir = getattr(runtime_context, "esap_final_outdir", None)
        self.base_key = settings.run_key or run_base_key(str(process.tool.get("id", "")), job_order, outdir)
        self.generation = current_generation(store, self.base_key)
        self.run = Run.open(f"{self.base_key}#{self.generation}", catalogue=catalogue, store=store,
                            front="cwl", default_site=self.default_site)
        base = settings.work_dir or os.path.dirname(runtime_context.tmp_outdir_prefix) or "/tmp"
        self.work_root = os.path.join(os.path.abspath(base), f"esap-cwl-{self.run.run_id}")
        os.makedirs(self.work_root, exist_ok=True)
        self._lock = threading.Lock()
        self._pending: list[tuple[EsapCommandLineJob, JobRequest]] = []
        self._waiting: dict[str, EsapCommandLineJob] = {}  # job key -> job, until final
        self._finishing: set[str] = set()
        self.completions = 0
        self._occurrences: Counter[str] = Counter()
        self.errors: list[BaseException] = []
        self.refusal: EsapError | None = None  # a batch the core refused before sending it
        self.run.add_listener(self._on_change)
        log.info("esap run %s (resume with the same command; `esap status %s`, afterwards `esap usage %s`)",
                 self.run.run_id, self.run.run_id, self.run.run_id)

    # --- keys and directories -----------------------------------------------------------
    def job_key(self, stem: str, tool_id: str, job_order: Any) -> str:
        """Step name + tool + inputs; a repeat of the same (e.g. scatter over equal values) is numbered."""
        base = f"{stem}:{digest(tool_id, job_order)[:16]}"
        with self._lock:
            self._occurrences[base] += 1
            count = self._occurrences[base]
        return base if count == 1 else f"{base}#{count}"

    def job_root(self, key: str) -> str:
        name = hashlib.sha256(key.encode()).hexdigest()[:16]
        root = os.path.join(self.work_root, name)
        os.makedirs(root, exist_ok=True)
        return root

    # --- sites ---------------------------------------------------------------------------
    @property
    def right_size(self) -> bool:
        return self.settings.right_size

    def site(self, name: str | None) -> Site:
        return self.run.catalogue.get(name or self.default_site or "local")

    def transfers_files(self, site: Site) -> bool:
        """Whether the site's jobs get their files by transfer (no shared filesystem; the catalogue
        admits such a site only with a backend that transfers files)."""
        return capabilities_of(site).transfers_files

    def virtual_root(self, root: str) -> str:
        """The fixed path a transfer site's job sees its directories at (see script.Sandbox):
        never a path of this side, one per job, stable across a resume of the run."""
        return os.path.join(VIRTUAL_BASE, f"esap-cwl-job-{self.run.run_id}-{os.path.basename(root)}")

    # --- submission ----------------------------------------------------------------------
    def enqueue(self, job: EsapCommandLineJob, request: JobRequest) -> None:
        self._pending.append((job, request))

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._pending)

    def flush(self) -> None:
        """Submit everything collected since the last flush: one run.submit, one backend call per site."""
        batch, self._pending = self._pending, []
        if not batch:
            return
        with self._lock:
            for job, request in batch:
                self._waiting[request.key] = job
        try:
            records = self._submit([request for _, request in batch])
        except EsapError as exc:
            self.refusal = exc
            with self._lock:
                for _, request in batch:
                    self._waiting.pop(request.key, None)
            for job, _ in batch:
                job.finish(None, self.runtime_context, error=str(exc))
            self.completions += len(batch)
            return
        for record in records:
            if record.state.is_final:  # reattached to a job that had already ended
                self._complete(record)

    def _submit(self, requests: list[JobRequest]) -> list[JobRecord]:
        try:
            return self.run.submit(requests)
        except Unreachable as exc:
            # recorded but maybe not sent: reopening the run resends exactly the unconfirmed ones
            log.warning("%s; reopening run %s to resend in %d s", exc, self.run.run_id, RESEND_DELAY_S)
            time.sleep(RESEND_DELAY_S)
            key, catalogue, store = self.run.key, self.run.catalogue, self.run.store
            self.run.close()
            self.run = Run.open(key, catalogue=catalogue, store=store, front="cwl", default_site=self.default_site)
            self.run.add_listener(self._on_change)
            return self.run.submit(requests)

    def _on_change(self, record: JobRecord, status: JobStatus) -> None:
        # a failed attempt with a retry on its way is not the step's end (its next attempt is)
        if record.run_id == self.run.run_id and status.state.is_final and self.run.settled(record):
            self._complete(record)

    def _complete(self, record: JobRecord) -> None:
        with self._lock:
            job = self._waiting.get(record.key)
            if job is None or record.key in self._finishing:
                return
            self._finishing.add(record.key)
        try:
            job.finish(record, self.runtime_context)
        except BaseException as exc:  # surfaced in the executor's thread
            self.errors.append(exc)
        finally:
            with self._lock:  # only now: the executor must not see it gone before its callback ran
                self._waiting.pop(record.key, None)
                self.completions += 1
                self._finishing.discard(record.key)
            lock = self.runtime_context.workflow_eval_lock
            if lock is not None:
                with lock:
                    lock.notify_all()

    def wait(self) -> None:
        lock = self.runtime_context.workflow_eval_lock
        if lock is not None:
            lock.wait(timeout=1)
        if self.errors:
            raise self.errors[0]

    # --- end -----------------------------------------------------------------------------
    def cancel_outstanding(self) -> None:
        with self._lock:
            keys = set(self._waiting)
            self._waiting.clear()
        job_ids = [r.job_id for r in self.run.snapshot().values() if r.key in keys and not r.state.is_final]
        if job_ids:
            log.warning("cancelling %d job(s) of run %s", len(job_ids), self.run.run_id)
            self.run.cancel(job_ids)

    def right_sized(self, spec: JobSpec, step: str, site: str) -> JobSpec:
        """The step's request from what it used in earlier runs on the site (--esap-right-size)."""
        from ..right_size import right_size

        spec, note = right_size(self.run.store, spec, step, site)
        if note:
            log.info("[step %s] %s", step, note)
        return spec

    def close(self, *, finished: bool) -> None:
        """A finished generation is never resumed (cwltool has removed its directories)."""
        from ..right_size import remember_usage

        try:  # what the steps used, for a later --esap-right-size
            remember_usage(self.run.store, self.run.catalogue, self.run.store.jobs_of_run(self.run.run_id))
        except EsapError as exc:
            log.info("usage of run %s not recorded: %s", self.run.run_id, exc)
        if finished:
            end_generation(self.run.store, self.base_key, self.generation)
            if self.runtime_context.rm_tmpdir:
                shutil.rmtree(self.work_root, ignore_errors=True)
