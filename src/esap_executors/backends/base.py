"""The one backend contract every scheduler implements.

Every verb takes many jobs at once and makes one scheduler interaction (or a fixed
number) for all of them: the poller's queries per cycle must not grow with job count.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from ..job import JobSpec
from ..states import JobStatus

if TYPE_CHECKING:
    from ..sites import Site


@dataclass(frozen=True)
class Submission:
    """One job as the core hands it to a backend."""

    job_id: str  # esap id, e.g. "r1a2b3c4d5e6.7"; scheduler jobs carry it
    run_id: str  # carried by every scheduler job of the run (name, comment or ad attribute)
    name: str  # the step/rule name, for people
    spec: JobSpec
    workdir: str  # absolute working directory of the job on the site
    stdout: str  # absolute paths the scheduler writes the std streams to
    stderr: str


@dataclass(frozen=True)
class FoundJob:
    """A scheduler job of a run, found without a record of its submission."""

    native_id: str
    job_id: str
    status: JobStatus


@dataclass(frozen=True)
class Usage:
    """What a finished job used, as its scheduler accounted it (None: not accounted)."""

    wall_s: float | None
    cpu_s: float | None  # user + system, all of the job's processes
    max_memory_mib: int | None


class Backend(ABC):
    """Submit many, poll many, cancel many, explain failures, find a run's jobs."""

    name: ClassVar[str]
    # True when the backend moves stage-in/stage-out files itself (scheduler file transfer);
    # otherwise the core copies them on the shared filesystem before submit and after completion.
    handles_staging: ClassVar[bool] = False
    # Keys accepted under a site's `options:` block, with their types (checked at load).
    option_types: ClassVar[Mapping[str, type | tuple[type, ...]]] = {}

    def __init__(self, site: Site) -> None:
        self.site = site
        self.query_count = 0  # scheduler interactions made by poll/explain/find (for tests)

    def validate(self, jobs: Sequence[Submission]) -> None:  # noqa: B027 - optional hook
        """Raise BadInput before anything is sent (partition, limits, accounts); cache per run."""

    @abstractmethod
    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        """Send the jobs; return their native ids in the same order."""

    @abstractmethod
    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        """States of the given jobs in one scheduler interaction.

        `since` is the run's start (epoch seconds) for a time-windowed query. A job the
        scheduler does not show yet is QUEUED, not lost.
        """

    @abstractmethod
    def cancel(self, native_ids: Sequence[str]) -> None:
        """Cancel all of them in one call where the scheduler allows."""

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Failure details (exit code, signal, reason, std stream paths), batched."""
        return {}

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """Resources the finished jobs used, in one scheduler interaction; {} if not accounted."""
        return {}

    @abstractmethod
    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        """Every scheduler job that carries this run id (crash recovery)."""

    def describe(self) -> dict[str, Any]:
        """Site attributes the backend can discover (GLUE names), for the site's ClassAd."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
