"""How `esap run` shows the progress of many jobs: a bar on a terminal, plain lines otherwise.

Plain lines (one per state change) are what a log or a pipe gets: no control characters.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..states import JobState, JobStatus
from ..store import JobRecord

Listener = Callable[[JobRecord, JobStatus], None]


class RunProgress:
    """A run listener: a progress bar over `total` jobs when `stream` is a terminal and there are
    several; otherwise it hands every change to `plain` (one line each)."""

    def __init__(self, total: int, stream: TextIO, plain: Listener) -> None:
        self.plain = plain
        self.total = total
        self._states: dict[str, JobState] = {}  # by job key: a retried job counts once
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        if total > 1 and stream.isatty():
            self._progress = Progress(
                TextColumn("esap"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                TimeElapsedColumn(), console=Console(file=stream), transient=False,
            )
            self._task = self._progress.add_task(self._describe(), total=total)
            self._progress.start()

    @property
    def bar(self) -> bool:
        return self._progress is not None

    def on_change(self, record: JobRecord, status: JobStatus) -> None:
        if self._progress is None:
            self.plain(record, status)
            return
        with self._lock:
            self._states[record.key] = status.state
            done = sum(1 for state in self._states.values() if state.is_final)
            self._progress.update(self._task, completed=done, description=self._describe())

    def _describe(self) -> str:
        counts = Counter(state.value for state in self._states.values())
        return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "submitted"

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
