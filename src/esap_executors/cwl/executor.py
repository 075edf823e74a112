"""cwltool's JobExecutor for sites: no thread per job, no local resource accounting.

The workflow is advanced in this thread; every runnable CommandLineTool job collected while
cwltool has more to offer is submitted in one batch when it has nothing more (scatter and
parallel branches together). The run's poller completes the jobs.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any

from cwltool.context import RuntimeContext
from cwltool.errors import WorkflowException
from cwltool.executors import JobExecutor
from cwltool.job import JobBase
from cwltool.process import Process

from ..errors import EsapError
from ..store import Store
from . import remote_io
from .keys import digest
from .read_here import inputs_read_here
from .session import EsapSettings, Session


def select_resources(request: dict[str, int | float], runtime_context: RuntimeContext) -> dict[str, int | float]:
    """The Min of every range, rounded up (a site, not this host, has to satisfy it)."""
    result: dict[str, int | float] = {
        "cores": math.ceil(request["coresMin"]),
        "ram": math.ceil(request["ramMin"]),
        "tmpdirSize": math.ceil(request["tmpdirMin"]),
        "outdirSize": math.ceil(request["outdirMin"]),
    }
    if "cudaDeviceCountMin" in request:
        result["cudaDeviceCount"] = math.ceil(request["cudaDeviceCountMin"])
    return result


class EsapJobExecutor(JobExecutor):
    def __init__(self, settings: EsapSettings, store: Store) -> None:
        super().__init__()
        self.settings = settings
        self.store = store
        self.session: Session | None = None
        self.esap_error: EsapError | None = None
        self.job_order: Any = None
        self.finished = False
        self.inputs_dir: Path | None = None  # storage inputs fetched on this host

    def run_jobs(
        self,
        process: Process,
        job_order_object: Any,
        logger: logging.Logger,
        runtime_context: RuntimeContext,
    ) -> None:
        lock = runtime_context.workflow_eval_lock
        if lock is None:
            raise WorkflowException("runtimeContext.workflow_eval_lock must not be None")
        finished = False
        session: Session | None = None
        try:
            session = self.session = Session(self.settings, self.store, process, job_order_object, runtime_context)
            runtime_context.esap = session  # type: ignore[attr-defined]
            with lock:
                self._advance(process, job_order_object, logger, runtime_context, session)
            finished = True
            self.esap_error = session.refusal
        except EsapError as exc:
            self.esap_error = exc
            finished = True
            raise WorkflowException(str(exc)) from exc
        except WorkflowException:
            finished = True
            raise
        finally:
            if session is not None:
                if not finished:  # interrupted: do not leave jobs running unattended
                    session.cancel_outstanding()
                    finished = True
                elif session.in_flight:
                    session.cancel_outstanding()
                session.run.close()
                self.finished = finished

    def execute(
        self, process: Process, job_order_object: Any, runtime_context: RuntimeContext,
        logger: logging.Logger | None = None,
    ) -> tuple[Any, str]:
        """After cwltool has moved the outputs: end the generation and remove the steps' directories."""
        self.finished = False
        self.job_order = job_order_object  # for the run's metadata (the RO-Crate's inputs)
        self._stage_remote_inputs(process, job_order_object, runtime_context)
        try:
            if logger is None:
                return super().execute(process, job_order_object, runtime_context)
            return super().execute(process, job_order_object, runtime_context, logger)
        finally:
            if self.session is not None:
                self.session.close(finished=self.finished)
            if self.inputs_dir is not None and self.finished and runtime_context.rm_tmpdir:
                shutil.rmtree(self.inputs_dir, ignore_errors=True)

    def _stage_remote_inputs(self, process: Process, job_order: Any, runtime_context: RuntimeContext) -> None:
        """Inputs by storage URL (defaults of the workflow's inputs too): checked, then fetched on
        this host (see remote_io), before any step."""
        remote_io.take_remote_defaults(process.tool.get("inputs") or [], job_order)
        if not remote_io.remote_inputs(job_order):
            return
        base = self.settings.work_dir or os.path.dirname(runtime_context.tmp_outdir_prefix) or "/tmp"
        # one directory per job order (a rerun of the same command finds its inputs), removed at the end
        name = f"esap-cwl-inputs-{digest(job_order, getattr(runtime_context, 'esap_final_outdir', ''))[:16]}"
        self.inputs_dir = Path(os.path.abspath(base)) / name
        try:
            from ..staging.cache import submit_cache_bytes

            submit_cache_bytes()  # a malformed bound is named before anything is fetched or submitted
            remote_io.check_inputs(job_order, self.settings.job_order_file)
            if self._jobs_fetch_inputs():
                # the jobs fetch them on the execute side (staging: {fetch: execute}); a step
                # placed on a site that does not, fetches through this host (job.py); what
                # cwltool reads here (loadContents, an output passed through…) is fetched now
                here = inputs_read_here(process)
                count = remote_io.fetch_inputs(job_order, self.inputs_dir, names=here) if here else 0
                if count:
                    logging.getLogger("cwltool").info(
                        "esap: %d input(s) fetched from storage URLs on this host (read here: %s)", count,
                        ", ".join(sorted(here)))
                deferred = remote_io.defer_inputs(job_order, self.inputs_dir)
                runtime_context.esap_deferred = deferred  # type: ignore[attr-defined]
                logging.getLogger("cwltool").info("esap: %d input(s) by storage URL, fetched by the jobs",
                                                  len(deferred))
                return
            count = remote_io.fetch_inputs(job_order, self.inputs_dir)
        except EsapError as exc:
            self.esap_error = exc
            raise WorkflowException(str(exc)) from exc
        logging.getLogger("cwltool").info("esap: %d input(s) fetched from storage URLs", count)

    def _jobs_fetch_inputs(self) -> bool:
        """The run's site (--site) fetches inputs on its execute side."""
        from ..sites import Catalogue

        if not self.settings.default_site:
            return False
        return Catalogue.load(self.settings.sites_file).get(self.settings.default_site).staging.on_execute_side

    def _advance(
        self, process: Process, job_order: Any, logger: logging.Logger, runtime_context: RuntimeContext,
        session: Session,
    ) -> None:
        for job in process.job(job_order, self.output_callback, runtime_context):
            if job is not None:
                if isinstance(job, JobBase):
                    job.builder = runtime_context.builder or job.builder
                    if job.outdir is not None:
                        self.output_dirs.add(job.outdir)
                job.run(runtime_context)
                continue
            # cwltool has nothing runnable until something finishes: send what was collected
            progress = session.completions
            session.flush()
            if session.in_flight:
                session.wait()
            elif session.completions == progress:  # (reattached jobs that had ended complete at once)
                logger.error("Workflow cannot make any more progress.")
                break
        session.flush()
        while session.in_flight:
            session.wait()
