"""`esap status --watch [RUN]`: a live view of a run from the state store until it is final.

While the process that follows the run (its poller) lives, the view only reads the store; when
nobody follows it, the view asks each site itself, once per refresh for all of the run's live
jobs there. On a terminal it is a live table; in a pipe or a log, one plain line per change.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..run_owner import owner_alive
from ..sites import Catalogue
from ..states import JobState
from ..store import JobBrief, JobRecord, Store
from ..tracker import tracker_for

STATE_ORDER = [s.value for s in (JobState.QUEUED, JobState.STAGING, JobState.HELD, JobState.RUNNING,
                                 JobState.UNKNOWN, JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)]
SHOWN = 5  # slowest and failed jobs listed


@dataclass(frozen=True)
class RunView:
    """What the view shows of the run's jobs, worked out once per change of the store."""

    jobs: Sequence[JobBrief]
    counts: Counter[str]
    by_site: dict[str, Counter[str]]
    running: list[JobBrief]  # longest running first
    failed: list[JobBrief]
    final: bool
    last_update: float

    @classmethod
    def of(cls, jobs: Sequence[JobBrief]) -> RunView:
        by_site: dict[str, Counter[str]] = defaultdict(Counter)
        for job in jobs:
            by_site[job.site][job.state.value] += 1
        counts: Counter[str] = Counter()
        for site_counts in by_site.values():
            counts.update(site_counts)
        running = sorted((j for j in jobs if j.state is JobState.RUNNING), key=lambda j: j.updated)
        final = bool(jobs) and all(j.state.is_final for j in jobs)
        return cls(jobs, counts, dict(by_site), running, [j for j in jobs if j.state is JobState.FAILED],
                   final, max((j.updated for j in jobs), default=0.0))


@dataclass(frozen=True)
class Snapshot:
    run_id: str
    front: str
    created: float
    view: RunView
    followed: bool  # a live poller records the states
    now: float
    mark: tuple[int, float] = (0, 0.0)  # the store's change mark the jobs were read at

    @property
    def final(self) -> bool:
        return self.view.final

    @property
    def elapsed(self) -> float:
        end = self.view.last_update if self.final else self.now
        return max(0.0, end - self.created)

    def summary_line(self) -> str:
        counts = self.view.counts
        states = ", ".join(f"{counts[s]} {s}" for s in STATE_ORDER if counts[s])
        source = "final" if self.final else ("from its poller" if self.followed else "from the sites")
        return (f"run {self.run_id}: {len(self.view.jobs)} jobs, {states}; {source}; "
                f"elapsed {_duration(self.elapsed)}")


Refresh = Callable[[Sequence[JobRecord]], object]  # asks the sites about live jobs (a Tracker's refresh)


def take_snapshot(store: Store, refresh: Refresh | None, run_id: str, front: str, created: float,
                  previous: Snapshot | None = None) -> Snapshot:
    """The run now; the jobs are read again only when the store's change mark moved."""
    followed = owner_alive(store, run_id)
    if previous is not None and not followed and refresh is not None:
        live = [j.job_id for j in previous.view.jobs if not j.state.is_final and j.native_id]
        if live:
            refresh(store.jobs_by_ids(live))  # one query per site for all of them
    mark = store.run_change_mark(run_id)
    if previous is not None and previous.mark == mark:
        return replace(previous, followed=followed, now=time.time())
    jobs = store.job_states_of_run(run_id)
    live = [j.job_id for j in jobs if not j.state.is_final and j.native_id]
    if previous is None and live and not followed and refresh is not None:
        refresh(store.jobs_by_ids(live))
        return take_snapshot(store, None, run_id, front, created)
    return Snapshot(run_id, front, created, RunView.of(jobs), followed, time.time(), mark)


@contextmanager
def site_refresh(store: Store, catalogue: Catalogue | None) -> Iterator[Refresh | None]:
    """One Tracker (its sites' backends kept open) for the whole watch; None without a catalogue."""
    if catalogue is None:
        yield None
        return
    with tracker_for(store, catalogue) as tracker:
        yield tracker.refresh


def render(snapshot: Snapshot) -> Group:
    view = snapshot.view
    counts = view.counts
    states = [s for s in STATE_ORDER if counts[s]]
    by_site = view.by_site
    source = "store (its poller is alive)" if snapshot.followed else "the sites (nobody else follows the run)"
    header = Text.assemble(
        (f"esap run {snapshot.run_id}", "bold"), f" ({snapshot.front})  elapsed {_duration(snapshot.elapsed)}  ",
        ("final" if snapshot.final else f"states from {source}", "green" if snapshot.final else "dim"),
    )
    table = Table(title="jobs per state", title_justify="left")
    table.add_column("site")
    for state in states:
        table.add_column(state, justify="right")
    table.add_column("total", justify="right")
    for site in sorted(by_site):
        table.add_row(site, *[str(by_site[site][s] or "") for s in states], str(sum(by_site[site].values())))
    if len(by_site) > 1:
        table.add_row("all", *[str(counts[s]) for s in states], str(len(view.jobs)), style="bold")
    parts: list[Table | Text] = [header, table]
    running = view.running
    if running:
        slow = Table(title="running longest", title_justify="left")
        for column in ("job", "name", "site", "scheduler id", "running for"):
            slow.add_column(column)
        for job in running[:SHOWN]:
            slow.add_row(job.job_id, job.name[:30], job.site, job.native_id or "-",
                         _duration(snapshot.now - job.updated))
        parts.append(slow)
    failed = view.failed
    if failed:
        failures = Table(title=f"failed ({len(failed)})", title_justify="left")
        for column in ("job", "name", "site", "scheduler id", "reason"):
            failures.add_column(column)
        for job in failed[:SHOWN]:
            failures.add_row(job.job_id, job.name[:30], job.site, job.native_id or "-", job.reason or "")
        parts.append(failures)
    return Group(*parts)


def watch(store: Store, catalogue: Catalogue | None, run_id: str, front: str, created: float, *,
          interval: float, stream: TextIO, terminal: bool) -> Snapshot:
    """Refresh every `interval` seconds until the run is final; returns the last snapshot."""
    with site_refresh(store, catalogue) as refresh:
        snapshot = take_snapshot(store, refresh, run_id, front, created)
        if not terminal:
            last = ""
            while True:
                line = snapshot.summary_line().rsplit(";", 1)[0]
                if line != last:
                    print(f"{time.strftime('%H:%M:%S')} {snapshot.summary_line()}", file=stream, flush=True)
                    last = line
                if snapshot.final:
                    return snapshot
                time.sleep(interval)
                snapshot = take_snapshot(store, refresh, run_id, front, created, snapshot)
        console = Console(file=stream)
        with Live(render(snapshot), console=console, auto_refresh=False) as live:
            while not snapshot.final:
                time.sleep(interval)
                snapshot = take_snapshot(store, refresh, run_id, front, created, snapshot)
                live.update(render(snapshot), refresh=True)
        return snapshot


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
