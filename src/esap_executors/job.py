"""The job description: one frozen, serialisable unit of batch work shared by every front."""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from functools import cache
from typing import Any

from .checkpoint import Checkpoint
from .errors import BadInput
from .formats.bounds import MAX_COUNT, MAX_MEMORY_MIB, MAX_RETRIES, MAX_WALLTIME_S
from .formats.durations import parse_walltime_seconds
from .formats.memory import parse_memory_mib
from .formats.printable import shown
from .retry_policy import RetryPolicy

# POSIX: names of upper- and lower-case letters, digits and _, not starting with a digit
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class StageIn:
    """Copy `source` (local path or URL) to `dest`, relative to the job's working directory."""

    source: str
    dest: str


@dataclass(frozen=True)
class StageOut:
    """Bring `source`, relative to the job's working directory, back to `dest` (path or URL)."""

    source: str
    dest: str
    optional: bool = False


@dataclass(frozen=True)
class Container:
    image: str
    engine: str | None = None  # preference: "apptainer" or "podman"; None = the site's runtime


@dataclass(frozen=True)
class JobSpec:
    """What to run and what it needs. Units are normalised: memory in MiB, times in seconds."""

    argv: tuple[str, ...] = ()
    script: str | None = None  # a shell script body, used when argv is empty
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None  # working directory; None = the site's per-job directory
    stdin: str | None = None
    stdout: str | None = None
    stderr: str | None = None
    cores: int = 1  # all of the job's cores, shared by its tasks
    tasks: int = 1  # processes started by an MPI launcher (srun, mpirun), cores // tasks each
    memory_mib: int | None = None
    gpus: int = 0
    walltime_s: int | None = None
    scratch_mib: int | None = None
    container: Container | None = None
    stage_in: tuple[StageIn, ...] = ()
    stage_out: tuple[StageOut, ...] = ()
    account: str | None = None
    partition: str | None = None
    qos: str | None = None
    accounting_group: str | None = None
    constraints: str | None = None
    network: bool = True
    retries: int = 0  # retries of any failure, as they are (JDL RetryCount, ...)
    retry_policy: RetryPolicy | None = None  # retries by cause, with changes (retry_policy.py)
    avoid_nodes: tuple[str, ...] = ()  # nodes (SLURM host lists) a retry keeps away from
    checkpoint: Checkpoint | None = None  # a signal before the walltime; continued after its exit code
    success_exit_codes: tuple[int, ...] = (0,)
    requirements: str | None = None  # ClassAd expression; `other.` is the site
    rank: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # a session the user opens (the software of `container`, e.g. a notebook or a desktop),
    # not a command: it runs until cancelled (sites with the capability `interactive`)
    interactive: bool = False

    def validate(self) -> JobSpec:
        if self.interactive:
            if self.container is None:
                raise BadInput("an interactive job needs the software it opens (an image)", field="image")
        elif not self.argv and not self.script:
            raise BadInput("a job needs a command (argv) or a script", field="argv")
        if self.cores < 1:
            raise BadInput(f"{self.cores} cores: at least 1 is needed", field="cores")
        if self.gpus < 0:
            raise BadInput(f"{self.gpus} GPUs: cannot be negative", field="gpus")
        if self.tasks < 1:
            raise BadInput(f"{self.tasks} tasks: at least 1 is needed", field="tasks")
        if self.cores % self.tasks:
            raise BadInput(f"{self.cores} cores cannot be shared evenly by {self.tasks} tasks",
                           field="cores")
        if self.memory_mib is not None and self.memory_mib < 1:
            raise BadInput(f"{self.memory_mib} MiB: must be positive", field="memory")
        if self.walltime_s is not None and self.walltime_s < 1:
            raise BadInput(f"{self.walltime_s} s: must be positive", field="walltime")
        if self.retries < 0:
            raise BadInput(f"{self.retries}: cannot be negative", field="retries")
        self._check_ceilings()
        if self.argv and not self.argv[0]:
            raise BadInput("the command is an empty string", field="argv")
        for name, value in self.env.items():
            if not ENV_NAME.fullmatch(name):
                raise BadInput(f"{shown(name, 40)} is not an environment variable name (letters, digits, _; "
                               "not starting with a digit)", field="env")
            if "\0" in value:
                raise BadInput(f"the value of {name} contains a NUL byte", field="env")
        if any("\0" in arg for arg in self.argv):
            raise BadInput("an argument contains a NUL byte", field="argv")
        for entry in self.stage_in:
            _check_relative(entry.dest, "stage_in")
        for out in self.stage_out:
            _check_relative(out.source, "stage_out")
        return self

    def _check_ceilings(self) -> None:
        """What the state store and every scheduler can hold (formats.bounds)."""
        for name, count in (("cores", self.cores), ("tasks", self.tasks), ("gpus", self.gpus)):
            if count > MAX_COUNT:
                raise BadInput(f"{count}: at most {MAX_COUNT} can be asked for", field=name)
        for name, mib in (("memory", self.memory_mib), ("scratch", self.scratch_mib)):
            if mib is not None and mib > MAX_MEMORY_MIB:
                raise BadInput(f"{mib} MiB: at most {MAX_MEMORY_MIB} MiB can be asked for", field=name)
        if self.walltime_s is not None and self.walltime_s > MAX_WALLTIME_S:
            raise BadInput(f"{self.walltime_s} s: at most {MAX_WALLTIME_S} s can be asked for", field="walltime")
        if self.retries > MAX_RETRIES:
            raise BadInput(f"{self.retries}: at most {MAX_RETRIES} retries", field="retries")

    def with_changes(self, **changes: Any) -> JobSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["env"] = dict(self.env)
        data["labels"] = dict(self.labels)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        unknown = set(data) - _spec_fields()
        if unknown:
            raise BadInput(f"unknown job field(s): {', '.join(sorted(unknown))}")
        values = dict(data)
        values["argv"] = tuple(values.get("argv") or ())
        values["stage_in"] = tuple(StageIn(**s) for s in values.get("stage_in") or ())
        values["stage_out"] = tuple(StageOut(**s) for s in values.get("stage_out") or ())
        values["success_exit_codes"] = tuple(values.get("success_exit_codes") or (0,))
        values["avoid_nodes"] = tuple(values.get("avoid_nodes") or ())
        checkpoint = values.get("checkpoint")
        values["checkpoint"] = Checkpoint(**checkpoint) if checkpoint else None
        policy = values.get("retry_policy")
        values["retry_policy"] = RetryPolicy.from_dict(policy) if policy else None
        container = values.get("container")
        values["container"] = Container(**container) if container else None
        values["env"] = dict(values.get("env") or {})
        values["labels"] = dict(values.get("labels") or {})
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text))


@cache
def _spec_fields() -> frozenset[str]:
    """JobSpec's field names (worked out once: a run's records are read by the thousand)."""
    return frozenset(f.name for f in fields(JobSpec))


def _check_relative(path: str, field_name: str) -> None:
    normal = posixpath.normpath(path)
    if path.startswith("/") or normal == ".." or normal.startswith("../"):
        raise BadInput(
            f"{path!r} must be a relative path inside the job's working directory",
            field=field_name,
        )


def make_spec(
    argv: Sequence[str],
    *,
    cores: int | str | None = None,
    memory: str | int | None = None,
    walltime: str | int | None = None,
    gpus: int | str | None = None,
    scratch: str | int | None = None,
    tasks: int | str | None = None,
    **other: Any,
) -> JobSpec:
    """Build a validated JobSpec from user-level values (strings with units allowed).

    With `tasks` and no `cores`, each task gets one core.
    """
    values: dict[str, Any] = dict(other)
    values["argv"] = tuple(argv)
    if tasks is not None:
        values["tasks"] = _parse_count(tasks, "tasks")
        values["cores"] = values["tasks"]
    if cores is not None:
        values["cores"] = _parse_count(cores, "cores")
    if gpus is not None:
        values["gpus"] = _parse_count(gpus, "gpus", minimum=0)
    if memory is not None:
        values["memory_mib"] = parse_memory_mib(memory)
    if walltime is not None:
        values["walltime_s"] = parse_walltime_seconds(walltime)
    if scratch is not None:
        values["scratch_mib"] = parse_memory_mib(scratch, field="scratch")
    return JobSpec(**values).validate()


def _parse_count(value: int | str, name: str, minimum: int = 1) -> int:
    text = str(value).strip()
    if not text.isascii() or not text.lstrip("+-").isdigit() or len(text) > 20:
        raise BadInput(f"{shown(str(value), 40)} is not a whole number", field=name)
    number = int(text)
    if number < minimum:
        raise BadInput(f"{number}: at least {minimum} is needed", field=name)
    if number > MAX_COUNT:
        raise BadInput(f"{number}: at most {MAX_COUNT} can be asked for", field=name)
    return number
