"""The one backend contract every scheduler implements, and what each backend can do.

Every verb takes many jobs at once and makes one scheduler interaction (or a fixed
number) for all of them: the poller's queries per cycle must not grow with job count.
Fronts and the core learn what a site's backend can do from its `Capabilities`
(`capabilities_of(site)`), never from the backend's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from ..job import JobSpec
from ..states import JobStatus

if TYPE_CHECKING:
    from ..sites import Site
    from ..store import Store


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


@dataclass(frozen=True)
class SoftwareImage:
    """A software the site registers, and the container image it runs in."""

    name: str
    tag: str
    image: str  # what a container engine pulls, e.g. registry/image_name:image_tag


@dataclass(frozen=True)
class InteractiveAccess:
    """Where the user opens an interactive job (JobSpec.interactive) that the site started."""

    link: str  # the site's own link to the session
    address: str | None = None  # where the session answers directly, when the site tells


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do: declared by its class, narrowed to one site by `for_site`.

    The defaults are what a backend that declares nothing can do.
    """

    # Without a shared filesystem the scheduler moves the job's declared inputs and outputs
    # (the class: it can; a site: it does). Otherwise the core copies them on the shared
    # filesystem before submission and after completion.
    file_transfer: bool = False
    # Jobs see the submit side's files at the same paths (a site's `shared_filesystem`).
    shared_filesystem: bool = True
    # Jobs run on this host's paths as this user: inputs may be symlinked instead of copied.
    links_inputs: bool = False
    # Jobs run as this user instead of the submitting one (owner mapping); None: as the submitter.
    runs_as: str | None = None
    # Container runtimes the backend's jobs can run under (a site: the site's runtime, if one of them).
    container_runtimes: frozenset[str] = frozenset()
    # JobSpec fields the scheduler charges or places a job by (account, partition, qos, ...).
    billing_fields: frozenset[str] = frozenset()
    # Same-shaped jobs of a batch go to the scheduler as one array or cluster.
    job_arrays: bool = False
    # A job's MPI ranks (JobSpec.tasks) may span nodes; otherwise they share one machine.
    multi_node_tasks: bool = False
    # `usage()` reports what finished jobs used (`esap usage`).
    usage_accounting: bool = False
    # `software_images()` names the container image of each software the site registers.
    software_images: bool = False
    # A step's own container image (a registry reference, or a name of the site's image map)
    # becomes the step's whole environment on the site: the backend prepares and checks it,
    # with no container runtime of the site's (the core's image-map check does not apply).
    step_images: bool = False
    # Runs interactive jobs (JobSpec.interactive: a software the user opens, no command);
    # `open_interactive` waits for one to start and tells where it is.
    interactive: bool = False
    # The authentication methods a site's `credentials` may choose from; () when there is no choice.
    auth_methods: tuple[str, ...] = ()
    # Its status query is a read on this host (no scheduler round trip): the site is polled this
    # often (seconds; the poll start and floor) unless the catalogue sets them.
    status_poll_floor: float | None = None

    @property
    def transfers_files(self) -> bool:
        """The backend stages the job's files itself; the core must not copy them."""
        return self.file_transfer and not self.shared_filesystem

    def for_site(self, site: Site, *, runs_as: str | None = None, containers: bool = True) -> Capabilities:
        """This backend's capabilities on `site`, from the catalogue alone (no scheduler contact).

        `runs_as` and `containers` are what the site's options add or take away.
        """
        runtime = site.container.runtime
        runtimes = self.container_runtimes & {runtime} if runtime and containers else frozenset()
        return replace(
            self,
            shared_filesystem=site.shared_filesystem,
            links_inputs=self.links_inputs and site.shared_filesystem and runs_as is None,
            runs_as=runs_as,
            container_runtimes=frozenset(runtimes),
        )


class Backend(ABC):
    """Submit many, poll many, cancel many, explain failures, find a run's jobs."""

    name: ClassVar[str]
    # What the backend can do on any site; `capabilities_on` narrows it to one site.
    capabilities: ClassVar[Capabilities] = Capabilities()
    # Keys accepted under a site's `options:` block, with their types (checked at load).
    option_types: ClassVar[Mapping[str, type | tuple[type, ...]]] = {}

    @classmethod
    def capabilities_on(cls, site: Site) -> Capabilities:
        """What the backend does on `site` (override when site options change it)."""
        return cls.capabilities.for_site(site)

    def __init__(self, site: Site) -> None:
        self.site = site
        self.site_capabilities = type(self).capabilities_on(site)
        self.query_count = 0  # scheduler interactions made by poll/explain/find (for tests)

    def use_store(self, store: Store) -> None:  # noqa: B027 - optional hook
        """The process's state store, for a backend that keeps its own state there."""

    def validate(self, jobs: Sequence[Submission]) -> None:  # noqa: B027 - optional hook
        """Raise BadInput before anything is sent (partition, limits, accounts); cache per run."""

    @abstractmethod
    def submit(self, jobs: Sequence[Submission]) -> list[str]:
        """Send the jobs; return their native ids in the same order."""

    @abstractmethod
    def poll(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, JobStatus]:
        """States of the given jobs in one scheduler interaction.

        `since` is the run's start (epoch seconds) for a time-windowed query. A job the
        scheduler does not show yet is QUEUED, not lost. A backend may leave out a job it
        submitted or reported to an earlier poll of the same backend object and whose state has
        not changed since (callers keep the state they have). A job whose program ended by
        itself is COMPLETED with its exit code, whatever the code: the Tracker maps exit codes
        to states by the job's success codes.
        """

    @abstractmethod
    def cancel(self, native_ids: Sequence[str]) -> None:
        """Cancel all of them in one call where the scheduler allows."""

    def explain(self, native_ids: Sequence[str]) -> dict[str, JobStatus]:
        """Failure details (exit code, signal, reason, std stream paths), batched. A job the
        poll called FAILED that in fact ended by itself is COMPLETED here (see `poll`)."""
        return {}

    def scheduler_max_queued(self) -> int | None:
        """How many jobs the scheduler lets this user have queued or running, where it tells."""
        return None

    def usage(self, native_ids: Sequence[str], *, run_id: str, since: float) -> dict[str, Usage]:
        """Resources the finished jobs used, in one scheduler interaction; {} if not accounted."""
        return {}

    @abstractmethod
    def find(self, run_id: str, *, since: float) -> list[FoundJob]:
        """Every scheduler job that carries this run id (crash recovery)."""

    def open_interactive(self, native_id: str, *, run_id: str, timeout: float) -> InteractiveAccess:
        """Wait until the interactive job runs and return where the user opens it (capability
        `interactive`)."""
        raise NotImplementedError(f"backend {self.name} runs no interactive jobs")

    def software_images(self) -> list[SoftwareImage]:
        """The software the site registers with their images (capability `software_images`)."""
        return []

    def describe(self) -> dict[str, Any]:
        """Site attributes the backend can discover (GLUE names), for the site's ClassAd."""
        return {}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
