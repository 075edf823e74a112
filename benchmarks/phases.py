"""Where the time of N trivial jobs goes, esap against the scheduler's own floor (issue 21).

A timeline per measured run, from three clocks: the benchmark's (submission start, submit call
returned, all final states seen, wait returned), the scheduler's own per-job Submit/Start/End
(whole seconds in SLURM's accounting) and the store's transitions (when the tracker recorded each
final state); plus, for esap's array tasks, the gap from job-script start (SLURM opens the array's
stream file) to command start (the task opens its own stream files), from the files' mtimes.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class SchedulerTimes:
    submit: float
    start: float
    end: float


@dataclass(frozen=True)
class Timeline:
    """Seconds since the submission started, and per-job means."""

    total: float
    submit: float  # until the submit call returned (the floor: sbatch returned)
    first_start: float  # the scheduler started the first job
    last_end: float  # the scheduler ended the last job
    last_seen: float  # the last final state was recorded (store) / seen (the floor's squeue loop)
    queued_mean: float  # per job: scheduler Start - Submit
    span_per_job_ms: float  # (last end - first start) / jobs: the scheduler's cost per job
    seen_lag_mean: float | None  # per job: final state recorded - scheduler End
    script_to_command_ms: float | None  # per job: job script start -> command start

    COLUMNS = ("total", "submit", "to 1st start", "run span", "last end -> seen", "seen -> returned",
               "queued/job", "span/job ms", "end->seen/job", "script->cmd ms")

    def cells(self) -> list[str]:
        def opt(value: float | None, fmt: str) -> str:
            return "-" if value is None else format(value, fmt)

        return [f"{self.total:.2f}", f"{self.submit:.2f}", f"{self.first_start - self.submit:.2f}",
                f"{self.last_end - self.first_start:.2f}", f"{self.last_seen - self.last_end:.2f}",
                f"{self.total - self.last_seen:.2f}", f"{self.queued_mean:.2f}", f"{self.span_per_job_ms:.1f}",
                opt(self.seen_lag_mean, ".2f"), opt(self.script_to_command_ms, ".1f")]


def timeline(t0: float, submitted: float, returned: float, scheduler: Mapping[str, SchedulerTimes],
             seen: Mapping[str, float] | None, seen_all: float | None,
             script_gaps: Sequence[float] = ()) -> Timeline:
    """`seen`: native id -> when its final state was recorded (esap); `seen_all`: when the floor's
    loop saw the queue empty. All times are epoch seconds."""
    times = list(scheduler.values())
    if not times:
        raise SystemExit("the scheduler reported no job times")
    lags = [seen[n] - scheduler[n].end for n in scheduler if seen and n in seen]
    last_seen = max(seen.values()) if seen else (seen_all or returned)
    first_start = min(t.start for t in times)
    last_end = max(t.end for t in times)
    return Timeline(
        total=returned - t0,
        submit=submitted - t0,
        first_start=first_start - t0,
        last_end=last_end - t0,
        last_seen=last_seen - t0,
        queued_mean=statistics.fmean(t.start - t.submit for t in times),
        span_per_job_ms=1000 * (last_end - first_start) / len(times),
        seen_lag_mean=statistics.fmean(lags) if lags else None,
        script_to_command_ms=1000 * statistics.fmean(script_gaps) if script_gaps else None,
    )


def final_times(transitions: Mapping[str, Iterable[tuple[str | None, str, float, str | None]]],
                native_of: Mapping[str, str], final: Iterable[str]) -> dict[str, float]:
    """native id -> when the store recorded the job's final state."""
    finals = set(final)
    found = {}
    for job_id, rows in transitions.items():
        native = native_of.get(job_id)
        times = [when for _, new, when, _ in rows if new in finals]
        if native and times:
            found[native] = times[-1]
    return found


def median_timeline(samples: Sequence[Timeline]) -> Timeline:
    """Field by field median of the rounds."""
    def med(values: Iterable[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    fields = {}
    for name in Timeline.__dataclass_fields__:
        fields[name] = med(getattr(s, name) for s in samples)
    return Timeline(**fields)  # type: ignore[arg-type]


def table(rows: Sequence[tuple[str, Timeline]], floor: Timeline) -> list[str]:
    lines = ["| run | " + " | ".join(Timeline.COLUMNS) + " | x floor |",
             "|---|" + "---:|" * (len(Timeline.COLUMNS) + 1)]
    for label, row in rows:
        lines.append(f"| {label} | " + " | ".join(row.cells()) + f" | {row.total / floor.total:.2f} |")
    return lines
