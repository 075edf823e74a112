"""Resource limits with units, as a site's `limits:` and a policy group's rules give them."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInput
from .formats.bounds import MAX_COUNT
from .formats.durations import parse_walltime_seconds
from .formats.memory import parse_memory_mib
from .yamlsource import LocatedDict, no_unknown_keys

LIMIT_KEYS = {"max_cores", "max_memory", "max_walltime", "max_gpus"}


@dataclass(frozen=True)
class SiteLimits:
    max_cores: int | None = None
    max_memory_mib: int | None = None
    max_walltime_s: int | None = None
    max_gpus: int | None = None


def parse_limits(block: LocatedDict, source: str, prefix: str) -> SiteLimits:
    """Resource limits with units (shared by sites and policies)."""
    no_unknown_keys(block, LIMIT_KEYS, source, prefix)
    values: dict[str, int] = {}
    for key, value in block.items():
        line = block.line_of(key)
        try:
            if key == "max_memory":
                values["max_memory_mib"] = parse_memory_mib(value, field=f"{prefix}.{key}")
            elif key == "max_walltime":
                values["max_walltime_s"] = parse_walltime_seconds(value, field=f"{prefix}.{key}")
            else:
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise BadInput("expected a whole number", field=f"{prefix}.{key}")
                if value > MAX_COUNT:
                    raise BadInput(f"{value} is too large (at most {MAX_COUNT})", field=f"{prefix}.{key}")
                values[key] = value
        except BadInput as exc:
            raise BadInput(exc.detail, source=source, line=line, field=exc.field) from None
    return SiteLimits(**values)
