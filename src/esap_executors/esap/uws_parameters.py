"""The parameters of an `esap-executors` UWS job: the one place that names them.

The user side (`esap uws submit`) writes them and the worker (uws_worker.py) reads them. Every
value is a string, as UWS parameters are:

- `type`: `esap-executors` (django-uws picks the worker by it)
- `front`: `cwl`, `snakemake` or `jdl`
- `workflow`: a URL (http, https or file) the worker fetches, the file's name, with its text
  in `workflow_content`, or (front `cwl`) a software-catalogue entry, `esap-catalogue:ossr/<record>`
  (`ida/<name>`, `batch/<name>`), that the worker describes as a CWL tool as `esap catalogue cwl` does
- `image`: with a catalogue entry, the container image its software runs in (`esap catalogue cwl --image`)
- `inputs` / `inputs_content`: the same for the inputs (a CWL job order, a Snakemake config file)
- `file:NAME`: further files beside the workflow (tools it runs, a JDL job's input sandbox)
- `site`, `requirements`: where it runs (a site of the worker's catalogue, a ClassAd expression)
- `sealed_token`: the platform token of the user who submitted the job, sealed for the worker
  (uws_seal.py): django-uws shows every parameter to every authenticated user of the gateway
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ..errors import BadInput

WORKER_TYPE = "esap-executors"
FRONTS = ("cwl", "snakemake", "jdl")
FILE_PREFIX = "file:"
URL_SCHEMES = ("http", "https", "file")
CATALOGUE_SCHEME = "esap-catalogue"
STATUS_RESULT = "esap-run-status"  # the worker's result naming the run's status file (not an output)


@dataclass(frozen=True)
class Source:
    """A file of the job: fetched from `url`, given as `content` under `name`, or a catalogue `entry`'s
    CWL tool (in the software image `image`, when given)."""

    name: str
    url: str | None = None
    content: str | None = None
    entry: str | None = None
    image: str | None = None

    @property
    def reference(self) -> str | None:
        """The parameter's value when the file is not given by its content."""
        if self.entry is not None:
            return f"{CATALOGUE_SCHEME}:{self.entry}"
        return self.url


def catalogue_source(entry: str, image: str | None = None) -> Source:
    """A catalogue entry's CWL tool as the job's workflow: `ossr/6340441` is written `ossr-6340441.cwl`."""
    source, _, key = entry.partition("/")
    if not source or not key or "/" in key or not entry.isprintable() or any(c.isspace() for c in entry):
        raise BadInput(f"{entry!r} is not a catalogue entry (ossr/<Zenodo record>, ida/<name>, batch/<name>)",
                       field="workflow")
    return Source(name=plain_name(f"{source}-{key}.cwl", "workflow"), entry=entry, image=image or None)


@dataclass(frozen=True)
class UwsJobRequest:
    front: str
    workflow: Source
    inputs: Source | None = None
    files: tuple[Source, ...] = ()
    site: str | None = None
    requirements: str | None = None
    sealed_token: str | None = field(default=None, repr=False)


def plain_name(name: str, what: str) -> str:
    """A file name the job directory can hold: no directory part, not hidden."""
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise BadInput(f"{name!r} is not a plain file name", field=what)
    return name


def _source(values: Mapping[str, str], key: str, default_name: str) -> Source | None:
    value = values.get(key, "").strip()
    content = values.get(f"{key}_content")
    if content is not None:
        return Source(name=plain_name(value or default_name, key), content=content)
    if not value:
        return None
    scheme = urlsplit(value).scheme
    if key == "workflow" and scheme == CATALOGUE_SCHEME:
        return catalogue_source(value[len(CATALOGUE_SCHEME) + 1:], values.get("image", "").strip())
    if scheme not in URL_SCHEMES:
        raise BadInput(f"{value!r} is neither a URL ({', '.join(URL_SCHEMES)}) nor given with {key}_content",
                       field=key)
    name = urlsplit(value).path.rstrip("/").rsplit("/", 1)[-1] or default_name
    return Source(name=plain_name(name, key), url=value)


def parse(parameters: Iterable[tuple[str, str]]) -> UwsJobRequest:
    """The job's request, or BadInput naming the parameter."""
    values: dict[str, str] = {}
    files: list[Source] = []
    for key, value in parameters:
        if key.startswith(FILE_PREFIX):
            files.append(Source(name=plain_name(key[len(FILE_PREFIX):], key), content=value))
        else:
            values[key] = value
    front = values.get("front", "")
    if front not in FRONTS:
        raise BadInput(f"{front!r} is not one of {', '.join(FRONTS)}", field="front")
    workflow = _source(values, "workflow", {"cwl": "workflow.cwl", "snakemake": "Snakefile", "jdl": "job.jdl"}[front])
    if workflow is None:
        raise BadInput(f"missing: a URL, a name with workflow_content or {CATALOGUE_SCHEME}:ENTRY", field="workflow")
    if workflow.entry is not None and front != "cwl":
        raise BadInput(f"a catalogue entry is a CWL tool: front {front!r} cannot run {workflow.reference}",
                       field="workflow")
    if workflow.entry is None and values.get("image", "").strip():
        raise BadInput(f"only with {CATALOGUE_SCHEME}:ENTRY as the workflow", field="image")
    inputs = _source(values, "inputs", "inputs.yml")
    return UwsJobRequest(front=front, workflow=workflow, inputs=inputs, files=tuple(files),
                         site=values.get("site") or None, requirements=values.get("requirements") or None,
                         sealed_token=values.get("sealed_token") or None)


def to_parameters(request: UwsJobRequest) -> list[dict[str, str]]:
    """The UWS parameters of a request, as django-uws takes them at job creation."""
    pairs: list[tuple[str, str]] = [("type", WORKER_TYPE), ("front", request.front)]
    for key, source in (("workflow", request.workflow), ("inputs", request.inputs)):
        if source is None:
            continue
        if source.content is not None:
            pairs += [(key, source.name), (f"{key}_content", source.content)]
        elif source.reference is not None:
            pairs.append((key, source.reference))
        if source.image:
            pairs.append(("image", source.image))
    pairs += [(FILE_PREFIX + source.name, source.content or "") for source in request.files]
    for key, optional in (("site", request.site), ("requirements", request.requirements),
                          ("sealed_token", request.sealed_token)):
        if optional:
            pairs.append((key, optional))
    return [{"key": key, "value": value} for key, value in pairs]


def binding(request: UwsJobRequest) -> bytes:
    """The request's digest, without its token: what a sealed token is bound to.

    Values are compared stripped, as the gateway stores them (DRF trims text fields).
    """
    pairs = [(p["key"], p["value"].strip()) for p in to_parameters(replace(request, sealed_token=None))]
    return hashlib.sha256(json.dumps(pairs).encode()).digest()
