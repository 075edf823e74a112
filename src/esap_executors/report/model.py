"""What a run did, job by job: times, places, outcome and usage against the request.

Times come from the store's transitions (what the run's poller saw). Where a site accounts a
job's wall time (`Backend.usage`) and the poller never saw the job running (it started and
ended between two polls), its start is the accounted wall time before its end.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from ..backends.base import Usage
from ..errors import BadInput
from ..segments import steps_of
from ..states import JobState
from ..store import JobRecord, Store

Transition = tuple[str | None, str, float, str | None]

STARTED_STATES = frozenset({JobState.RUNNING.value, JobState.STAGING.value})
CHECKPOINTED = "checkpointed"  # the state of a step's segment that a continuation went on from


@dataclass(frozen=True)
class JobReport:
    job_id: str
    name: str
    group: str  # the rule or step (for the timeline's grouping)
    site: str
    native_id: str | None
    state: str
    exit_code: int | None
    signal: int | None
    reason: str | None
    attempt: int
    queued: float
    started: float | None
    ended: float | None
    started_from: str | None  # "store" (seen by the poller) or "accounting" (end minus wall time)
    container: str | None
    cores: int
    memory_mib: int | None
    walltime_s: int | None
    wall_s: float | None
    cpu_s: float | None
    max_memory_mib: int | None
    missing_outputs: tuple[str, ...]
    cause: str | None = None  # causes.Cause of a failure
    retry_note: str | None = None  # a retry: what changed in its request; a failure: why no retry
    # a checkpointed step: its scheduler jobs in order (this report is the step as a whole:
    # the last segment's outcome, the first one's queue time, run and CPU time summed)
    segments: tuple[JobReport, ...] = ()

    @property
    def run_s(self) -> float | None:
        if self.wall_s is not None:
            return self.wall_s
        if self.started is not None and self.ended is not None:
            return self.ended - self.started
        return None

    @property
    def cpu_efficiency(self) -> float | None:
        run_s = self.run_s
        if self.cpu_s is None or not run_s:
            return None
        return self.cpu_s / (run_s * self.cores)

    @property
    def memory_efficiency(self) -> float | None:
        if self.max_memory_mib is None or not self.memory_mib:
            return None
        return self.max_memory_mib / self.memory_mib

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)  # flat: much faster than asdict() over 10,000 jobs
        data["missing_outputs"] = list(self.missing_outputs)
        data["cpu_efficiency"] = self.cpu_efficiency
        data["memory_efficiency"] = self.memory_efficiency
        data["segments"] = [segment.as_dict() for segment in self.segments]
        return data


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    key: str
    front: str
    created: float
    jobs: int
    states: Mapping[str, int]
    sites: Mapping[str, int]
    started: float | None  # first job queued
    ended: float | None  # last job ended (None while a job is live)
    wall_s: float | None
    cpu_hours_used: float | None  # None: no job's CPU time is accounted
    cpu_hours_reserved: float  # cores x run time of every job that ran
    cpu_hours_requested: float | None  # cores x walltime request (None: a job has no walltime)
    efficiency: float | None  # CPU used over reserved, among the jobs with accounted CPU
    final: bool

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["states"] = dict(self.states)
        data["sites"] = dict(self.sites)
        return data


@dataclass(frozen=True)
class RunReport:
    summary: RunSummary
    jobs: tuple[JobReport, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.summary.as_dict(), "jobs": [job.as_dict() for job in self.jobs]}


def unknown_run(run_id: str) -> BadInput:
    return BadInput(f"no run {run_id!r} in the state store (see `esap runs`)", field="RUN")


def build_report(store: Store, run_id: str, usage: Mapping[str, Usage] | None = None, *,
                 records: Sequence[JobRecord] | None = None) -> RunReport:
    """The report of a run from the store; `usage` by esap job id, where sites accounted it."""
    run = store.run(run_id)
    if run is None:
        raise unknown_run(run_id)
    _, key, front, created = run
    if records is None:
        records = store.jobs_of_run(run_id)
    transitions = store.transitions_of_run(run_id)
    usage = usage or {}
    jobs = tuple(
        job_report(step.record, transitions.get(step.record.job_id, []), usage.get(step.record.job_id))
        if not step.segments else
        step_report([job_report(r, transitions.get(r.job_id, []), usage.get(r.job_id)) for r in step.segments])
        for step in steps_of(records)
    )
    return RunReport(summarize(run_id, key, front, created, jobs), jobs)


def step_report(segments: Sequence[JobReport]) -> JobReport:
    """A checkpointed step as one: the last segment's outcome, the first one's queue and start,
    the segments' run time (not the waits between them) and CPU time summed, the highest peak."""
    first, last = segments[0], segments[-1]
    runs = [segment.run_s for segment in segments]
    cpus = [segment.cpu_s for segment in segments]
    peaks = [segment.max_memory_mib for segment in segments if segment.max_memory_mib is not None]
    started = next((s.started for s in segments if s.started is not None), None)
    return replace(
        last, queued=first.queued, started=started,
        started_from=next((s.started_from for s in segments if s.started is not None), None),
        wall_s=sum(r for r in runs if r is not None) if all(r is not None for r in runs) else None,
        cpu_s=sum(c for c in cpus if c is not None) if all(c is not None for c in cpus) else None,
        max_memory_mib=max(peaks) if peaks else None,
        segments=(*(replace(s, state=CHECKPOINTED) for s in segments[:-1]), last))


def job_report(record: JobRecord, transitions: Sequence[Transition], usage: Usage | None) -> JobReport:
    queued = transitions[0][2] if transitions else record.created
    started = next((t[2] for t in transitions if t[1] in STARTED_STATES), None)
    ended = None
    if record.state.is_final:
        ended = next((t[2] for t in transitions if t[1] == record.state.value), record.updated)
    started_from = None if started is None else "store"
    wall_s = usage.wall_s if usage else None
    if started is None and ended is not None and wall_s is not None:
        started, started_from = max(queued, ended - wall_s), "accounting"
    if started is not None:
        started = max(started, queued)
        if ended is not None:
            started = min(started, ended)
    spec = record.spec
    labels = spec.labels
    group = labels.get("snakemake_rule") or labels.get("cwl_step") or record.name
    if "cwl_step" in labels and ":" in record.key:  # cwltool numbers a scatter's jobs (say, say_2): the
        group = record.key.split(":", 1)[0]  # key of esap-cwltool's jobs starts with the step's name
    return JobReport(
        job_id=record.job_id, name=record.name, group=group, site=record.site,
        native_id=record.native_id, state=record.state.value, exit_code=record.exit_code,
        signal=record.signal, reason=record.reason, attempt=record.attempt,
        queued=queued, started=started, ended=ended, started_from=started_from,
        container=spec.container.image if spec.container else None,
        cores=spec.cores, memory_mib=spec.memory_mib, walltime_s=spec.walltime_s,
        wall_s=wall_s, cpu_s=usage.cpu_s if usage else None,
        max_memory_mib=usage.max_memory_mib if usage else None,
        missing_outputs=record.missing_outputs,
        cause=record.cause, retry_note=record.retry_note,
    )


def summarize(run_id: str, key: str, front: str, created: float, jobs: Sequence[JobReport]) -> RunSummary:
    final = bool(jobs) and all(JobState(job.state).is_final for job in jobs)
    started = min((job.queued for job in jobs), default=None)
    ends = [job.ended for job in jobs if job.ended is not None]
    ended = max(ends) if final and ends else None
    accounted = [job for job in jobs if job.cpu_s is not None and job.run_s]
    used = sum(job.cpu_s or 0.0 for job in accounted)
    reserved = sum((job.run_s or 0.0) * job.cores for job in jobs)
    walltimes = [job.walltime_s for job in jobs]
    requested = (None if not jobs or any(w is None for w in walltimes)
                 else sum((w or 0) * job.cores for w, job in zip(walltimes, jobs, strict=True)) / 3600)
    accounted_reserved = sum((job.run_s or 0.0) * job.cores for job in accounted)
    return RunSummary(
        run_id=run_id, key=key, front=front, created=created, jobs=len(jobs),
        states=dict(sorted(Counter(job.state for job in jobs).items())),
        sites=dict(sorted(Counter(job.site for job in jobs).items())),
        started=started, ended=ended,
        wall_s=None if started is None or ended is None else ended - started,
        cpu_hours_used=used / 3600 if accounted else None,
        cpu_hours_reserved=reserved / 3600,
        cpu_hours_requested=requested,
        efficiency=used / accounted_reserved if accounted_reserved else None,
        final=final,
    )
