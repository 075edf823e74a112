"""A site's submission limits, honoured by the submitter: how many jobs it may send now.

`max_submit_per_minute`: never more scheduler jobs in any 60 s than that (a sliding window of the
last sends, the strict form of a token bucket: the bucket holds a minute's tokens and each comes
back a minute after it was spent). `max_queued`: never more of this process's jobs sent and not
ended on the site at once. Jobs beyond either wait, recorded in the store, and a dispatcher thread
sends them as tokens come back and jobs end. The limits come from sites.yaml and from what the
scheduler says (SLURM's MaxSubmitJobs of the user's association), the smaller winning.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .store import JobRecord

log = logging.getLogger(__name__)

WINDOW_S = 60.0
IDLE_WAKE_S = 0.5  # while jobs wait for others to end: how often the queue is looked at


@dataclass(frozen=True)
class SubmitLimits:
    max_submit_per_minute: int | None = None
    max_queued: int | None = None

    @property
    def any(self) -> bool:
        return self.max_submit_per_minute is not None or self.max_queued is not None

    def tighter(self, other: SubmitLimits) -> SubmitLimits:
        return SubmitLimits(_least(self.max_submit_per_minute, other.max_submit_per_minute),
                            _least(self.max_queued, other.max_queued))


def _least(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


class SubmitRate:
    """At most `per_minute` jobs in any 60 s window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self._sent: deque[float] = deque()

    def room(self) -> int:
        now = self.clock()
        while self._sent and self._sent[0] <= now - WINDOW_S:
            self._sent.popleft()
        return self.per_minute - len(self._sent)

    def spend(self, count: int) -> None:
        now = self.clock()
        self._sent.extend([now] * count)

    def next_room_in(self) -> float:
        """Seconds until a job may be sent again (0 when one may be now)."""
        if self.room() > 0:
            return 0.0
        return max(0.0, self._sent[0] + WINDOW_S - self.clock())


class Dispatcher:
    """Jobs of throttled sites waiting to be sent, and the thread that sends them."""

    def __init__(self, send: Callable[[str, Sequence[JobRecord]], None],
                 live_count: Callable[[str], int]) -> None:
        self._send = send
        self._live_count = live_count
        self._waiting: dict[str, deque[JobRecord]] = {}
        self._limits: dict[str, SubmitLimits] = {}
        self._rates: dict[str, SubmitRate] = {}
        self._sending: dict[str, int] = {}  # jobs taken from a queue and not yet confirmed sent
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def send(self, site: str, limits: SubmitLimits, records: Sequence[JobRecord]) -> None:
        """Send what the limits allow now; the rest later, in order."""
        with self._lock:
            self._limits[site] = limits
            if limits.max_submit_per_minute is not None and site not in self._rates:
                self._rates[site] = SubmitRate(limits.max_submit_per_minute)
            self._waiting.setdefault(site, deque()).extend(records)
        self._dispatch(site)
        with self._lock:
            if self._waiting.get(site) and self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="esap-dispatcher", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def waiting(self, site: str | None = None) -> int:
        with self._lock:
            return sum(len(q) for s, q in self._waiting.items() if site is None or s == site)

    def _room(self, site: str) -> int:
        limits = self._limits[site]
        room = len(self._waiting.get(site) or ())
        rate = self._rates.get(site)
        if rate is not None:
            room = min(room, rate.room())
        if limits.max_queued is not None:
            # jobs another thread is sending are not live yet but count against the limit
            room = min(room, limits.max_queued - self._live_count(site) - self._sending.get(site, 0))
        return max(0, room)

    def _dispatch(self, site: str) -> float:
        """Send what may go now; seconds until more may (IDLE_WAKE_S when jobs must end first)."""
        with self._lock:
            queue = self._waiting.get(site)
            if not queue:
                return IDLE_WAKE_S
            count = self._room(site)
            batch = [queue.popleft() for _ in range(count)]
            rate = self._rates.get(site)
            if rate is not None and batch:
                rate.spend(len(batch))
            self._sending[site] = self._sending.get(site, 0) + len(batch)
        if batch:
            try:
                self._send(site, batch)
            except Exception:
                log.exception("site %s: sending %d waiting job(s) failed", site, len(batch))
            finally:
                with self._lock:
                    self._sending[site] -= len(batch)
        with self._lock:
            rate = self._rates.get(site)
            if not self._waiting.get(site):
                return IDLE_WAKE_S
            wait = rate.next_room_in() if rate is not None else 0.0
            return max(wait, 0.05) if wait else IDLE_WAKE_S

    def _loop(self) -> None:
        while True:
            with self._lock:
                sites = [s for s, q in self._waiting.items() if q]
                if self._stopping or not sites:
                    self._thread = None
                    return
            delay = min(self._dispatch(site) for site in sites)
            with self._lock:
                if not self._stopping:
                    self._lock.wait(timeout=min(delay, IDLE_WAKE_S))

    def close(self) -> None:
        """Stop sending: jobs still waiting stay recorded, unsent (a reopened run sends them)."""
        with self._lock:
            self._stopping = True
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=10)
