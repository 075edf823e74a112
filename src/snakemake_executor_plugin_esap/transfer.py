"""Snakemake jobs on a site without a shared filesystem (e.g. HTCondor file transfer), as the CWL
front runs there: the job's files travel with it.

The workflow's sources (Snakefile, includes, scripts, config files), the job's inputs (storage
inputs as the local copies Snakemake fetched on this side) go in, by their paths relative to the
workflow directory; its outputs, logs and benchmarks come back to where Snakemake expects them.
Snakemake on this side keeps fetching and storing storage files (its local copies count as
shared), so the execute side needs no storage token.

Where the site runs a step's own image (capability `step_images`, e.g. Rosetta), the job runs
in the image the site names for its execute-side tools (`execute: {image: ...}`: Python and
Snakemake), or in the rule's own `container:` image, which must then hold Snakemake too: the
site runs no container inside the step, so the job's Snakemake does not deploy it again.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable
from typing import Any

from esap_executors.errors import BadInput
from esap_executors.job import Container, StageIn, StageOut

# options of the job's command naming paths of this side that the execute side does not have
_DROPPED_WITH_VALUES = ("--wait-for-files", "--wait-for-files-file")


# Snakemake's names of one option; the job's command spells it --deployment-method
_DEPLOYMENT_OPTIONS = ("--software-deployment-method", "--deployment-method", "--deployment", "--sdm")
_IN_IMAGE = ("apptainer", "singularity")


def job_image(execute_image: str | None, rule_image: str | None, *, step_images: bool) -> Container | None:
    """The image the job runs in on a site that runs a step's own image (None elsewhere)."""
    if not step_images:
        return None
    image = rule_image.removeprefix("docker://") if rule_image else execute_image
    return Container(image) if image else None


def job_command(command: str, workdir: str, *, in_rule_image: bool = False) -> str:
    """The job's Snakemake command run in the transferred copy of the workflow directory
    (`in_rule_image`: the job already runs in its rule's image; Snakemake deploys no container)."""
    tokens = shlex.split(command)
    result: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if in_rule_image and token in _DEPLOYMENT_OPTIONS:
            index += 1
            methods = []
            while index < len(tokens) and not tokens[index].startswith("--"):
                methods += [] if tokens[index] in _IN_IMAGE else [tokens[index]]
                index += 1
            result += [token, *methods] if methods else []
            continue
        if token in _DROPPED_WITH_VALUES:
            index += 1
            while index < len(tokens) and not tokens[index].startswith("--"):
                index += 1
            continue
        if token == "--snakefile" and index + 1 < len(tokens):
            result += [token, _relative(tokens[index + 1], workdir, "--snakefile")]
            index += 2
            continue
        result.append(token)
        index += 1
    return shlex.join(result)


def files_of(job: Any, sources: Iterable[str], workdir: str) -> tuple[tuple[StageIn, ...], tuple[StageOut, ...]]:
    """What goes with the job (sources and inputs) and what comes back (outputs, logs, benchmarks)."""
    inputs: dict[str, str] = {}
    for path in [*sources, *(str(f) for f in job.input)]:
        relative = _relative(path, workdir, "input")
        inputs.setdefault(relative, os.path.join(workdir, relative))
    outputs: dict[str, str] = {}
    produced = [*job.output, *job.log, *(job.benchmark if isinstance(job.benchmark, list)
                                          else [job.benchmark] if job.benchmark else [])]
    for path in (str(f) for f in produced):
        relative = _relative(path, workdir, "output")
        outputs.setdefault(relative, os.path.join(workdir, relative))
    for dest in outputs.values():  # the transfer back writes into existing directories only
        os.makedirs(os.path.dirname(dest), exist_ok=True)
    return (tuple(StageIn(source, dest) for dest, source in sorted(inputs.items())),
            tuple(StageOut(source, dest) for source, dest in sorted(outputs.items())))


def workflow_sources(workflow: Any) -> list[str]:
    """The workflow's source files relative to the working directory (Snakemake's own list)."""
    dag = getattr(workflow, "dag", None)
    found = dag.get_sources() if dag is not None else []
    return sorted(str(f) for f in found if not str(f).startswith(".."))


def _relative(path: str, workdir: str, what: str) -> str:
    full = os.path.normpath(os.path.join(workdir, path))
    if not (full + os.sep).startswith(os.path.normpath(workdir) + os.sep):
        raise BadInput(f"{path}: outside the workflow directory {workdir}, it cannot go with the job to a "
                       "site without a shared filesystem (put it under the workflow directory or in storage)",
                       field=what)
    return os.path.relpath(full, workdir)
