"""The largest values a request may carry: what the state store (SQLite's 64-bit integers) and
every scheduler we drive (SLURM's 32-bit counts and minutes, HTCondor's ClassAd integers) hold."""

from __future__ import annotations

import math

from ..errors import BadInput

MAX_COUNT = 2**31 - 1  # cores, tasks, GPUs, nodes; SLURM keeps them in 32 bits
MAX_WALLTIME_S = 2**31 - 1  # about 68 years; SLURM's minutes fit in 32 bits below its INFINITE
MAX_MEMORY_MIB = 2**40  # 1 EiB
MAX_RETRIES = 100  # a job's resubmissions; beyond this a failing job would be resubmitted for ever


def checked_number(value: float, *, field: str, maximum: float, unit: str = "", text: object = None) -> float:
    """`value` when finite, not negative and at most `maximum`; BadInput naming `field` otherwise."""
    shown = value if text is None else text
    if not math.isfinite(value):
        raise BadInput(f"{shown!r} is not a finite number", field=field)
    if value < 0:
        raise BadInput(f"{shown!r} is negative", field=field)
    if value > maximum:
        suffix = f" {unit}" if unit else ""
        raise BadInput(f"{_short(shown)} is too large (at most {maximum:g}{suffix})", field=field)
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
