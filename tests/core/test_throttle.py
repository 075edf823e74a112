"""A site's max_queued holds while jobs are sent from two threads (a front's submit and the
dispatcher's thread sending the jobs that waited)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, cast

from esap_executors.store import JobRecord
from esap_executors.throttle import Dispatcher, SubmitLimits


def test_max_queued_counts_the_jobs_another_thread_is_sending() -> None:
    lock = threading.Lock()
    live = 0  # sent and not ended, as the Tracker counts them once a submission is confirmed
    sending = 0
    most = 0  # the most jobs at once in the scheduler's queue or on their way there
    sent: list[Any] = []
    first_in = threading.Event()
    release = threading.Event()

    def send(site: str, batch: Sequence[JobRecord]) -> None:
        nonlocal live, sending, most
        with lock:
            sending += len(batch)
            most = max(most, live + sending)
        if not first_in.is_set():  # the first submission is slow (a busy controller)
            first_in.set()
            release.wait(30)
        with lock:
            sending -= len(batch)
            live += len(batch)
            sent.extend(batch)

    dispatcher = Dispatcher(send, lambda site: live)
    limits = SubmitLimits(max_queued=2)
    first = threading.Thread(target=dispatcher.send, args=("site", limits, cast(list[JobRecord], ["a", "b"])))
    first.start()
    try:
        assert first_in.wait(30)
        dispatcher.send("site", limits, cast(list[JobRecord], ["c", "d"]))  # while a and b are on their way
        release.set()
        first.join(30)
        assert most == 2
        assert dispatcher.waiting() == 2  # c and d wait for a and b to end
        with lock:
            live = 0  # a and b ended
        deadline = time.monotonic() + 30
        while len(sent) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(sent) == ["a", "b", "c", "d"]
        assert most == 2
    finally:
        release.set()
        dispatcher.close()
