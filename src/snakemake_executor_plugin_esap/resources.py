"""Snakemake job resources -> the core's JobSpec fields (pure functions, no scheduler)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from esap_executors.errors import BadInput
from esap_executors.retry_policy import RetryPolicy, parse_cli

# Resources read as text; the first name found wins. `slurm_*` names keep workflows written
# for the slurm plugin working unchanged.
TEXT_RESOURCES: dict[str, tuple[str, ...]] = {
    "site": ("esap_site",),
    "requirements": ("esap_requirements",),
    "rank": ("esap_rank",),
    "account": ("esap_account", "slurm_account", "account"),
    "partition": ("esap_partition", "slurm_partition", "partition"),
    "qos": ("esap_qos", "slurm_qos", "qos"),
    "constraints": ("esap_constraint", "constraint"),
    "accounting_group": ("esap_accounting_group", "accounting_group"),
    "tmpdir": ("tmpdir",),
    # retries by cause: "OUT_OF_MEMORY:memory=x2,up_to=8G;TIMEOUT:walltime=x1.5;max=3"
    "retry": ("esap_retry",),
    # checkpoint and continue: "USR1@60s" or "USR1@60s:85" (signal, time before the walltime, exit code)
    "checkpoint": ("esap_checkpoint",),
}


@dataclass(frozen=True)
class JobResources:
    """What one Snakemake job (single or group) asks for, in the core's units."""

    cores: int = 1  # all of the job's cores: tasks x cores per task
    tasks: int = 1
    memory_mib: int | None = None
    walltime_s: int | None = None
    scratch_mib: int | None = None
    gpus: int = 0
    text: Mapping[str, str] | None = None

    def get(self, name: str) -> str | None:
        return (self.text or {}).get(name)


def job_resources(resources: Mapping[str, Any], threads: int | None,
                  members: Iterable[Mapping[str, Any]] = ()) -> JobResources:
    """Map a job's resources; `members` are the resources of a group's jobs.

    A group job's merged resources keep a text resource only when every member agrees, so the
    members are read too: a value stated by one member of the group applies to the group.
    """
    member_list = list(members)
    check_numbers(resources)
    cores = _first_int(resources, ("cpus_per_task", "_cores")) or threads or 1
    tasks = max(1, _first_int(resources, ("tasks",)) or 1)  # MPI ranks, as the slurm plugin reads it
    memory = _first_int(resources, ("mem_mib",))
    if memory is None:
        mem_mb = _first_int(resources, ("mem_mb",))
        memory = None if mem_mb is None else max(1, (mem_mb * 1000 * 1000) // (1024 * 1024))
    runtime_min = _first_int(resources, ("runtime", "walltime"))
    disk = _first_int(resources, ("disk_mib",))
    if disk is None:
        disk_mb = _first_int(resources, ("disk_mb",))
        disk = None if disk_mb is None else max(1, (disk_mb * 1000 * 1000) // (1024 * 1024))
    gpus = _first_int(resources, ("gpus", "gpu")) or 0
    text: dict[str, str] = {}
    for key, names in TEXT_RESOURCES.items():
        value = _first_text(resources, names)
        if value is None:
            for member in member_list:
                value = _first_text(member, names)
                if value is not None:
                    break
        if value is not None:
            text[key] = value
    return JobResources(
        cores=max(1, cores) * tasks,
        tasks=tasks,
        memory_mib=memory if memory and memory > 0 else None,
        walltime_s=runtime_min * 60 if runtime_min and runtime_min > 0 else None,
        scratch_mib=disk if disk and disk > 0 else None,
        gpus=max(0, gpus),
        text=text,
    )


# resources read as numbers, and the least each may be (Snakemake's own, e.g. _nodes, are not ours)
NUMERIC_RESOURCES = {
    "cpus_per_task": 1, "_cores": 1, "tasks": 1, "mem_mib": 0, "mem_mb": 0, "runtime": 0, "walltime": 0,
    "disk_mib": 0, "disk_mb": 0, "gpus": 0, "gpu": 0,
}


def check_numbers(resources: Mapping[str, Any]) -> None:
    """A numeric resource that is not a finite whole number within range is refused by name
    (it used to be ignored: `mem_mb="lots"` meant no memory request at all)."""
    from esap_executors.errors import BadInput

    for name, least in NUMERIC_RESOURCES.items():
        value = resources.get(name)
        if value is None or type(value).__name__ == "TBDString":
            continue
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
            number = int(value.strip())
        if number is None or not math.isfinite(number) or number < least:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise BadInput(f"{shown} is not a whole number of at least {least}", field=f"resources.{name}")
    for key, names in TEXT_RESOURCES.items():
        for name in names:
            value = resources.get(name)
            if key != "tmpdir" and isinstance(value, str) and not value.strip():
                raise BadInput("is empty: give a value or leave the resource out", field=f"resources.{name}")
            if key in ("requirements", "rank") and isinstance(value, str) and value.strip():
                from esap_executors.formats.expressions import parse_classad_expression

                parse_classad_expression(value, field=f"resources.{name}")


def _first_int(resources: Mapping[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = resources.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None


def _first_text(resources: Mapping[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = resources.get(name)
        # TBDString: a value (tmpdir) Snakemake evaluates only on the execute side
        if isinstance(value, str) and value and type(value).__name__ != "TBDString":
            return value
    return None


def snakemake_retry_policy(text: str | None, rule: str) -> RetryPolicy | None:
    """The `esap_retry` resource: rules like esap run's --retry, joined by ';', and `max=N`.

    Snakemake's own `retries` (a new job, its attempt-dependent resources evaluated again) keep
    working; this adds the cause-dependent changes within one Snakemake attempt.
    """
    if not text:
        return None
    rules: list[str] = []
    max_retries = None
    field = f"rule {rule}: resources.esap_retry"
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if part.startswith("max="):
            value = part.removeprefix("max=").strip()
            if not value.isdigit():
                raise BadInput(f"{value!r}: expected a whole number", field=f"{field}.max")
            max_retries = int(value)
        else:
            rules.append(part)
    try:
        return parse_cli(rules, max_retries)
    except BadInput as exc:
        raise BadInput(exc.detail, field=f"{field}" + (exc.field or "").removeprefix("--retry")) from None
