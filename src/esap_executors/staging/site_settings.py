"""A site's `staging:` block in sites.yaml: where a job's inputs by storage URL are fetched.

    slurm-local:
      staging:
        fetch: execute        # the job fetches its https:// and davs:// inputs itself (default: submit)
        cache: /scratch/esap-staging-cache   # the execute side's download cache (one download per URL+ETag)
        cache_size: 200G      # at most this much per user in it: least recently used entries go first
        python: /opt/esap/bin/python         # an interpreter with esap-executors installed, on the execute side

`fetch: submit` (the default) fetches through the submit host, which then sends or links the
copies. `fetch: execute` is for sites whose execute nodes reach the storage: the job runs the
project's fetch (staging/job_fetch.py) before its command, with a read-only token that reaches
it as a private file (never argv, never the environment, never world-readable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import BadInput
from ..yamlsource import LocatedDict, no_unknown_keys

STAGING_KEYS = {"fetch", "cache", "cache_size", "python"}
FETCH_WHERE = ("submit", "execute")
DEFAULT_EXECUTE_CACHE = "/var/tmp/esap-staging-cache"


@dataclass(frozen=True)
class StagingSettings:
    fetch: str = "submit"  # submit | execute
    cache: str = DEFAULT_EXECUTE_CACHE  # execute side: the site's download cache (a per-user folder in it)
    python: str | None = None  # execute side: an interpreter that imports esap_executors
    cache_bytes: int | None = None  # the cache's bound (per user); None: unbounded

    @property
    def on_execute_side(self) -> bool:
        return self.fetch == "execute"


def parse_staging(block: LocatedDict, source: str, prefix: str, *, shared_filesystem: bool,
                  execute: dict[str, str]) -> StagingSettings:
    no_unknown_keys(block, STAGING_KEYS, source, prefix)

    def bad(key: str, message: str) -> BadInput:
        return BadInput(message, source=source, line=block.line_of(key) or block.line, field=f"{prefix}.{key}")

    fetch = block.get("fetch", "submit")
    if fetch not in FETCH_WHERE:
        raise bad("fetch", f"expected execute or submit, got {fetch!r}")
    values: dict[str, str] = {}
    for key in ("cache", "python"):
        value = block.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not os.path.isabs(value):
            raise bad(key, f"expected an absolute path on the execute side, got {value!r}")
        values[key] = value
    python = values.get("python") or execute_env_python(execute)
    if fetch == "execute" and python is None and not shared_filesystem:
        raise bad("fetch", "execute needs staging.python (or execute.snakemake): an execute-side interpreter "
                           "with esap-executors installed")
    cache_bytes = None
    if block.get("cache_size") is not None:
        from ..formats.memory import parse_memory_mib

        try:
            cache_bytes = parse_memory_mib(block["cache_size"], field=f"{prefix}.cache_size") << 20
        except BadInput as exc:
            raise bad("cache_size", exc.detail) from None
    return StagingSettings(fetch=str(fetch), cache=values.get("cache", DEFAULT_EXECUTE_CACHE), python=python,
                           cache_bytes=cache_bytes)


def execute_env_python(execute: dict[str, str]) -> str | None:
    """The interpreter of the site's execute-side esap-executors environment (execute.snakemake)."""
    snakemake = execute.get("snakemake")
    if not snakemake:
        return None
    if os.path.basename(snakemake).startswith("snakemake"):  # .../bin/snakemake -> .../bin/python
        return os.path.join(os.path.dirname(snakemake), "python")
    return os.path.join(snakemake, "bin", "python")  # an environment prefix
