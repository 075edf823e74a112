"""Job states from a run's job event log (no schedd query), or from job ads as the fallback."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import htcondor2 as htcondor

from ...states import JobState, JobStatus

log = logging.getLogger(__name__)

EventType = htcondor.JobEventType

# HTCondor's JobStatus codes in job ads
AD_STATES = {
    1: JobState.QUEUED,  # Idle
    2: JobState.RUNNING,
    3: JobState.CANCELLED,  # Removed
    4: JobState.COMPLETED,
    5: JobState.HELD,
    6: JobState.RUNNING,  # Transferring output
    7: JobState.RUNNING,  # Suspended
}


@dataclass
class Tracked:
    """What the event log (or an ad) says about one proc."""

    state: JobState = JobState.QUEUED
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    hold_reason: str | None = None
    holds: int = 0
    releases: int = 0
    release_sent_at_hold: int = 0  # the hold count when esap last asked for a release
    removal_sent: bool = False
    node: str | None = None  # the machine it last ran on (a retry may avoid it)

    def status(self) -> JobStatus:
        return JobStatus(self.state, exit_code=self.exit_code, signal=self.signal, reason=self.reason,
                         node=self.node)

    def fail_held(self) -> None:
        self.state = JobState.FAILED
        self.reason = f"held: {self.hold_reason or 'no reason given'}"

    def mark_missing(self) -> None:
        """Neither queue nor history shows it (never materialized, or removed by hand)."""
        if self.state in (JobState.QUEUED, JobState.UNKNOWN):
            self.state = JobState.UNKNOWN
            self.reason = "neither in the schedd's queue nor in its history"

    def update_from_ad(self, ad: Mapping[str, Any]) -> None:
        if self.state.is_final:
            return
        state = AD_STATES.get(int(ad.get("JobStatus", 1)), JobState.QUEUED)
        if state is JobState.COMPLETED:
            if ad.get("ExitBySignal"):
                self.signal = int(ad.get("ExitSignal", 0)) or None
                self.state = JobState.FAILED
                self.reason = f"killed by signal {self.signal}"
                return
            self.exit_code = int(ad.get("ExitCode", 0))
        elif state is JobState.HELD:
            if self.state is not JobState.HELD:
                self.holds = max(self.holds + 1, int(ad.get("NumHolds", 1)))
            self.hold_reason = str(ad.get("HoldReason", "")) or None
            self.reason = self.hold_reason
        elif state is JobState.CANCELLED:
            if self.state is JobState.HELD:
                self.fail_held()
                return
            self.reason = str(ad.get("RemoveReason", "")) or "removed"
        self.state = state


class RunEventLog:
    """Incremental reader of the one event log all jobs of a run write to."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.jobs: dict[str, Tracked] = {}
        self.last_news = time.monotonic()
        self._reader: Any = None
        self._applied = 0  # events applied so far
        self._skip = 0

    def read(self) -> int:
        """Apply the events written since the last call; returns how many there were."""
        if self._reader is None:
            if not os.path.exists(self.path):
                return 0
            self._reader = htcondor.JobEventLog(self.path)
            self._skip = self._applied  # a reopened log starts again from its first event
        count = 0
        try:
            for event in self._reader.events(stop_after=0):
                if self._skip:
                    self._skip -= 1
                    continue
                self.apply(event)
                self._applied += 1
                count += 1
        except Exception as exc:  # e.g. a line being written: reopen and skip what was applied
            log.debug("event log %s: %s", self.path, exc)
            self._reader = None
        if count:
            self.last_news = time.monotonic()
        return count

    def silent_for(self) -> float:
        return time.monotonic() - self.last_news

    def apply(self, event: Any) -> None:
        native = f"{event.cluster}.{event.proc}"
        kind = event.type
        job = self.jobs.setdefault(native, Tracked())
        if job.state.is_final:
            return
        if kind == EventType.EXECUTE:
            job.state = JobState.RUNNING
            job.node = machine_of(event) or job.node
        elif kind in (EventType.JOB_EVICTED, EventType.JOB_RECONNECT_FAILED, EventType.SHADOW_EXCEPTION):
            # requeued by HTCondor: it will run again, this is not a failure
            if job.state is JobState.RUNNING:
                job.state = JobState.QUEUED
        elif kind == EventType.JOB_TERMINATED:
            if event.get("TerminatedNormally", True):
                job.exit_code = int(event.get("ReturnValue", 0))
                job.state = JobState.COMPLETED
            else:
                job.signal = int(event.get("TerminatedBySignal", 0)) or None
                job.state = JobState.FAILED
                job.reason = f"killed by signal {job.signal}"
        elif kind == EventType.JOB_HELD:
            job.state = JobState.HELD
            job.holds += 1
            job.hold_reason = str(event.get("HoldReason", "")) or None
            job.reason = job.hold_reason
        elif kind == EventType.JOB_RELEASED:
            job.state = JobState.QUEUED
            job.releases += 1
        elif kind == EventType.JOB_ABORTED:
            if job.state is JobState.HELD:
                job.fail_held()  # esap removes jobs it gave up on
            else:
                job.state = JobState.CANCELLED
                job.reason = str(event.get("Reason", "")) or "removed"

    def apply_ad(self, native: str, ad: Mapping[str, Any]) -> None:
        """Fallback: the job's ad from the queue or history."""
        self.jobs.setdefault(native, Tracked()).update_from_ad(ad)


def machine_of(event: Any) -> str | None:
    """The execute machine's name (its ad's `Machine`) from an EXECUTE event."""
    slot = str(event.get("SlotName", "") or "")
    if "@" in slot:
        return slot.split("@", 1)[1]
    host = str(event.get("ExecuteHost", "") or "")  # <ip:port?addrs=...&alias=name>
    match = re.search(r"alias=([^&>]+)", host)
    return match.group(1) if match else None


def status_of_ad(ad: Mapping[str, Any]) -> JobStatus:
    tracked = Tracked()
    tracked.update_from_ad(ad)
    return tracked.status()
