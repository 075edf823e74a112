"""SLURM's node lists ("n[01-03,7],gpu1") and the index ranges of job arrays ("0-9:2,12%4")."""

from __future__ import annotations

import re
from collections.abc import Iterable

import hostlist

from ..errors import BadInput

# what SLURM prints where a job has no node yet
NO_NODES = frozenset({"", "(null)", "None assigned"})
# SLURM's largest MaxArraySize: no array has more indexes
MAX_INDEXES = 4_000_001
_RANGE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")


def expand_hostlist(text: str, *, field: str = "nodes") -> list[str]:
    """'n[1-3,5],gpu1' -> ['n1', 'n2', 'n3', 'n5', 'gpu1'], zero padding kept, in the given order."""
    if text.strip() in NO_NODES:
        return []
    try:
        names: list[str] = hostlist.expand_hostlist(text.strip())
    except hostlist.BadHostlist as exc:
        raise BadInput(f"{text!r} is not a SLURM host list ({exc})", field=field) from None
    return names


def format_hostlist(names: Iterable[str]) -> str:
    """The SLURM host list of the names: 'n1,n2,n3' -> 'n[1-3]'."""
    text: str = hostlist.collect_hostlist(list(names))
    return text


def expand_index_ranges(text: str, *, field: str) -> list[int]:
    """An array's indexes: '0-3,7', '1-9:2', '[0-15%4]', or slurmdb's hex bitmap '0x3FC'.

    The '%N' limit of simultaneously running tasks is not an index and is dropped.
    """
    spec = text.strip().removeprefix("[").removesuffix("]")
    if spec.lower().startswith("0x"):
        try:
            bits = int(spec, 16)
        except ValueError:
            raise _not_ranges(text, field) from None
        return [i for i in range(bits.bit_length()) if bits >> i & 1]
    spec = spec.split("%", 1)[0]
    indexes: list[int] = []
    for part in spec.split(",") if spec else []:
        match = _RANGE.fullmatch(part.strip())
        if not match:
            raise _not_ranges(text, field)
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if last < first or step < 1:
            raise _not_ranges(text, field)
        if len(indexes) + (last - first) // step >= MAX_INDEXES:
            raise BadInput(f"{text!r} has more than {MAX_INDEXES} indexes", field=field)
        indexes.extend(range(first, last + 1, step))
    return indexes


def _not_ranges(text: str, field: str) -> BadInput:
    return BadInput(f"{text!r} is not a list of index ranges (e.g. 0-3,7 or 1-9:2)", field=field)


def format_index_ranges(indexes: Iterable[int]) -> str:
    """Sorted, without repeats, consecutive runs joined: [7, 0, 1, 2, 3] -> '0-3,7'."""
    parts: list[str] = []
    ordered = sorted(set(indexes))
    start = 0
    for at in range(1, len(ordered) + 1):
        if at == len(ordered) or ordered[at] != ordered[at - 1] + 1:
            first, last = ordered[start], ordered[at - 1]
            parts.append(str(first) if first == last else f"{first}-{last}")
            start = at
    return ",".join(parts)
