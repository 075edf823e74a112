"""The interface both access paths (sbatch CLI, slurmrestd) implement for SlurmBackend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..base import Usage
from .cluster import ClusterInfo
from .mapping import BatchJob
from .records import SlurmRecord


class SlurmAccess(Protocol):
    kind: str  # "cli" or "rest"
    # True when run_records reports exit codes reliably (slurmdb v0.0.38 does not)
    exit_codes_in_records: bool

    def cluster(self) -> ClusterInfo:
        """Partitions, nodes, the user's associations (several calls; once per run)."""

    def submit(self, batch: BatchJob) -> str:
        """Send one job or array; return the scheduler's job id (the array's id for arrays)."""

    def run_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        """ONE query: every job named run_name that was active since `since`."""

    def details(self, native_ids: Sequence[str], run_name: str, since: float) -> list[SlurmRecord]:
        """ONE query: failure details (exit code, signal, reason, nodes) of these jobs."""

    def usage(self, native_ids: Sequence[str], run_name: str, since: float) -> dict[str, Usage]:
        """ONE query: wall time, CPU time and peak memory of these finished jobs."""

    def queue_records(self, run_name: str, since: float) -> list[SlurmRecord]:
        """ONE query of the controller's queue (jobs not yet or not fully in accounting)."""

    def cancel(self, native_ids: Sequence[str]) -> None:
        """Cancel these jobs (one call where the interface allows)."""

    def close(self) -> None: ...
