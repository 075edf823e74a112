"""The one place where a JobSpec becomes a SLURM job: resources, script, names, arrays.

Both access paths (sbatch and slurmrestd) start from the BatchJob built here; `sbatch_argv`
and `rest_fields` only spell the same values in their own syntax.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import BadInput
from ...formats.durations import format_slurm_duration
from ...job import JobSpec
from ...sites import Site
from ..base import Submission

ACCOUNT_ENV = ("SBATCH_ACCOUNT", "SLURM_ACCOUNT")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
ARRAY_DIR = ".slurm"  # per-run directory (under the site's work_root): array task maps, SLURM logs
COMMENT_PREFIX = "esap"


@dataclass(frozen=True)
class Resources:
    """Everything that goes into the scheduler request; jobs with equal Resources share an array."""

    cores: int = 1  # all of the job's cores
    memory_mib: int | None = None
    gpus: int = 0
    walltime_s: int | None = None
    scratch_mib: int | None = None
    tasks: int = 1
    account: str | None = None
    partition: str | None = None
    qos: str | None = None
    constraints: str | None = None
    exclude: str | None = None  # nodes a retry avoids
    requeue: bool = True  # False: esap's retry policy, not SLURM, decides about a failed node
    signal: tuple[str, int] | None = None  # a checkpoint: (signal name, seconds before the time limit)


@dataclass(frozen=True)
class BatchJob:
    """One sbatch / one REST submission: a single job or an array of tasks."""

    name: str
    comment: str
    resources: Resources
    script: str
    workdir: str
    stdout: str
    stderr: str
    env: Mapping[str, str] = field(default_factory=dict)
    array_size: int = 0  # 0: a single job; n: tasks 0..n-1
    job_ids: tuple[str, ...] = ()  # the esap job ids, task index order

    @property
    def array(self) -> str | None:
        return f"0-{self.array_size - 1}" if self.array_size else None


def job_name(run_id: str) -> str:
    """Every scheduler job of a run carries this name: one sacct --name query finds them all."""
    return f"esap-{run_id}"


def resources_of(spec: JobSpec) -> Resources:
    account = spec.account
    if account is None:
        account = next((os.environ[v] for v in ACCOUNT_ENV if os.environ.get(v)), None)
    return Resources(
        cores=spec.cores,
        tasks=spec.tasks,
        memory_mib=spec.memory_mib,
        gpus=spec.gpus,
        walltime_s=spec.walltime_s,
        scratch_mib=spec.scratch_mib,
        account=account,
        partition=spec.partition,
        qos=spec.qos,
        constraints=spec.constraints,
        exclude=",".join(spec.avoid_nodes) or None,
        requeue=spec.retry_policy is None and spec.checkpoint is None,
        signal=(spec.checkpoint.signal, spec.checkpoint.before_s) if spec.checkpoint else None,
    )


def command_line(site: Site, job: Submission) -> str:
    """The shell lines that run the job's command in its working directory."""
    spec = job.spec
    argv: list[str] = list(spec.argv) if spec.argv else ["/bin/sh", "-c", spec.script or ""]
    if spec.container is not None:
        from ...containers import container_argv

        argv = container_argv(site, spec, job.workdir, argv)
    lines = []
    for name, value in spec.env.items():
        if not _ENV_NAME.match(name):
            raise BadInput(f"{name!r} is not a valid environment variable name", field="env")
        lines.append(f"export {name}={shlex.quote(value)}")
    command = "exec " + shlex.join(argv)
    if spec.stdin:
        command += " < " + shlex.quote(spec.stdin)
    lines.append(command)
    return "\n".join(lines)


def single_script(site: Site, job: Submission) -> str:
    return "\n".join([
        "#!/bin/bash",
        f"# esap job {job.job_id} ({job.name})",
        f"cd {shlex.quote(job.workdir)} || exit 1",
        command_line(site, job),
        "",
    ])


def task_script(site: Site, job: Submission) -> str:
    """An array task: like a single job, but the task opens its own std streams."""
    if job.stdout == job.stderr:
        redirect = f"exec >{shlex.quote(job.stdout)} 2>&1"
    else:
        redirect = f"exec >{shlex.quote(job.stdout)} 2>{shlex.quote(job.stderr)}"
    return "\n".join([
        f"# esap job {job.job_id} ({job.name})",
        f"cd {shlex.quote(job.workdir)} || exit 1",
        redirect,
        command_line(site, job),
        "",
    ])


def plan(site: Site, jobs: Sequence[Submission], *, array_min: int, max_array: int) -> list[BatchJob]:
    """Group jobs of the same shape into arrays (chunks of max_array); the rest go alone.

    Order inside an array is the submission order; `plan` keeps the caller's order
    recoverable through BatchJob.job_ids.
    """
    groups: dict[Resources, list[Submission]] = {}
    for job in jobs:
        groups.setdefault(resources_of(job.spec), []).append(job)
    batches: list[BatchJob] = []
    for resources, members in groups.items():
        if len(members) < max(array_min, 2):
            batches.extend(_single(site, job, resources) for job in members)
            continue
        for start in range(0, len(members), max_array):
            batches.append(_array(site, members[start:start + max_array], resources))
    return batches


def _single(site: Site, job: Submission, resources: Resources) -> BatchJob:
    return BatchJob(
        name=job_name(job.run_id),
        comment=f"{COMMENT_PREFIX} {job.job_id}",
        resources=resources,
        script=single_script(site, job),
        workdir=job.workdir,
        stdout=job.stdout.replace("%", "%%"),  # SLURM expands %j etc. in these paths
        stderr=job.stderr.replace("%", "%%"),
        env=job.spec.env,
        job_ids=(job.job_id,),
    )


def array_dir(site: Site, run_id: str) -> Path:
    return Path(site.work_root) / run_id / ARRAY_DIR


def _array(site: Site, members: Sequence[Submission], resources: Resources) -> BatchJob:
    """One script selects the task's lines by $SLURM_ARRAY_TASK_ID; the task -> job id map goes
    to a file in the run's directory (for crash recovery): the comment stays short."""
    run_id = members[0].run_id
    job_ids = tuple(m.job_id for m in members)
    tag = hashlib.sha256("\n".join(job_ids).encode()).hexdigest()[:12]
    directory = array_dir(site, run_id) / tag
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tasks.json").write_text(json.dumps(list(job_ids)))
    lines = [
        "#!/bin/bash",
        f"# esap array of {len(members)} jobs of run {run_id}",
        'case "$SLURM_ARRAY_TASK_ID" in',
    ]
    for index, member in enumerate(members):
        lines += [f"{index})", task_script(site, member).rstrip("\n"), ";;"]
    lines += ['*) echo "esap: no task $SLURM_ARRAY_TASK_ID in this array" >&2; exit 99;;', "esac", ""]
    return BatchJob(
        name=job_name(run_id),
        comment=f"{COMMENT_PREFIX} {run_id} array {tag}",
        resources=resources,
        script="\n".join(lines),
        workdir=str(directory),
        stdout=str(directory / "slurm-%A_%a.out"),
        stderr=str(directory / "slurm-%A_%a.out"),
        array_size=len(members),
        job_ids=job_ids,
    )


def job_ids_from_comment(site: Site, run_id: str, comment: str) -> list[str] | None:
    """The esap job id(s) a scheduler job carries: one for a single job, a list for an array."""
    words = comment.split()
    if len(words) == 2 and words[0] == COMMENT_PREFIX:
        return [words[1]]
    if len(words) == 4 and words[0] == COMMENT_PREFIX and words[2] == "array" and words[1] == run_id:
        path = array_dir(site, run_id) / words[3] / "tasks.json"
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return [str(j) for j in loaded]
    return None


def sbatch_argv(batch: BatchJob) -> list[str]:
    """sbatch options for the CLI path (the script goes on stdin)."""
    r = batch.resources
    argv = [
        "sbatch", "--parsable",
        f"--job-name={batch.name}", f"--comment={batch.comment}",
        f"--chdir={batch.workdir}", f"--output={batch.stdout}", f"--error={batch.stderr}",
        f"--ntasks={r.tasks}", f"--cpus-per-task={r.cores // r.tasks}",
    ]
    if batch.array:
        argv.append(f"--array={batch.array}")
    if r.memory_mib is not None:
        if r.tasks > 1:  # the tasks may land on several nodes: the job's memory follows its cores
            argv.append(f"--mem-per-cpu={memory_per_cpu(r)}M")
        else:
            argv.append(f"--mem={r.memory_mib}M")
    if r.gpus:
        argv.append(f"--gpus={r.gpus}")
    if r.walltime_s is not None:
        argv.append(f"--time={format_slurm_duration(r.walltime_s)}")
    if r.scratch_mib is not None:
        argv.append(f"--tmp={r.scratch_mib}M")
    if r.account:
        argv.append(f"--account={r.account}")
    if r.partition:
        argv.append(f"--partition={r.partition}")
    if r.qos:
        argv.append(f"--qos={r.qos}")
    if r.constraints:
        argv.append(f"--constraint={r.constraints}")
    if r.exclude:
        argv.append(f"--exclude={r.exclude}")
    if not r.requeue:
        argv.append("--no-requeue")
    if r.signal:  # B: to the batch shell, which `exec`s the job's command
        argv.append(f"--signal=B:{r.signal[0]}@{r.signal[1]}")
    return argv


def memory_per_cpu(r: Resources) -> int:
    return -(-(r.memory_mib or 0) // r.cores)


def walltime_minutes(seconds: int) -> int:
    """SLURM keeps limits in whole minutes; a request rounds up."""
    return max(1, -(-seconds // 60))


def rest_fields(batch: BatchJob, base_env: Mapping[str, str]) -> dict[str, object]:
    """Canonical slurmrestd job fields (plain values); rest.py fits them to the server's schema."""
    r = batch.resources
    env = dict(base_env)
    # sbatch exports this from --cpus-per-task and srun reads it; slurmrestd does not set it
    env["SLURM_CPUS_PER_TASK"] = str(r.cores // r.tasks)
    env.update(batch.env)
    fields: dict[str, object] = {
        "name": batch.name,
        "comment": batch.comment,
        "current_working_directory": batch.workdir,
        "standard_output": batch.stdout,
        "standard_error": batch.stderr,
        "tasks": r.tasks,
        "cpus_per_task": r.cores // r.tasks,
        "environment": env,
    }
    if batch.array:
        fields["array"] = batch.array
    if r.memory_mib is not None:
        if r.tasks > 1:
            fields["memory_per_cpu"] = memory_per_cpu(r)
        else:
            fields["memory_per_node"] = r.memory_mib
    if r.gpus:
        fields["gpus"] = r.gpus
    if r.walltime_s is not None:
        fields["time_limit"] = walltime_minutes(r.walltime_s)
    if r.scratch_mib is not None:
        fields["tmp_disk"] = r.scratch_mib
    for name in ("account", "partition", "qos", "constraints"):
        value = getattr(r, name)
        if value:
            fields[name] = value
    if r.exclude:
        fields["excluded_nodes"] = r.exclude
    if not r.requeue:
        fields["requeue"] = False
    if r.signal:
        fields["checkpoint_signal"] = r.signal  # spelled per API version by rest.py
    return fields
