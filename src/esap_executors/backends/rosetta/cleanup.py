"""Cancel and cleanup: a cancelled step is marked on the storage (what every process's poll
sees), and finished or cancelled steps' tasks are stopped and deleted."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from .client import RosettaClient, RosettaError, Task
from .interactive import RosettaInteractive
from .steps import step_of, task_name

log = logging.getLogger(__name__)


class RosettaCleanup(RosettaInteractive):
    """Cancel and task removal."""

    def _remove_tasks(self, run_id: str, tokens: Sequence[str], *, stop_first: bool) -> None:
        """Delete the tasks (one task listing for all of them), each stopped first when asked."""
        names = {task_name(t) for t in tokens}
        targets = [t for t in self._run_tasks(run_id) if t.name in names]

        def remove(client: RosettaClient, task: Task) -> None:
            try:
                if stop_first and task.status not in ("stopped", "exited"):
                    self._act()
                    client.stop_task(task.uuid)
                self._act()
                client.delete_task(task.uuid)
            except RosettaError as exc:
                log.warning("site %s: task %s not removed: %s", self.site.name, task.name, exc)

        self._each(remove, targets)

    def cancel(self, native_ids: Sequence[str]) -> None:
        """Mark each step cancelled on the storage (what every later poll sees, from any
        process), then stop and delete the run's tasks."""
        by_run: dict[str, list[str]] = {}
        for token in native_ids:
            by_run.setdefault(token.split("-", 1)[0], []).append(token)
        for run_id, tokens in by_run.items():
            for token in tokens:
                self._act()
                self.client.upload(f"{self._run_folder(run_id)}status/", f"{step_of(token)}.cancelled",
                                   b"cancelled\n")
            self._remove_tasks(run_id, tokens, stop_first=True)
