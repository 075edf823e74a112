"""Checkpoint and continue: a signal before the time limit, and a continuation after the agreed exit.

A job that declares `SIGNAL@BEFORE[:CODE]` (`esap run --checkpoint USR1@2m`, the CWL hint
`esap:Checkpoint`, the Snakemake resource `esap_checkpoint`) receives SIGNAL BEFORE its walltime
ends: SLURM sends it (`--signal=B:SIG@S`); on the local site and HTCondor a timer in the job's
wrapper does. When the job then exits with CODE (default 85), the Tracker submits a continuation:
a new scheduler job of the same step in the same working directory, up to `max` times.
"""

from __future__ import annotations

import re
import signal as signals
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import BadInput
from .formats.durations import parse_walltime_seconds

DEFAULT_EXIT_CODE = 85
DEFAULT_CONTINUATIONS = 10
_FORM = re.compile(r"^(?P<signal>[A-Za-z0-9]+)@(?P<before>[^:]+)(:(?P<code>\d+))?$")

# The wrapper's timer (POSIX sh): the command in the background, SIGNAL after DELAY seconds,
# the command's exit code as the job's. Used where the scheduler sends no signal itself.
WRAPPER = (
    '_delay=$1; _signal=$2; shift 2; "$@" & _child=$!; '
    '( sleep "$_delay" && kill -s "$_signal" "$_child" ) 2>/dev/null & _timer=$!; '
    'trap \'kill -s TERM "$_child" 2>/dev/null\' TERM; '
    'wait "$_child"; _code=$?; kill "$_timer" 2>/dev/null; exit "$_code"'
)


@dataclass(frozen=True)
class Checkpoint:
    signal: str  # the name without SIG: USR1, TERM, ...
    before_s: int
    exit_code: int = DEFAULT_EXIT_CODE
    max_continuations: int = DEFAULT_CONTINUATIONS


def parse_checkpoint(text: str, *, field: str = "--checkpoint") -> Checkpoint:
    match = _FORM.match(text.strip())
    if not match:
        raise BadInput(f"{text!r}: expected SIGNAL@BEFORE[:EXIT_CODE], e.g. USR1@2m", field=field)
    name = match["signal"].upper().removeprefix("SIG")
    if name.isdigit() or not hasattr(signals, "SIG" + name):
        raise BadInput(f"{match['signal']!r} is not a signal name (e.g. USR1, TERM)", field=field)
    before = parse_walltime_seconds(match["before"], field=field)
    code = int(match["code"]) if match["code"] else DEFAULT_EXIT_CODE
    if not 1 <= code <= 255:
        raise BadInput(f"{code}: an exit code is 1 to 255", field=field)
    return Checkpoint(signal=name, before_s=before, exit_code=code)


def wrapped(argv: Sequence[str], checkpoint: Checkpoint | None, walltime_s: int | None) -> list[str]:
    """The command under the wrapper's timer, where the job declares a checkpoint and a walltime."""
    if checkpoint is None or not walltime_s:
        return list(argv)
    delay = max(1, walltime_s - checkpoint.before_s)
    return ["/bin/sh", "-c", WRAPPER, "esap-checkpoint", str(delay), checkpoint.signal, *argv]
