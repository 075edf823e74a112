"""Fault points: where the fault-injection tests (tests/faults/) stop the executor.

Inert unless the environment variable ESAP_FAULT_KILL_AT names a point; then the process
SIGKILLs itself when it reaches that point, as a crash there would. The points of a
submission, in order:

- ``before-record``: the jobs are prepared and authorized, nothing is in the store yet;
- ``after-record``: the jobs are in the store, none was sent to its scheduler;
- ``after-send``: the scheduler accepted the jobs, their native ids are not stored yet;
- ``stage-out``: a job ended and the first of its outputs was copied, the rest not yet.

And of the ESAP UWS worker: ``uws-front-ended``: a UWS job's front (its whole run) ended, its exit
code is not recorded and the gateway has heard nothing of the outcome yet.
"""

from __future__ import annotations

import os
import signal

POINTS = ("before-record", "after-record", "after-send", "stage-out")
UWS_POINTS = ("uws-front-ended",)
VARIABLE = "ESAP_FAULT_KILL_AT"


def reached(point: str) -> None:
    if os.environ.get(VARIABLE) == point:
        os.kill(os.getpid(), signal.SIGKILL)
