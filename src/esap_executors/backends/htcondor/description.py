"""Submit descriptions: one dict of submit keys per job, then clusters sharing a template.

Jobs whose descriptions have the same keys go to the schedd as ONE cluster: the keys whose
values are equal for all become the template, the others become item data (one proc each).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...checkpoint import wrapped
from ...containers import container_argv
from ...errors import BadInput
from ...formats.urls import scheme_of
from ...sites import Site
from ..base import Submission
from . import quoting


def script_name(job: Submission) -> str:
    """One file per job: jobs sharing a working directory must not overwrite each other's script."""
    return f"esap-{job.job_id}.sh"
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
RUN_ATTRIBUTE = "EsapRunId"
JOB_ATTRIBUTE = "EsapJobId"


@dataclass(frozen=True)
class SubmitSettings:
    """What a backend decides once for all jobs of a batch."""

    event_log: str
    transfer_files: bool  # no shared filesystem: HTCondor moves inputs and outputs
    owner: str | None = None  # set when submitting as root on behalf of a user
    containers: bool = False  # the pool's execute nodes can run the site's container runtime
    extra: Mapping[str, str] = field(default_factory=dict)  # site-wide submit keys


@dataclass(frozen=True)
class Cluster:
    """One schedd submission: a template and the item data of its procs."""

    template: dict[str, str]
    items: list[dict[str, str]]
    indexes: list[int]  # positions of its jobs in the batch


def job_description(job: Submission, site: Site, settings: SubmitSettings) -> dict[str, str]:
    spec = job.spec
    keys: dict[str, str] = {
        "universe": "vanilla",
        "initialdir": quoting.literal(job.workdir),
        "log": quoting.literal(settings.event_log),
        # relative to initialdir where possible: then the same for every job of a cluster
        "output": quoting.literal(_relative_to(job.stdout, job.workdir)),
        "error": quoting.literal(_relative_to(job.stderr, job.workdir)),
        "request_cpus": str(spec.cores),
        "transfer_executable": "false",
        "batch_name": quoting.literal(job.run_id),
        f"My.{RUN_ATTRIBUTE}": quoting.ad_string(job.run_id),
        f"My.{JOB_ATTRIBUTE}": quoting.ad_string(job.job_id),
        "My.EsapName": quoting.ad_string(job.name or job.job_id),
    }
    argv = list(spec.argv) if spec.argv else ["/bin/sh", script_name(job)]
    argv = wrapped(argv, spec.checkpoint, spec.walltime_s)  # HTCondor sends no signal before the limit
    if spec.container is not None:
        if not settings.containers:
            raise BadInput(
                f"site {site.name}: its pool cannot run containers (options.containers is false)",
                field="container",
            )
        argv = container_argv(site, spec, job.workdir, argv)
    if "/" not in argv[0]:
        # looked up in PATH on the execute side, where the job runs
        argv = ["/usr/bin/env", *argv]
    keys["executable"] = quoting.literal(argv[0])
    if len(argv) > 1:
        keys["arguments"] = quoting.arguments(argv[1:])
    env = dict(spec.env)
    env.setdefault("PATH", DEFAULT_PATH)
    keys["environment"] = quoting.environment(env)
    if spec.stdin:
        keys["input"] = quoting.literal(spec.stdin)
    if spec.memory_mib is not None:
        keys["request_memory"] = str(spec.memory_mib)
    if spec.scratch_mib is not None:
        keys["request_disk"] = f"{spec.scratch_mib}MB"
    if spec.gpus:
        keys["request_gpus"] = str(spec.gpus)
    if spec.walltime_s is not None:
        keys["allowed_execute_duration"] = str(spec.walltime_s)
    if spec.avoid_nodes:  # a retry after a node failure keeps away from the machines that failed
        keys["requirements"] = " && ".join(f"(Machine != {quoting.ad_string(n)})" for n in spec.avoid_nodes)
    if spec.accounting_group:
        keys["accounting_group"] = quoting.literal(spec.accounting_group)
    if settings.owner:
        keys["My.Owner"] = quoting.ad_string(settings.owner)
    if settings.transfer_files:
        keys.update(transfer_keys(job))
    else:
        keys["should_transfer_files"] = "NO"
    keys.update(settings.extra)
    return keys


def _relative_to(path: str, directory: str) -> str:
    parent, name = os.path.split(path)
    return name if os.path.normpath(parent) == os.path.normpath(directory) else path


def transfer_keys(job: Submission) -> dict[str, str]:
    """File transfer: inputs by their path on the submit side, outputs remapped to their dest."""
    spec = job.spec
    inputs = [script_name(job)] if not spec.argv else []
    for entry in spec.stage_in:
        direct = scheme_of(entry.source) is None and "/" not in entry.dest.strip("/")
        if direct and os.path.basename(entry.source.rstrip("/")) == entry.dest.strip("/"):
            inputs.append(os.path.abspath(entry.source))
        else:
            # placed in the submit-side workdir under its dest name by the backend first
            inputs.append(posixpath.normpath(entry.dest))
    # relative paths keep their directories on both sides (absolute ones land at the top)
    keys = {"should_transfer_files": "YES", "when_to_transfer_output": "ON_EXIT", "preserve_relative_paths": "true"}
    if inputs:
        keys["transfer_input_files"] = quoting.file_list(inputs)
    outputs = [o for o in spec.stage_out if not o.optional]
    if outputs:
        keys["transfer_output_files"] = quoting.file_list([posixpath.normpath(o.source) for o in outputs])
        remaps = []
        for out in outputs:
            if scheme_of(out.dest) is not None:
                raise BadInput(f"{out.dest!r}: HTCondor file transfer writes local paths only", field="stage_out")
            dest = out.dest if os.path.isabs(out.dest) else os.path.join(job.workdir, out.dest)
            source = posixpath.normpath(out.source)
            if os.path.normpath(dest) != os.path.join(job.workdir, source):
                for text in (source, dest):
                    if any(c in text for c in "=;\""):
                        raise BadInput(f"{text!r}: '=', ';' and quotes cannot be remapped", field="stage_out")
                remaps.append(f"{source} = {dest}")
        if remaps:
            keys["transfer_output_remaps"] = quoting.literal('"' + "; ".join(remaps) + '"')
    return keys


def staged_copies(job: Submission) -> list[tuple[str, str]]:
    """(source, dest) inputs the backend must place in the submit-side workdir before submit."""
    copies = []
    for entry in job.spec.stage_in:
        direct = scheme_of(entry.source) is None and "/" not in entry.dest.strip("/")
        if not (direct and os.path.basename(entry.source.rstrip("/")) == entry.dest.strip("/")):
            copies.append((entry.source, entry.dest))
    return copies


def write_script(job: Submission) -> None:
    """A script job: its body as a file the job runs with /bin/sh (never passed via argv)."""
    if job.spec.argv or job.spec.script is None:
        return
    path = Path(job.workdir) / script_name(job)
    path.write_text(job.spec.script if job.spec.script.endswith("\n") else job.spec.script + "\n")
    path.chmod(0o755)


def clusters(descriptions: Sequence[dict[str, str]], max_size: int | None = None) -> list[Cluster]:
    """Group jobs with the same submit keys, at most `max_size` procs a cluster (the site's
    max_array_size); constant values go in the template."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, keys in enumerate(descriptions):
        groups.setdefault(tuple(sorted(keys)), []).append(index)
    chunks = [(names, indexes[start:start + (max_size or len(indexes))])
              for names, indexes in groups.items() for start in range(0, len(indexes), max_size or len(indexes))]
    result = []
    for names, indexes in chunks:
        template: dict[str, str] = {}
        varying: list[str] = []
        for name in names:
            values = {descriptions[i][name] for i in indexes}
            if len(values) == 1:
                template[name] = values.pop()
            else:
                varying.append(name)
        variables = {name: f"esap_v{n}" for n, name in enumerate(varying)}
        prefixes = {name: _path_prefix([descriptions[i][name] for i in indexes]) for name in varying}
        for name, variable in variables.items():
            template[name] = f"{prefixes[name]}$({variable})"
        items = [
            {variables[name]: descriptions[i][name][len(prefixes[name]):] for name in varying} for i in indexes
        ]
        result.append(Cluster(template=template, items=items, indexes=indexes))
    return result


def _path_prefix(values: Sequence[str]) -> str:
    """The directory prefix absolute paths share, kept in the template.

    With late materialization a path made only of a macro counts as relative when the schedd
    materializes it (it gets the submit directory prepended): the template must start with "/".
    """
    if not all(v.startswith("/") for v in values):
        return ""
    common = os.path.commonprefix(list(values))
    prefix = common[: common.rfind("/") + 1]
    if any(v[len(prefix):][:1].isspace() for v in values):
        return ""  # item data loses leading whitespace
    return prefix
