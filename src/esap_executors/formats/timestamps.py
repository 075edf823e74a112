"""SLURM's timestamps: sacct's and slurmdb's ISO local times, slurmrestd's epoch numbers."""

from __future__ import annotations

import time
from typing import Any

from ..errors import BadInput
from .slurm_numbers import rest_number

SLURM_TIMESTAMP = "%Y-%m-%dT%H:%M:%S"  # local time, as sacct prints and --starttime reads it
# sacct's words for "no time" (a job that has not started or ended)
NO_TIME = frozenset({"", "UNKNOWN", "NONE"})


def format_slurm_timestamp(epoch: float) -> str:
    """Seconds since the epoch as sacct's local time (for --starttime and slurmdb's start_time)."""
    return time.strftime(SLURM_TIMESTAMP, time.localtime(epoch))


def parse_slurm_timestamp(value: Any, *, field: str) -> float | None:
    """Seconds since the epoch; None for "Unknown", "None", 0 and unset or infinite REST structs.

    Takes sacct's local ISO times ("2026-12-07T15:04:05"), slurmrestd's epoch numbers (v0.0.38)
    and their {set, infinite, number} structs (v0.0.40+).
    """
    if isinstance(value, str):
        text = value.strip()
        if text.upper() in NO_TIME:
            return None
        if text.isdigit():
            return float(text) or None
        try:
            return time.mktime(time.strptime(text, SLURM_TIMESTAMP))
        except (ValueError, OverflowError):
            raise BadInput(f"{value!r} is not a SLURM time stamp (YYYY-MM-DDTHH:MM:SS)", field=field) from None
    if isinstance(value, int | float | dict) and not isinstance(value, bool):
        number = rest_number(value)
        return float(number) if number else None
    if value is None:
        return None
    raise BadInput(f"{value!r} is not a SLURM time stamp", field=field)
