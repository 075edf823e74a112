"""The next attempt of a failed job: whether there is one, and its request after the policy's changes.

The Tracker asks `wants_retry` when a job fails; the Submitter asks `next_spec` for the request of
the new scheduler job, which is refused (RetryRefused, with the reason) rather than exceed the
policy's `up_to` or the site's limits.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .formats.durations import format_slurm_duration
from .job import JobSpec
from .limits import SiteLimits
from .retry_policy import Scale
from .states import JobState
from .store import JobRecord


class RetryRefused(Exception):
    """The policy would retry, but the changed request would exceed a limit."""


def wants_retry(record: JobRecord) -> bool:
    """A failed attempt with a retry left: its cause has a rule and the policy's maximum is not
    reached, or the job's plain retries (any cause, unchanged) are not used up."""
    if record.state is not JobState.FAILED:
        return False
    if checkpointed(record):
        return record.attempt < (record.spec.checkpoint.max_continuations if record.spec.checkpoint else 0)
    policy = record.spec.retry_policy
    if policy is not None and policy.rule_for(record.cause) is not None and record.attempt < policy.limit:
        return True
    return record.attempt < record.spec.retries


def checkpointed(record: JobRecord) -> bool:
    """The job stopped at its checkpoint: it exited with the agreed code."""
    checkpoint = record.spec.checkpoint
    return checkpoint is not None and record.exit_code == checkpoint.exit_code


def next_spec(record: JobRecord, limits: SiteLimits) -> tuple[JobSpec, str]:
    """The request of the next attempt and what changed in it, for people (`after TIMEOUT: ...`)."""
    spec = record.spec
    if checkpointed(record):  # the same step goes on where it stopped: the same working directory
        return spec.with_changes(cwd=record.workdir), (
            f"continues after its checkpoint (exit {record.exit_code}): segment {record.attempt + 2} "
            f"in {record.workdir}")
    cause = record.cause or "a failure"
    policy = spec.retry_policy
    rule = policy.rule_for(record.cause) if policy is not None else None
    if rule is None:
        return spec, f"after {cause}: retried unchanged (attempt {record.attempt + 2})"
    changes: dict[str, object] = {}
    notes: list[str] = []
    if rule.memory is not None:
        memory = _grown(cause, "memory", spec.memory_mib, rule.memory, limits.max_memory_mib, _mib)
        changes["memory_mib"] = memory
        notes.append(f"memory {_mib(spec.memory_mib or 0)} -> {_mib(memory)}")
    if rule.walltime is not None:
        walltime = _grown(cause, "walltime", spec.walltime_s, rule.walltime, limits.max_walltime_s, _seconds)
        changes["walltime_s"] = walltime
        notes.append(f"walltime {_seconds(spec.walltime_s or 0)} -> {_seconds(walltime)}")
    if rule.avoid_node:
        if record.node and record.node not in spec.avoid_nodes:
            changes["avoid_nodes"] = (*spec.avoid_nodes, record.node)
            notes.append(f"avoiding {record.node}")
        elif not record.node:
            notes.append("the failed node is unknown: none avoided")
    return spec.with_changes(**changes), f"after {cause}: " + (", ".join(notes) or "retried unchanged")


def _grown(cause: str, name: str, current: int | None, scale: Scale, site_max: int | None,
           spell: Callable[[int], str]) -> int:
    if current is None:
        raise RetryRefused(f"{cause}: the job requested no {name}, so there is none to raise")
    wanted = math.ceil(current * scale.factor) + scale.add
    caps = [(cap, who) for cap, who in ((scale.up_to, "the retry policy's up_to"),
                                        (site_max, f"the site's max_{name}")) if cap is not None]
    if caps:
        cap, who = min(caps, key=lambda c: c[0])
        if wanted > cap:
            if current >= cap:
                raise RetryRefused(f"{cause}: {name} is already {spell(current)}, the limit of {who}")
            wanted = cap
    if wanted <= current:
        raise RetryRefused(f"{cause}: the policy leaves {name} at {spell(current)}")
    return wanted


def _mib(value: int) -> str:
    return f"{value / 1024:g} GiB" if value >= 1024 and value % 1024 == 0 else f"{value} MiB"


def _seconds(value: int) -> str:
    return format_slurm_duration(value)
