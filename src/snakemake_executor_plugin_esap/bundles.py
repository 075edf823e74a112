"""Bundles: several ready Snakemake jobs of one rule in one scheduler job.

Every remote Snakemake job starts a Snakemake (about a second of CPU to import it) before running
a command that often takes less. When a batch holds more jobs of the same shape than the site has
slots for them, the jobs are packed into about one bundle per slot (at most `max_members` each):
the bundle imports Snakemake once and runs its members one after another (bundle_runner.py).
The scheduler sees fewer, longer jobs; Snakemake still sees, logs and retries each job. Members
that run their shell command directly (direct.py) are bundled alike; a bundle of only those never
imports Snakemake.
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esap_executors.job import JobSpec
    from esap_executors.sites import Site

    from .direct import DirectShell

RUNNER = Path(__file__).with_name("bundle_runner.py")
# Without a site limit, a bundle's walltime (its members' summed) stays within this.
DEFAULT_MAX_BUNDLE_WALLTIME_S = 4 * 3600


@dataclass(frozen=True)
class Member:
    """One Snakemake job prepared for submission (alone or in a bundle)."""

    job: Any  # JobExecutorInterface
    key: str
    name: str
    site: Site | None
    spec: JobSpec
    snakemake_args: tuple[str, ...] | None  # None: the command is not `PYTHON -m snakemake ARGS`
    status_path: str  # where the bundle writes this member's exit code
    direct: DirectShell | None = None  # its shell command without a Snakemake start

    @property
    def bundleable(self) -> bool:
        return (self.snakemake_args is not None or self.direct is not None) and not self.job.is_group()

    def shape(self) -> tuple[Any, ...]:
        """Jobs with equal shapes may share a scheduler job."""
        spec = self.spec
        return (self.site.name if self.site else None, self.name, spec.cores, spec.tasks, spec.memory_mib, spec.gpus,
                spec.scratch_mib, spec.partition, spec.account, spec.qos, spec.constraints,
                spec.accounting_group, spec.requirements, spec.rank, tuple(sorted(spec.env.items())))


def snakemake_args(command: str) -> tuple[str, ...] | None:
    """The arguments of `cd DIR && PYTHON -m snakemake ARGS`, as Snakemake's own main() takes them."""
    words = shlex.split(command)
    for index in range(len(words) - 2):
        if words[index + 1:index + 3] == ["-m", "snakemake"]:
            return tuple(words[index + 3:])
    return None


def plan(members: Sequence[Member], slots_of: Any, max_members: int) -> list[list[Member]]:
    """Split a batch into groups; a group of more than one member becomes a bundle.

    `slots_of(site, cores)` is how many jobs of that many cores the site runs at once (None: unknown,
    no bundling). Members keep their order within and across groups.
    """
    if max_members <= 1:
        return [[m] for m in members]
    by_shape: dict[tuple[Any, ...], list[Member]] = {}
    singles: list[list[Member]] = []
    for member in members:
        if not member.bundleable:
            singles.append([member])
        else:
            by_shape.setdefault(member.shape(), []).append(member)
    groups: list[list[Member]] = []
    for shaped in by_shape.values():
        size = bundle_size(shaped[0], len(shaped), slots_of, max_members)
        groups.extend(shaped[start:start + size] for start in range(0, len(shaped), size))
    return singles + groups


def bundle_size(sample: Member, count: int, slots_of: Any, max_members: int) -> int:
    slots = slots_of(sample.site, sample.spec.cores) if sample.site is not None else None
    if not slots or count <= slots:
        return 1
    size = min(max_members, math.ceil(count / slots))
    walltime = sample.spec.walltime_s
    if walltime:
        ceiling = sample.site.limits.max_walltime_s if sample.site is not None else None
        size = min(size, max(1, (ceiling or DEFAULT_MAX_BUNDLE_WALLTIME_S) // walltime))
    return max(1, size)


def bundle_spec(members: Sequence[Member], *, python: str, workdir: str, log_dir: Path) -> JobSpec:
    """One scheduler job running `members` through the runner, with the first member's resources."""
    first = members[0]
    log_dir.mkdir(parents=True, exist_ok=True)
    stem = f"bundle.{first.key}+{len(members)}"
    manifest = log_dir / f"{stem}.json"
    runner = log_dir / RUNNER.name
    if not runner.exists() or runner.read_bytes() != RUNNER.read_bytes():
        partial = runner.with_suffix(".partial")
        partial.write_bytes(RUNNER.read_bytes())
        os.replace(partial, runner)
    manifest.write_text(json.dumps({
        "workdir": workdir,
        "members": [
            {"name": f"{m.name} {m.key}", "stdout": m.spec.stdout, "stderr": m.spec.stderr,
             "status": m.status_path,
             **({"shell": m.direct.manifest()} if m.direct else {"args": list(m.snakemake_args or ())})}
            for m in members
        ],
    }, indent=1))
    walltimes = [m.spec.walltime_s for m in members]
    return replace(
        first.spec,
        script=f"cd {shlex.quote(workdir)} && {shlex.quote(python)} {shlex.quote(str(runner))} "
               f"{shlex.quote(str(manifest))}\n",
        stdout=str(log_dir / f"{stem}.out"),
        stderr=str(log_dir / f"{stem}.err"),
        walltime_s=None if None in walltimes else sum(w or 0 for w in walltimes),
        labels={**first.spec.labels, "snakemake_jobid": ",".join(str(m.job.jobid) for m in members)},
    )


def read_status(path: str) -> int | None:
    """A member's exit code once the bundle wrote it."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
