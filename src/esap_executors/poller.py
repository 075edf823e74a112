"""The Tracker's clock: polls each site when due, one backend query per site per cycle, however
many jobs; the interval adapts (shorter after a change, shortest while jobs are ending, longer
while nothing changes)."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum

from .errors import BadInput
from .sites import PollSettings

log = logging.getLogger(__name__)


class Change(IntEnum):
    """What one poll cycle saw (true when anything changed)."""

    NONE = 0
    SOME = 1  # states moved (e.g. jobs started)
    ENDING = 2  # jobs reached a final state while others are still live: more are likely to end soon


@dataclass
class PollInterval:
    """Adaptive interval: `start` after a change, `floor` while jobs are ending (the next ends are
    likely near: a fan-out of similar jobs ends together), x1.5 while nothing changes, up to
    `ceiling`."""

    start: float
    floor: float
    ceiling: float
    factor: float = 1.5
    current: float = 0.0

    def __post_init__(self) -> None:
        self.current = max(self.floor, self.start)

    @classmethod
    def from_settings(cls, settings: PollSettings, overrides: Mapping[str, float] | None = None) -> PollInterval:
        """The site's settings, each replaced by its ESAP_POLL_* variable where set (`overrides`:
        as `env_overrides` read them)."""
        given = env_overrides() if overrides is None else overrides
        start = given.get("ESAP_POLL_START", settings.start)
        floor = given.get("ESAP_POLL_FLOOR", settings.floor)
        ceiling = given.get("ESAP_POLL_CEILING", settings.ceiling)
        return cls(start=start, floor=min(floor, ceiling), ceiling=ceiling)

    def after_cycle(self, changed: bool | Change) -> float:
        if changed == Change.ENDING:
            self.current = self.floor
        elif changed:
            self.current = max(self.floor, min(self.start, self.ceiling))
        else:
            self.current = max(self.floor, min(self.ceiling, self.current * self.factor))
        return self.jittered()

    def reset(self) -> None:
        self.current = max(self.floor, min(self.start, self.ceiling))

    def jittered(self) -> float:
        return max(self.floor, self.current * random.uniform(0.9, 1.1))


ENV_VARIABLES = ("ESAP_POLL_START", "ESAP_POLL_FLOOR", "ESAP_POLL_CEILING")


def env_overrides() -> dict[str, float]:
    """The ESAP_POLL_* variables that are set, in seconds. A value that is not a positive, finite
    number is bad input (0 would poll in a tight loop): BadInput naming the variable."""
    given: dict[str, float] = {}
    for name in ENV_VARIABLES:
        text = os.environ.get(name)
        if text is None or not text.strip():
            continue
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise BadInput(f"{text!r} is not a positive number of seconds", source="environment", field=name)
        given[name] = value
    return given


class StatusPoller:
    """Calls `cycle(site)` for each site when it is due.

    `cycle` returns (what changed, the site still has live jobs).
    """

    def __init__(self, cycle: Callable[[str], tuple[bool | Change, bool]],
                 intervals: Callable[[str], PollInterval]) -> None:
        self._cycle = cycle
        self._make_interval = intervals
        self._intervals: dict[str, PollInterval] = {}
        self._due: dict[str, float] = {}
        self._wake = threading.Condition()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.cycles = 0

    def track(self, site: str, *, soon: bool = True) -> None:
        """Make sure `site` is polled; new work resets its interval."""
        with self._wake:
            interval = self._intervals.get(site)
            if interval is None:
                interval = self._intervals[site] = self._make_interval(site)
            else:
                interval.reset()
            due = time.monotonic() + (min(interval.current, 1.0) if soon else interval.current)
            self._due[site] = min(self._due.get(site, due), due)
            self._wake.notify_all()
        self._ensure_thread()

    def untrack(self, site: str) -> None:
        with self._wake:
            self._due.pop(site, None)

    def poll_now(self) -> None:
        with self._wake:
            now = time.monotonic()
            for site in self._due:
                self._due[site] = now
            self._wake.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stopped = False
            self._thread = threading.Thread(target=self._loop, name="esap-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped:
                    if self._due:
                        site, due = min(self._due.items(), key=lambda item: item[1])
                        delay = due - time.monotonic()
                        if delay <= 0:
                            break
                        self._wake.wait(timeout=delay)
                    else:
                        self._wake.wait(timeout=5)
                if self._stopped:
                    return
                interval = self._intervals[site]
                del self._due[site]
            try:
                changed, more = self._cycle(site)
            except Exception:  # the poller must survive anything a backend does
                log.exception("status poll of site %s failed", site)
                changed, more = Change.NONE, True
            self.cycles += 1
            if more:
                with self._wake:
                    if site not in self._due:
                        self._due[site] = time.monotonic() + interval.after_cycle(changed)
