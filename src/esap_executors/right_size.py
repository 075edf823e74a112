"""Requests right-sized from what earlier runs of the same step used on the same site.

Every run remembers what its completed jobs used (usage_history in the store, per workflow step,
Snakemake rule or job name, and site). With `--right-size` the next run asks for a high
percentile of the recorded peaks times a margin: never below a floor, never above the user's own
request (a retry by cause raises it again if the job needs more).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .formats.durations import format_slurm_duration
from .job import JobSpec
from .sites import Catalogue
from .states import JobState
from .store import JobRecord, Store, UsageRow

PERCENTILE = 0.95
MEMORY_MARGIN = 1.25
WALLTIME_MARGIN = 1.5
MEMORY_FLOOR_MIB = 64
WALLTIME_FLOOR_S = 60


def step_of(spec: JobSpec, name: str) -> str:
    """What makes jobs of different runs the same step: the rule, the CWL step, else the name."""
    return spec.labels.get("snakemake_rule") or spec.labels.get("cwl_step") or name


def remember_usage(store: Store, catalogue: Catalogue, records: Sequence[JobRecord]) -> int:
    """Record what the run's completed jobs used (one accounting query per site); how many rows."""
    from .usage import usage_of

    completed = [r for r in records if r.state is JobState.COMPLETED]
    rows = [
        UsageRow(u.record.job_id, step_of(u.record.spec, u.record.name), u.record.site,
                 u.usage.max_memory_mib, u.usage.wall_s)
        for u in usage_of(store, catalogue, completed)
        if u.usage is not None and (u.usage.max_memory_mib or u.usage.wall_s)
    ]
    store.record_usage(rows)
    return len(rows)


def right_size(store: Store, spec: JobSpec, step: str, site: str) -> tuple[JobSpec, str | None]:
    """The request from the step's recorded peaks on the site, and what changed (None: nothing)."""
    history = store.usage_history(step, site)
    changes: dict[str, int] = {}
    notes: list[str] = []
    memories = [r.max_memory_mib for r in history if r.max_memory_mib]
    if memories:
        wanted = max(MEMORY_FLOOR_MIB, math.ceil(_percentile(memories) * MEMORY_MARGIN))
        if spec.memory_mib is None or wanted < spec.memory_mib:
            changes["memory_mib"] = wanted
            notes.append(f"memory {_mib(spec.memory_mib)} -> {wanted} MiB")
    walls = [r.wall_s for r in history if r.wall_s]
    if walls:
        wanted = max(WALLTIME_FLOOR_S, math.ceil(_percentile(walls) * WALLTIME_MARGIN))
        if spec.walltime_s is None or wanted < spec.walltime_s:
            changes["walltime_s"] = wanted
            notes.append(f"walltime {_time(spec.walltime_s)} -> {format_slurm_duration(wanted)}")
    if not changes:
        return spec, None
    count = len(history)
    return spec.with_changes(**changes), (
        f"right-sized from {count} earlier job(s) of {step} on {site}: " + ", ".join(notes))


def _percentile(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(PERCENTILE * len(ordered)) - 1)]


def _mib(value: int | None) -> str:
    return "unset" if value is None else f"{value} MiB"


def _time(value: int | None) -> str:
    return "unset" if value is None else format_slurm_duration(value)
