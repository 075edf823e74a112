"""Interactive jobs: a software's task the user opens through Rosetta's link, and its state as
Rosetta lists it (no runner reports on it)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence

from ...states import JobState, JobStatus
from ..base import InteractiveAccess, Submission
from .client import RosettaClient, RosettaError
from .discovery import RosettaDiscovery
from .steps import step_of, task_name


class RosettaInteractive(RosettaDiscovery):
    """Interactive tasks: started, opened, and their states."""

    def _start_interactive(self, client: RosettaClient, job: Submission, token: str) -> str:
        """The software's task, marked interactive on the storage (every process's poll then
        asks Rosetta for its state, as there is no runner to report it). Its password is
        Rosetta's to show the user on the task's page: esap neither keeps nor prints it."""
        spec = job.spec
        step = step_of(token)
        self._act()
        client.upload(f"{self._run_folder(job.run_id)}status/", f"{step}.interactive", b"interactive\n")
        self._act()
        client.start_task(
            name=task_name(token), container=self._interactive_software(spec.container.image if spec.container
                                                                         else ""),
            computing=self._computing_uuid or "", password=secrets.token_urlsafe(18),
            cpus=spec.cores, memory=f"{spec.memory_mib}M" if spec.memory_mib else None, partition=spec.partition,
        )
        return token

    def open_interactive(self, native_id: str, *, run_id: str, timeout: float) -> InteractiveAccess:
        """Wait for the task to run (one task listing every 2 s), then open its sharable link
        `/t/<short uuid>`: Rosetta sets up the tunnel and answers where the task is."""
        deadline = time.monotonic() + timeout
        name = task_name(native_id)
        while True:
            task = next((t for t in self._run_tasks(run_id) if t.name == name), None)
            if task is None:
                raise RosettaError(f"Rosetta: the task {name} is gone (stopped and deleted in Rosetta?)")
            if task.status == "running":
                break
            if task.status in ("stopped", "exited"):
                raise RosettaError(f"Rosetta: the task {name} is {task.status}")
            if time.monotonic() > deadline:
                raise RosettaError(f"Rosetta: the task {name} is still {task.status} after {int(timeout)} s")
            time.sleep(2.0)
        short = task.uuid[:8]
        self._act()
        address = self.client.open_link(short)
        return InteractiveAccess(link=f"{self.url.rstrip('/')}/t/{short}/", address=address)

    def _interactive_states(self, run_id: str, tokens: Sequence[str]) -> dict[str, JobStatus]:
        """Interactive tasks as Rosetta lists them: running, waiting (created, submitted), or
        ended in Rosetta (stopped there: completed; deleted there: cancelled)."""
        tasks = {t.name: t for t in self._run_tasks(run_id)}
        states: dict[str, JobStatus] = {}
        for token in tokens:
            task = tasks.get(task_name(token))
            if task is None:
                self._final[token] = JobStatus(JobState.CANCELLED, reason="its Rosetta task was deleted in Rosetta")
                states[token] = self._final[token]
            elif task.status in ("stopped", "exited"):
                self._final[token] = JobStatus(JobState.COMPLETED, reason=f"the session was {task.status} in Rosetta")
                states[token] = self._final[token]
            else:
                states[token] = JobStatus(JobState.RUNNING if task.status == "running" else JobState.QUEUED)
        return states
