"""Which site a step runs on: its `esap:Site` hint, else `--site`, else the core's matchmaking
(GPU steps go to a site that has GPUs; a GPU *hint* falls back to CPU when none has)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..checkpoint import Checkpoint, parse_checkpoint
from ..errors import BadInput
from ..retry_policy import RetryPolicy, parse_block
from ..sites import SITE_NAME, Catalogue

log = logging.getLogger("cwltool")

ESAP_NAMESPACE = "https://w3id.org/esap/cwl#"
SITE_HINT = ESAP_NAMESPACE + "Site"
RETRY_HINT = ESAP_NAMESPACE + "Retry"
CHECKPOINT_HINT = ESAP_NAMESPACE + "Checkpoint"
CUDA_REQUIREMENT = "http://commonwl.org/cwltool#CUDARequirement"


def gpu_requirements(count: int) -> str:
    """A site offers GPUs through its ClassAd attribute `GPUs` (sites.yaml `attributes:`)."""
    return f"other.GPUs >= {count}"


@dataclass(frozen=True)
class Placement:
    site: str | None  # None: the run's default site
    gpus: int
    requirements: str | None = None


def site_hint(job: Any) -> str | None:
    """The site named by an `esap:Site` hint (or requirement) of the step, if any."""
    return named_site(job.builder)


def named_site(holder: Any) -> str | None:
    """The `esap:Site` of anything with cwltool's get_requirement (a tool, a job's builder)."""
    hint, _ = holder.get_requirement(SITE_HINT)
    if not hint:
        return None
    for field in ("site", ESAP_NAMESPACE + "site", "name", ESAP_NAMESPACE + "name"):
        value = hint.get(field)
        if isinstance(value, str) and value:
            return value if field.endswith("site") else _unexpanded(value)
    raise BadInput("the esap:Site hint needs `name: <site>`", field="esap:Site")


def _unexpanded(value: str) -> str:
    """`name` is an identifier field to schema-salad: in a document it comes back as an id
    (`file:///wf.cwl#step/run/slurm-local`). The site is the id's last segment, taken only when
    that segment is a whole site name; anything else is returned as it is, to be refused as unknown."""
    if "#" not in value:
        return value
    last = value.rsplit("#", 1)[1].rsplit("/", 1)[-1]
    return last if SITE_NAME.fullmatch(last) else value


def retry_hint(job: Any) -> RetryPolicy | None:
    """The step's `esap:Retry` hint: `max` and one entry per cause, as a site's `retry:` block."""
    hint, _ = job.builder.get_requirement(RETRY_HINT)
    if not hint:
        return None
    block = _plain({k: v for k, v in hint.items() if k != "class"})
    return parse_block(block, prefix="esap:Retry")


def checkpoint_hint(job: Any) -> Checkpoint | None:
    """The step's `esap:Checkpoint` hint: {signal: USR1, before: 2m, exit_code: 85}."""
    hint, _ = job.builder.get_requirement(CHECKPOINT_HINT)
    if not hint:
        return None
    values = _plain(hint)
    signal, before = values.get("signal"), values.get("before")
    if not signal or before is None:
        raise BadInput("the esap:Checkpoint hint needs `signal` and `before`", field="esap:Checkpoint")
    text = f"{signal}@{before}" + (f":{values['exit_code']}" if values.get("exit_code") else "")
    return parse_checkpoint(text, field="esap:Checkpoint")


def _plain(value: Any) -> Any:
    """Keys without the esap namespace that cwltool may have put before them."""
    if isinstance(value, dict):
        return {str(k).removeprefix(ESAP_NAMESPACE): _plain(v) for k, v in value.items()}
    return value


def place(catalogue: Catalogue, job: Any, default_site: str | None, gpus: int) -> Placement:
    named = site_hint(job) or default_site
    if named is not None:
        catalogue.get(named)
    if gpus <= 0:
        return Placement(site=named, gpus=0)
    from ..matchmaking import match  # classad2 (HTCondor's library): only for a step that asks for GPUs

    _, required = job.builder.get_requirement(CUDA_REQUIREMENT)
    requirements = gpu_requirements(gpus)
    result = match(catalogue, requirements, sites=[named] if named else None)
    if result.matched:
        chosen = result.matched[0][0].name
        return Placement(site=chosen, gpus=gpus, requirements=requirements)
    where = f"site {named} has no GPUs" if named else "no site has GPUs"
    if required:
        raise BadInput(f"step {job.name} requires {gpus} GPU(s) but {where} "
                       "(a site declares them with `attributes: {GPUs: N}`)", field="CUDARequirement")
    log.warning("[job %s] %s: the GPU hint is dropped, the step runs on CPU", job.name, where)
    return Placement(site=named, gpus=0)
