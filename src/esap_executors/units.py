"""Memory and time units, normalised once at the edge (SLURM's conventions)."""

from __future__ import annotations

import re

from .errors import BadInput

_MEMORY_FACTORS_MIB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT])?(?:i?B)?\s*$", re.IGNORECASE)
_SUFFIX_TIME_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_memory_mib(value: str | int | float, *, field: str = "memory") -> int:
    """Memory as MiB. A bare number is MiB, like SLURM's --mem; K, M, G, T are binary."""
    if isinstance(value, bool):
        raise BadInput(f"{value!r} is not a memory size", field=field)
    if isinstance(value, int | float):
        if value < 0:
            raise BadInput(f"{value!r} is negative", field=field)
        return int(-(-value // 1))
    match = _MEMORY_RE.match(str(value))
    if not match:
        raise BadInput(
            f"{value!r} is not a memory size (use e.g. 512M, 2G, 1T; a bare number is MiB)",
            field=field,
        )
    number = float(match.group(1))
    factor = _MEMORY_FACTORS_MIB[(match.group(2) or "M").upper()]
    mib = number * factor
    return max(1, int(-(-mib // 1))) if number > 0 else 0


def parse_walltime_seconds(value: str | int | float, *, field: str = "walltime") -> int:
    """Walltime in seconds from SLURM --time forms or suffixed forms (30s, 10m, 2h, 1d).

    A bare number is minutes, as in SLURM.
    """
    if isinstance(value, bool):
        raise BadInput(f"{value!r} is not a walltime", field=field)
    if isinstance(value, int | float):
        if value < 0:
            raise BadInput(f"{value!r} is negative", field=field)
        return int(value * 60)
    text = str(value).strip()
    suffixed = _SUFFIX_TIME_RE.match(text)
    if suffixed:
        return int(float(suffixed.group(1)) * _SECONDS[suffixed.group(2).lower()])
    days = 0
    rest = text
    if "-" in text:
        day_part, rest = text.split("-", 1)
        if not day_part.isdigit():
            raise _bad_time(value, field)
        days = int(day_part)
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        raise _bad_time(value, field)
    numbers = [int(p) for p in parts]
    if days:
        # D-HH, D-HH:MM, D-HH:MM:SS
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
    elif len(numbers) == 1:
        hours, minutes, seconds = 0, numbers[0], 0
    elif len(numbers) == 2:
        hours, minutes, seconds = 0, numbers[0], numbers[1]
    else:
        hours, minutes, seconds = numbers
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def _bad_time(value: object, field: str) -> BadInput:
    return BadInput(
        f"{value!r} is not a walltime (use minutes, MM:SS, HH:MM:SS, D-HH:MM:SS, or 30s/10m/2h/1d)",
        field=field,
    )


def format_slurm_time(seconds: int) -> str:
    """Seconds as SLURM's D-HH:MM:SS, rounded up to whole minutes' resolution is not needed."""
    days, rem = divmod(int(seconds), 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{hours:02d}:{minutes:02d}:{secs:02d}"


def format_memory(mib: int) -> str:
    if mib % (1024 * 1024) == 0:
        return f"{mib // (1024 * 1024)}T"
    if mib % 1024 == 0:
        return f"{mib // 1024}G"
    return f"{mib}M"


def format_duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"
