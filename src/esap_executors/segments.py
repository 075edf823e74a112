"""A checkpointed step's segments: the scheduler jobs of one step that continued each other.

A job that stops at its checkpoint (it exits with the agreed code) is continued by the next
attempt of the same step in the same directory (retry_plan.next_spec). `esap status`, the run
report and its provenance show such a chain as one step, its segments listed inside it; a retry
for another cause stays an attempt of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .retry_plan import checkpointed
from .store import JobRecord


@dataclass(frozen=True)
class Step:
    record: JobRecord  # the last segment: the step's state, exit code and reason
    segments: tuple[JobRecord, ...] = ()  # every segment in order, the last included; () for one job


def steps_of(records: Sequence[JobRecord]) -> list[Step]:
    """The records as steps, in the order of each step's last segment among them."""
    chains: dict[tuple[str, str], list[JobRecord]] = {}
    for record in records:
        chains.setdefault((record.run_id, record.key), []).append(record)
    segments_of: dict[str, tuple[JobRecord, ...]] = {}  # by the job id of a chain's last segment
    for attempts in chains.values():
        if len(attempts) < 2:
            continue
        attempts.sort(key=lambda r: r.attempt)
        chain = [attempts[0]]
        for record in attempts[1:]:
            if checkpointed(chain[-1]) and record.attempt == chain[-1].attempt + 1:
                chain.append(record)
                continue
            if len(chain) > 1:
                segments_of[chain[-1].job_id] = tuple(chain)
            chain = [record]
        if len(chain) > 1:
            segments_of[chain[-1].job_id] = tuple(chain)
    if not segments_of:
        return [Step(record) for record in records]
    continued = {segment.job_id for chain in segments_of.values() for segment in chain[:-1]}
    return [Step(record, segments_of.get(record.job_id, ())) for record in records if record.job_id not in continued]


def segment_outcome(record: JobRecord) -> str:
    """One segment's end in words: `checkpointed (exit 85)`, `completed (exit 0)`, `running`."""
    if checkpointed(record):
        return f"checkpointed (exit {record.exit_code})"
    if record.exit_code is not None:
        return f"{record.state.value} (exit {record.exit_code})"
    return record.state.value
