"""The django-uws worker of type `esap-executors`: ESAP's asynchronous jobs run CWL, Snakemake and
JDL workflows through the project's fronts.

Register it in the gateway's Celery worker settings:
`UWS_WORKERS = ["esap_executors.esap.uws_worker.EsapExecutorsWorker"]`.

django-uws's task sets EXECUTING, calls `run`, and sets COMPLETED when it returns, or ERROR with a
traceback when it raises. This worker never raises: it reports its own ERROR with a short summary
(the failing step and its reason), and it watches the job's phase itself, because django-uws's
ABORT only changes the phase (and revokes the job's token), it does not stop the Celery task.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

from uws.workers import Worker

from .. import faultpoints
from ..auth.redact import redact
from ..errors import AuthError, EsapError
from ..states import JobState
from ..store import Store
from ..stores import open_store
from ..submitter import run_id_for
from . import uws_run
from .uws_follow import JobFinalised, PhaseWatch, follow
from .uws_parameters import STATUS_RESULT, WORKER_TYPE, UwsJobRequest, binding, parse
from .uws_seal import unseal, worker_private_key

log = logging.getLogger(__name__)

POLL_SECONDS = float(os.environ.get("ESAP_UWS_POLL", "2"))
EXIT_SUMMARIES = {1: "the workflow failed", 2: "bad input, nothing was submitted",
                  3: "a site or service refused or could not be reached"}


class EsapExecutorsWorker(Worker):
    def __init__(self) -> None:
        super().__init__()
        self._type = WORKER_TYPE

    def run(self, job: Any, job_token: str, client: Any) -> None:
        UwsJobRun(job, job_token, client).run()


class UwsJobRun:
    def __init__(self, job: Any, job_token: str, client: Any) -> None:
        self.job = job
        self.job_id = int(job.jobId)
        self.job_token = job_token
        self.client = client
        # the UWS job is the run, so a second delivery reattaches to it: its URL, and its creation
        # time, as job ids start again at 1 with a new gateway database
        self.run_key = f"{job.url}@{job.creationTime}"
        self.run_id = run_id_for(self.run_key)  # until the front is known
        self.store: Store = open_store()
        self.token: str | None = None
        self._watch: PhaseWatch | None = None

    def run(self) -> None:
        try:
            request = parse((p.key, p.value) for p in self.job.parameters)
            if request.sealed_token is None:
                raise AuthError("no platform token: the job was not submitted with esap uws submit")
            self.token = unseal(request.sealed_token, worker_private_key(), binding(request))
            self._execute(request)
        except JobFinalised:
            log.info("UWS job %s was ended from outside (ABORT): run %s cancelled", self.job_id, self.run_id)
        except EsapError as exc:
            self._fail(str(exc))
        except Exception:
            log.exception("UWS job %s: internal error", self.job_id)
            self._fail("esap-executors worker: internal error (the worker's log has the details)")

    # the run
    def _execute(self, request: UwsJobRequest) -> None:
        directory = uws_run.job_directory(f"{self.job_id}-{run_id_for(self.run_key)}")
        lock = self._wait_for_previous_delivery(directory)
        try:
            if directory.reported.exists():
                return  # an earlier delivery ran it and reported its outcome; django-uws completes it
            self._execute_locked(request, directory)
        finally:
            lock.close()

    def _execute_locked(self, request: UwsJobRequest, directory: uws_run.JobDirectory) -> None:
        self.run_id = uws_run.run_id_of(request.front, self.store, self.run_key)
        ended = uws_run.ended_run(directory, self.store, self.run_id)
        if ended is not None:  # the worker died after the run's end, before the gateway heard of it
            self.run_id, code = ended
            log.info("UWS job %s: run %s had ended (exit %s): reported, not run again", self.job_id, self.run_id,
                     code)
        else:
            code = self._run_front(request, directory)
        self._write_status(directory)
        if code == 0:
            results = uws_run.outputs(request, directory)
            if results:
                self._call(self.client.add_results, self.job_id, results, self.job_token)
        else:
            self._fail(self._failure_summary(code, directory))
        directory.reported.touch()

    def _run_front(self, request: UwsJobRequest, directory: uws_run.JobDirectory) -> int:
        sources = [("workflow", request.workflow), ("inputs", request.inputs),
                   *((f"file:{f.name}", f) for f in request.files)]
        for field, source in sources:
            if source is not None:
                uws_run.materialise(source, directory.inputs, self.token, field)
        self._publish_status(directory)
        front = uws_run.start_front(uws_run.front_argv(request, directory, self.run_key), directory, self.token)
        log.info("UWS job %s: run %s (%s front), pid %s", self.job_id, self.run_id, request.front, front.pid)
        try:
            follow(front, lambda: self._cycle(directory), POLL_SECONDS)
        except BaseException:
            # the front is stopped (ABORT, the gateway gone too long, a store error, ...): it submits
            # nothing more, and what it submitted is cancelled; a redelivery finds no live front
            self._cancel_run()
            self._write_status_if_possible(directory)
            raise
        faultpoints.reached("uws-front-ended")
        uws_run.record_exit(directory, self.run_id, front.returncode)
        return front.returncode

    def _cycle(self, directory: uws_run.JobDirectory) -> None:
        self._check_phase()
        self._write_status(directory)

    def _wait_for_previous_delivery(self, directory: uws_run.JobDirectory) -> IO[bytes]:
        """The job's lock: a job handed out again while its first delivery still runs it (the broker's
        visibility timeout passed) waits until that one ends, and usually finds the job final."""
        while (lock := directory.try_lock()) is None:
            self._check_phase()
            time.sleep(POLL_SECONDS)
        self._check_phase()
        return lock

    def _check_phase(self) -> None:
        """JobFinalised once the gateway no longer accepts the job's token (ABORT, or ended elsewhere)."""
        if self._watch is None:
            from django.conf import settings  # the worker runs inside django-uws's Celery worker

            self._watch = PhaseWatch(f"{str(settings.UWS_HOST).rstrip('/')}/jobs/{self.job_id}/", self.job_token)
        self._watch.check()

    def _cancel_run(self) -> None:
        try:
            if self.store.run(self.run_id) is None:
                return
        except Exception:  # the store failing is no reason to leave scheduler jobs behind: esap cancel tries
            log.warning("UWS job %s: the state store failed; cancelling run %s anyway", self.job_id, self.run_id)
        argv = [str(Path(sys.executable).parent / "esap"), "cancel", self.run_id]
        env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "BEARER_TOKEN_FILE")}
        if self.token:
            env["BEARER_TOKEN"] = self.token
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode not in (0, 1):
            log.warning("UWS job %s: esap cancel %s: %s", self.job_id, self.run_id,
                        redact(done.stderr.strip()[-500:], self.token))

    # what the user sees
    def _failure_summary(self, code: int | None, directory: uws_run.JobDirectory) -> str:
        failed = [job for job in self.store.jobs_of_run(self.run_id)
                  if job.state.is_final and job.state is not JobState.COMPLETED]
        if failed:
            first = failed[0]
            more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            why = [f"exit code {first.exit_code}"] if first.exit_code is not None else []
            why += [first.reason] if first.reason else []
            reason = f": {', '.join(why)}" if why else ""
            return f"step {first.name} {first.state.value} on {first.site}{reason}{more} (run {self.run_id})"
        line = uws_run.last_line(directory.stderr)
        return line or EXIT_SUMMARIES.get(code or 1, f"the front exited with {code}")

    def _publish_status(self, directory: uws_run.JobDirectory) -> None:
        """The run's jobs, as `esap uws status` shows them, in a file the job's results point to."""
        self._write_status(directory)
        if any(result.key == STATUS_RESULT for result in self.job.results):
            return
        result = {"key": STATUS_RESULT, "value": directory.status.resolve().as_uri(),
                  "size": directory.status.stat().st_size, "mimeType": "application/json"}
        self._call(self.client.add_results, self.job_id, [result], self.job_token)

    def _write_status(self, directory: uws_run.JobDirectory) -> None:
        jobs = [{"id": job.job_id, "name": job.name, "site": job.site, "scheduler_id": job.native_id,
                 "state": job.state.value, "reason": job.reason}
                for job in self.store.job_states_of_run(self.run_id)]
        text = json.dumps({"run": self.run_id, "run_key": self.run_key, "jobs": jobs}, indent=1)
        partial = directory.status.with_suffix(".part")
        partial.write_text(text)
        partial.chmod(0o644)
        partial.replace(directory.status)

    def _write_status_if_possible(self, directory: uws_run.JobDirectory) -> None:
        try:
            self._write_status(directory)
        except Exception:
            log.warning("UWS job %s: cannot write the run's status", self.job_id, exc_info=True)

    def _fail(self, summary: str) -> None:
        summary = redact(summary, self.token, self.job_token)
        log.info("UWS job %s: ERROR: %s", self.job_id, summary)
        try:
            self._call(self.client.fail_job, self.job_id, summary, self.job_token)
        except JobFinalised:
            pass

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except RuntimeError as exc:  # django-uws's client: the gateway refused (the token is gone)
            raise JobFinalised() from exc
