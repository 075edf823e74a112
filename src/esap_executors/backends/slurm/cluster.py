"""The cluster's shape (partitions, nodes, associations), read once per run, and the checks
that refuse a job before anything is sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ...errors import BadInput
from ...formats.durations import format_duration
from .mapping import Resources, walltime_minutes


@dataclass(frozen=True)
class Partition:
    name: str
    nodes: tuple[str, ...]
    max_time_s: int | None  # None: no limit
    state: str = "UP"
    default: bool = False


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mib: int
    tmp_mib: int = 0
    gpus: int = 0
    state: str = "IDLE"


@dataclass(frozen=True)
class ClusterInfo:
    version: str
    partitions: dict[str, Partition]
    nodes: dict[str, Node]
    # (account, partition or "") pairs the user may use; None when accounting is not readable
    associations: frozenset[tuple[str, str]] | None = None
    qos: frozenset[str] | None = None  # QoS the user's associations allow; None: unknown
    max_array_size: int = 1001
    max_submit_jobs: int | None = None  # MaxSubmitJobs of the user's associations (sacctmgr), if any
    default_qos: str | None = None  # the QoS of jobs that name none (the associations' DefaultQOS)
    qos_max_submit: dict[str, int] = field(default_factory=dict)  # MaxSubmitJobsPerUser by QoS
    enforce_associations: bool = True
    user: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def default_partition(self) -> Partition | None:
        return next((p for p in self.partitions.values() if p.default), None)

    def nodes_of(self, partition: Partition) -> list[Node]:
        return [self.nodes[n] for n in partition.nodes if n in self.nodes]

    def total_cpus(self) -> int:
        return sum(n.cpus for n in self.nodes.values())

    def describe(self) -> dict[str, object]:
        """GLUE 1.3 attributes for the site's ClassAd."""
        limits = [p.max_time_s for p in self.partitions.values()]
        max_wall = None if any(t is None for t in limits) or not limits else max(t or 0 for t in limits)
        up = [p for p in self.partitions.values() if p.state == "UP"]
        usable = [n for n in self.nodes.values() if not _node_down(n.state)]
        values: dict[str, object] = {
            "GlueCEInfoLRMSType": "SLURM",
            "GlueCEInfoLRMSVersion": self.version,
            "GlueCEInfoTotalCPUs": self.total_cpus(),
            "GlueCEStateFreeCPUs": sum(n.cpus for n in usable if n.state.startswith("IDLE")),
            "GlueHostMainMemoryRAMSize": max((n.memory_mib for n in self.nodes.values()), default=0),
            "GlueCEStateStatus": "Production" if up and usable else "Closed",
            "SlurmPartitions": ",".join(sorted(self.partitions)),
            "SlurmMaxGPUsPerNode": max((n.gpus for n in self.nodes.values()), default=0),
        }
        # GLUE's "no limit" is a very large number of minutes
        values["GlueCEPolicyMaxWallClockTime"] = 999999999 if max_wall is None else max_wall // 60
        return values


def _node_down(state: str) -> bool:
    return any(word in state for word in ("DOWN", "DRAIN", "FAIL", "NOT_RESPONDING"))


def check(cluster: ClusterInfo, shapes: Iterable[Resources], *, source: str | None = None) -> None:
    """Raise one BadInput naming the first problem of the first bad shape."""
    for shape in shapes:
        problem = _problem(cluster, shape)
        if problem is not None:
            field_name, message = problem
            raise BadInput(message, source=source, field=field_name)


class _NodeLimit(NamedTuple):
    """What one node must hold: a whole job, or one task of an MPI job."""

    field: str
    wanted: Callable[[Resources], int | None]
    has: Callable[[Node], int]
    amount: str  # the request, e.g. "{} GPUs"
    enough: str
    amount_unit: str  # the largest node's value


_NODE_LIMITS = (
    _NodeLimit("cores", lambda r: r.cores // r.tasks, lambda n: n.cpus, "{} cores", "that many", "{}"),
    _NodeLimit("memory", lambda r: r.memory_mib and -(-r.memory_mib // r.tasks), lambda n: n.memory_mib,
               "{} MiB", "that much", "{} MiB"),
    _NodeLimit("gpus", lambda r: r.gpus, lambda n: n.gpus, "{} GPUs", "that many", "{}"),
    _NodeLimit("scratch", lambda r: r.scratch_mib, lambda n: n.tmp_mib, "{} MiB of scratch",
               "that much", "{} MiB"),
)


def _problem(cluster: ClusterInfo, r: Resources) -> tuple[str, str] | None:
    if r.partition:
        partition = cluster.partitions.get(r.partition)
        if partition is None:
            known = ", ".join(sorted(cluster.partitions))
            return "partition", f"unknown partition {r.partition!r} (known: {known})"
    else:
        partition = cluster.default_partition
        if partition is None:
            return "partition", "the cluster has no default partition: name one"
    if r.walltime_s is not None and partition.max_time_s is not None:
        if walltime_minutes(r.walltime_s) * 60 > partition.max_time_s:
            return "walltime", (
                f"{format_duration(r.walltime_s)} exceeds the time limit of partition "
                f"{partition.name!r} ({format_duration(partition.max_time_s)})"
            )
    nodes = cluster.nodes_of(partition)
    if r.tasks > 1 and r.cores > sum(n.cpus for n in nodes):
        return "cores", (f"{r.cores} cores for {r.tasks} tasks: partition {partition.name!r} has "
                         f"{sum(n.cpus for n in nodes)} in all")
    for limit in _NODE_LIMITS:
        wanted = limit.wanted(r)
        if not wanted:
            continue
        largest = max((limit.has(n) for n in nodes), default=0)
        if wanted > largest:
            return limit.field, (
                f"{limit.amount.format(wanted)}: no node of partition {partition.name!r} "
                f"has {limit.enough} (largest: {limit.amount_unit.format(largest)})"
            )
    if cluster.associations is not None and cluster.enforce_associations:
        accounts = {a for a, _ in cluster.associations}
        if r.account and r.account not in accounts:
            known = ", ".join(sorted(accounts)) or "none"
            return "account", (
                f"unknown account {r.account!r} for user {cluster.user} on this cluster "
                f"(the user's accounts: {known})"
            )
        if r.account:
            allowed_parts = {p for a, p in cluster.associations if a == r.account}
            if "" not in allowed_parts and partition.name not in allowed_parts:
                return "partition", f"account {r.account!r} may not use partition {partition.name!r}"
    if r.qos and cluster.qos is not None and r.qos not in cluster.qos:
        known = ", ".join(sorted(cluster.qos)) or "none"
        return "qos", f"unknown or not allowed QoS {r.qos!r} (allowed: {known})"
    return None


def _split_top(text: str) -> Sequence[str]:
    items, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            items.append(current)
            current = ""
            continue
        depth += char == "["
        depth -= char == "]"
        current += char
    items.append(current)
    return items


def gpus_in_gres(gres: str) -> int:
    """'gpu:2,mps:100' or 'gpu:tesla:2(S:0)' -> 2."""
    total = 0
    for item in _split_top(gres or ""):
        item = item.split("(", 1)[0]
        parts = item.split(":")
        if parts[0] == "gpu" and len(parts) >= 2 and parts[-1].isdigit():
            total += int(parts[-1])
    return total
