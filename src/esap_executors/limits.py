"""Resource limits with units, as a site's `limits:` and a policy group's rules give them."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BadInput
from .formats.bounds import MAX_COUNT
from .formats.durations import parse_walltime_seconds
from .formats.memory import parse_memory_mib
from .yamlsource import LocatedDict, no_unknown_keys

LIMIT_KEYS = {"max_cores", "max_memory", "max_walltime", "max_gpus"}
# What a site allows of submissions (sites.yaml only): honoured by the submitter (throttle.py).
SUBMIT_LIMIT_KEYS = {"max_submit_per_minute", "max_queued", "max_array_size"}


@dataclass(frozen=True)
class SiteLimits:
    max_cores: int | None = None
    max_memory_mib: int | None = None
    max_walltime_s: int | None = None
    max_gpus: int | None = None
    max_submit_per_minute: int | None = None  # scheduler jobs sent in any 60 s
    max_queued: int | None = None  # jobs sent and not ended, at once; more wait in the store
    max_array_size: int | None = None  # tasks of one array (SLURM) or cluster


def parse_limits(block: LocatedDict, source: str, prefix: str, *, submission: bool = False) -> SiteLimits:
    """Resource limits with units (shared by sites and policies); a site's also limit submission."""
    no_unknown_keys(block, LIMIT_KEYS | (SUBMIT_LIMIT_KEYS if submission else set()), source, prefix)
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
                if key in SUBMIT_LIMIT_KEYS and value < 1:
                    raise BadInput("must be at least 1", field=f"{prefix}.{key}")
                values[key] = value
        except BadInput as exc:
            raise BadInput(exc.detail, source=source, line=line, field=exc.field) from None
    return SiteLimits(**values)
