"""Memory sizes: as users and SLURM's --mem write them (a bare number is MiB) and sacct's MaxRSS."""

from __future__ import annotations

import math
import re

from ..errors import BadInput
from .bounds import MAX_MEMORY_MIB, checked_number
from .printable import shortened

_MIB_PER_UNIT = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_REQUEST = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*$", re.IGNORECASE)
_ACCOUNTED = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])?\s*$", re.IGNORECASE)


def parse_memory_mib(value: str | int | float, *, field: str = "memory") -> int:
    """Memory as MiB, rounded up. A bare number is MiB, like SLURM's --mem; K, M, G, T are binary.
    At most MAX_MEMORY_MIB."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadInput(f"{value!r} is not a memory size", field=field)
    if isinstance(value, int | float):
        return math.ceil(checked_number(value, field=field, maximum=MAX_MEMORY_MIB, unit="MiB"))
    match = _REQUEST.match(value)
    if not match:
        raise BadInput(
            f"{shortened(value, 60)!r} is not a memory size (use e.g. 512M, 2G, 1T; a bare number is MiB)",
            field=field,
        )
    number = float(match.group(1))
    mib = checked_number(number * _MIB_PER_UNIT[(match.group(2) or "M").upper()], field=field,
                         maximum=MAX_MEMORY_MIB, unit="MiB", text=value)
    return max(1, math.ceil(mib)) if number > 0 else 0


def format_memory(mib: int) -> str:
    """MiB in the largest binary unit that divides them (2G, 1536M), as --mem reads them."""
    if mib and mib % (1024 * 1024) == 0:
        return f"{mib // (1024 * 1024)}T"
    if mib and mib % 1024 == 0:
        return f"{mib // 1024}G"
    return f"{mib}M"


def sacct_memory_mib(text: str, *, field: str) -> int | None:
    """sacct's MaxRSS ("10432K"; bytes when bare) in MiB, rounded up; None when empty."""
    if not text.strip():
        return None
    match = _ACCOUNTED.match(text)
    if not match:
        raise BadInput(f"{text!r} is not a memory size (sacct prints e.g. 10432K)", field=field)
    unit = (match.group(2) or "").upper()
    mib_per_unit = _MIB_PER_UNIT[unit] if unit else 1 / (1024 * 1024)
    return math.ceil(float(match.group(1)) * mib_per_unit)
