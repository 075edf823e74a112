"""Status from the storage: one listing of a run's status folder per poll, finished steps'
streams, usage and outputs brought back, and a run's steps found again after a restart."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...states import JobState, JobStatus
from ..base import FoundJob, Usage
from .cleanup import RosettaCleanup
from .client import RosettaClient, RosettaError
from .steps import HEARTBEAT_SLACK, TAIL_BYTES, job_id_of, parse_result, step_of, task_name, usage_of

log = logging.getLogger(__name__)


class RosettaCompletion(RosettaCleanup):
    """Poll, collection of finished steps, usage, explain and find."""

    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        """One file-manager listing of the run's status folder; finished steps are then
        collected (their two streams) and their tasks stopped and deleted."""
        wanted = [n for n in native_ids if n not in self._final]
        statuses = {n: self._final[n] for n in native_ids if n in self._final}
        if not wanted:
            return statuses
        self.query_count += 1
        # the time before the listing: a slow listing must not age the heartbeats it shows
        now = time.time()
        entries = {e.name: e for e in self.client.list_folder(f"{self._run_folder(run_id)}status/")}
        exits: dict[str, int] = {}
        for name in entries:
            step, _, code = name.partition(".exit-")
            if code.lstrip("-").isdigit():
                exits[step] = int(code)
        finished: dict[str, JobStatus] = {}
        overdue: list[str] = []
        interactive = [t for t in wanted if f"{step_of(t)}.interactive" in entries
                       and f"{step_of(t)}.cancelled" not in entries]
        if interactive:  # no runner reports on them: one task listing for all
            statuses.update(self._interactive_states(run_id, interactive))
        for token in wanted:
            step = step_of(token)
            beat = entries.get(f"{step}.hb")
            if token in interactive:
                continue
            if f"{step}.cancelled" in entries:
                self._final[token] = JobStatus(JobState.CANCELLED, reason="cancelled through esap")
                statuses[token] = self._final[token]
            elif step in exits:
                exit_code = exits[step]
                state = JobState.COMPLETED if exit_code == 0 else JobState.FAILED
                timeout = f"{step}.timeout" in entries
                finished[token] = JobStatus(
                    JobState.FAILED if timeout else state, exit_code=exit_code,
                    reason="walltime exceeded (TIMEOUT)" if timeout else None,
                    cause="TIMEOUT" if timeout else None)
            elif beat is not None and now - beat.modified > 2 * self.heartbeat + HEARTBEAT_SLACK:
                finished[token] = JobStatus(
                    JobState.FAILED,
                    reason=f"heartbeat lost: the runner stopped reporting {int(now - beat.modified)} s ago "
                           "(killed, out of memory or time limit)",
                    cause="NODE_FAIL")  # the runner is gone: where it ran cannot say why
            elif beat is not None:
                statuses[token] = JobStatus(JobState.RUNNING)
            else:
                statuses[token] = JobStatus(JobState.QUEUED)
                if now - self._submitted.get(token, since) > self.start_timeout:
                    overdue.append(token)
        if overdue:
            finished.update(self._not_started(run_id, overdue))
        if finished:
            self._collect(run_id, finished)
            for token in finished:
                statuses[token] = self._final[token]
        return statuses

    def _not_started(self, run_id: str, tokens: Sequence[str]) -> dict[str, JobStatus]:
        """Steps without a heartbeat `start_timeout` seconds after submission (one task
        listing): a task Rosetta marks running (its job started, the agent called back) whose
        runner never reported failed to start it, with the end of Rosetta's task log as the
        reason; a task that is gone failed too; a task still `submitted` waits in the queue."""
        tasks = {t.name: t for t in self._run_tasks(run_id)}
        failed: dict[str, JobStatus] = {}
        for token in tokens:
            task = tasks.get(task_name(token))
            if task is None:
                failed[token] = JobStatus(JobState.FAILED, reason="its Rosetta task is gone (deleted in Rosetta?)")
            elif task.status in ("running", "stopped", "exited"):
                try:
                    self._act()
                    lines = [line for line in self.client.task_log(task.uuid).splitlines() if line.strip()]
                except RosettaError as exc:
                    lines = [str(exc)]
                said = lines[-1].strip()[:300] if lines else "its log is empty"
                failed[token] = JobStatus(JobState.FAILED, reason=(
                    f"the runner did not start within {int(self.start_timeout)} s; Rosetta's task log: {said}"))
        return failed

    def _collect(self, run_id: str, finished: Mapping[str, JobStatus]) -> None:
        """Bring back each finished step's streams, then delete its task (Rosetta stops a
        task it deletes)."""
        run_folder = self._run_folder(run_id)

        def fetch(client: RosettaClient, token: str) -> None:
            status = finished[token]
            step = step_of(token)
            stdout, stderr = self._streams.get(token) or self._default_streams(run_id, step)
            tail = ""
            for stream, local, data in self._streams_of(client, run_folder, token, stdout, stderr):
                Path(local).parent.mkdir(parents=True, exist_ok=True)
                Path(local).write_bytes(data)
                if stream == "stderr":
                    tail = data[-TAIL_BYTES:].decode(errors="replace").strip()
            reason = status.reason
            missing = self._download_outputs(client, token, run_folder)
            if missing and status.state is JobState.COMPLETED:
                status = status.with_details(state=JobState.FAILED)
                reason = f"missing output {', '.join(missing)}"
            if status.state is JobState.FAILED and reason is None and tail:
                reason = tail.splitlines()[-1][:200]
            with self._lock:
                self._final[token] = status.with_details(reason=reason, stdout_path=stdout, stderr_path=stderr)

        self._each(fetch, list(finished))
        self._remove_tasks(run_id, list(finished), stop_first=False)

    def _streams_of(self, client: RosettaClient, run_folder: str, token: str, stdout: str,
                    stderr: str) -> list[tuple[str, str, bytes]]:
        """(stream, local path, bytes) of a finished step: from its result file (one download,
        which also holds its usage), else (a runner that wrote none) each stream's file."""
        step = step_of(token)
        try:
            self._act()
            result = parse_result(client.download(f"{run_folder}{step}/result"))
        except RosettaError:
            result = None
        if result is not None:
            with self._lock:
                self._usage[token] = usage_of(result["usage"].decode(errors="replace"))
            return [("stdout", stdout, result["stdout"]), ("stderr", stderr, result["stderr"])]
        found = []
        for stream, local in (("stdout", stdout), ("stderr", stderr)):
            try:
                self._act()
                found.append((stream, local, client.download(f"{run_folder}{step}/{stream}")))
            except RosettaError as exc:
                log.info("site %s: %s of %s not collected: %s", self.site.name, stream, token, exc)
        return found

    def _default_streams(self, run_id: str, step: str) -> tuple[str, str]:
        private = Path(self.site.work_root) / run_id / step
        return str(private / "esap.out"), str(private / "esap.err")

    def _download_outputs(self, client: RosettaClient, token: str, run_folder: str) -> list[str]:
        """The step's declared outputs back to their local destinations; the names missing."""
        job = self._outputs.get(token)
        if job is None:
            return []  # reattached without the submission: outputs are not known here
        step = step_of(token)
        missing: list[str] = []
        for out in job.spec.stage_out:
            local = Path(job.workdir) / out.source  # a std stream esap already brought back
            target = Path(out.dest) if Path(out.dest).is_absolute() else Path(job.workdir) / out.dest
            if not local.is_file():
                if not self._download_tree(client, f"{run_folder}{step}/work/{out.source}", target) \
                        and not out.optional:
                    missing.append(out.source)
            elif local.resolve() != target.resolve():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(local, target)
        return missing

    def _download_tree(self, client: RosettaClient, remote: str, target: Path) -> bool:
        """A file, or a folder file by file (the file manager downloads no folder); False
        when nothing is there."""
        try:
            self._act()
            data = client.download(remote)
        except RosettaError:
            self._act()
            entries = client.list_folder(remote + "/")
            if not entries:
                return False
            target.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                self._download_tree(client, f"{remote}/{entry.name}", target / entry.name)
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return True

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """Wall and CPU time the runner measured (one download per finished step); Rosetta
        accounts nothing itself, and peak memory is not measured."""
        found: dict[str, Usage] = {}
        for token in native_ids:
            if token in self._usage:  # (read with the step's result)
                found[token] = self._usage[token]
                continue
            step = step_of(token)
            try:
                self._act()
                text = self.client.download(f"{self._run_folder(run_id)}{step}/usage").decode()
            except RosettaError:
                continue
            found[token] = usage_of(text)
        return found

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        return {n: self._final[n] for n in native_ids if n in self._final}

    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        """The run's tasks by their run-scoped names, with states from the status folder."""
        tokens = {t.name.removeprefix("esap-") for t in self._run_tasks(run_id)}
        # a step whose task is already gone still left its status files
        self.query_count += 1
        for entry in self.client.list_folder(f"{self._run_folder(run_id)}status/"):
            step = entry.name.split(".", 1)[0]
            if step and not entry.name.startswith("."):
                tokens.add(f"{run_id}-{step}")
        if not tokens:
            return []
        statuses = self.poll(sorted(tokens), run_id=run_id, since=since)
        return [FoundJob(native_id=t, job_id=job_id_of(t), status=statuses[t]) for t in sorted(tokens)]
