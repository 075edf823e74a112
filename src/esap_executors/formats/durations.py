"""Durations: SLURM's time forms, esap's short forms (30s, 10m, 2h, 1d) and slurmrestd's structs.

SLURM's forms (sbatch --time): "minutes", "minutes:seconds", "hours:minutes:seconds",
"days-hours", "days-hours:minutes", "days-hours:minutes:seconds". With a day part the clock
starts at hours, so "1-12:30" is 1 day 12 h 30 min. sacct prints the same forms
([DD-[HH:]]MM:SS), with a fraction of a second in TotalCPU ("00:01.234").
"""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import BadInput
from .bounds import MAX_WALLTIME_S, checked_number
from .printable import shortened
from .slurm_numbers import rest_number

SLURM_FORMS = "minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS"
# limits that mean "none" (scontrol, sinfo): a partition's MaxTime, a job's TimeLimit
NO_LIMIT = frozenset({"UNLIMITED", "INFINITE", "PARTITION_LIMIT", "NONE"})
# sacct's words for "no value" in Elapsed, TotalCPU and the like
NO_VALUE = frozenset({"", "INVALID", "UNKNOWN"})

_WHOLE = re.compile(r"\d+")
_SECONDS = re.compile(r"\d+(?:\.\d+)?")
_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_SHORT_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_slurm_duration(text: str, *, field: str) -> float:
    """Seconds from one of SLURM's time forms; raises BadInput naming the field."""
    raw = text.strip()
    if "-" in raw:
        day_text, _, clock = raw.partition("-")
        parts = clock.split(":")
        units = (3600, 60, 1)[: len(parts)]
    else:
        day_text, parts = "0", raw.split(":")
        units = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}.get(len(parts), ())
    if not _WHOLE.fullmatch(day_text) or not units or len(parts) != len(units):
        raise _not_slurm(text, field)
    total = int(day_text) * 86400.0
    for part, unit in zip(parts, units, strict=True):
        if not (_SECONDS if unit == 1 else _WHOLE).fullmatch(part):
            raise _not_slurm(text, field)
        total += float(part) * unit
    return total


def _not_slurm(text: str, field: str) -> BadInput:
    return BadInput(f"{text!r} is not a SLURM time ({SLURM_FORMS})", field=field)


def parse_slurm_limit(text: str, *, field: str) -> int | None:
    """A time limit in whole seconds (rounded up); None for UNLIMITED, INFINITE, Partition_Limit."""
    if text.strip().upper() in NO_LIMIT:
        return None
    return math.ceil(parse_slurm_duration(text, field=field))


def sacct_seconds(text: str, *, field: str) -> float | None:
    """sacct's Elapsed or TotalCPU in seconds; None when sacct has no value."""
    if text.strip().upper() in NO_VALUE:
        return None
    return parse_slurm_duration(text, field=field)


def format_slurm_duration(seconds: int) -> str:
    """Whole seconds as SLURM's [D-]HH:MM:SS."""
    days, rem = divmod(int(seconds), 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def rest_duration_seconds(value: Any) -> float:
    """slurmrestd's {"seconds": s, "microseconds": us} (v0.0.38) or plain seconds; 0 when unset."""
    if isinstance(value, dict) and ("seconds" in value or "microseconds" in value):
        whole = rest_number(value.get("seconds")) or 0
        return whole + (rest_number(value.get("microseconds")) or 0) / 1e6
    return float(rest_number(value) or 0)


def parse_walltime_seconds(value: str | int | float, *, field: str = "walltime") -> int:
    """A requested walltime in seconds: SLURM's forms, or 30s, 10m, 2h, 1d.

    A bare number is minutes, as in SLURM; a fraction of a second rounds up. At most
    MAX_WALLTIME_S: what the state store and the schedulers can hold.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadInput(f"{value!r} is not a walltime", field=field)
    if isinstance(value, int | float):
        minutes = checked_number(value, field=field, maximum=MAX_WALLTIME_S / 60, unit="minutes")
        return math.ceil(minutes * 60)
    short = _SHORT.match(value)
    if short:
        number = float(short.group(1)) * _SHORT_UNITS[short.group(2).lower()]
    else:
        try:
            number = parse_slurm_duration(value, field=field)
        except BadInput:
            raise BadInput(f"{shortened(value, 60)!r} is not a walltime (use {SLURM_FORMS}, or 30s/10m/2h/1d)",
                           field=field) from None
    return math.ceil(checked_number(number, field=field, maximum=MAX_WALLTIME_S, unit="seconds", text=value))


def format_duration(seconds: int) -> str:
    """Whole seconds in esap's short form, the largest unit that divides them (90m, 2h, 45s)."""
    for suffix in ("d", "h", "m"):
        unit = _SHORT_UNITS[suffix]
        if seconds % unit == 0:
            return f"{seconds // unit}{suffix}"
    return f"{seconds}s"
