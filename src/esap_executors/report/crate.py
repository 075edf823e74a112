"""A run as a Workflow Run RO-Crate (Process Run Crate when the run has no workflow file).

The crate holds the workflow (CWL, Snakefile or JDL) as its main entity, the run's inputs and
outputs with their SHA-256 checksums, one CreateAction for the whole run (instrument: the
workflow) and one CreateAction per scheduler job: where it ran (the site, as `location`), its
scheduler id, container image, start and end, status, exit code, requests
(`additionalProperty`) and what the site accounted it used (`resourceUsage`).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

from .model import JobReport, RunReport

ROCRATE_VERSION = "1.1"  # what the Workflow Run Crate 0.5 profiles build on
PROCESS_RUN = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_ROCRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
WFRUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
LANGUAGES = {"cwl": "cwl", "snakemake": "snakemake"}
COPY_LIMIT = 100 * 1024 * 1024  # larger files are referenced where they are, with their checksum
UNITS = {"s": "https://qudt.org/vocab/unit/SEC", "MiB": "https://qudt.org/vocab/unit/MebiBYTE"}
DIGEST = re.compile(r"@sha256:([0-9a-f]{64})$")


def write_crate(report: RunReport, metadata: Mapping[str, Any], directory: str | Path) -> Path:
    """Write the crate into `directory` (created); returns the path of ro-crate-metadata.json."""
    out = Path(directory)
    crate = ROCrate(version=ROCRATE_VERSION)
    crate.metadata.extra_contexts.append(WFRUN_CONTEXT)
    summary = report.summary
    crate.name = f"esap run {summary.run_id}"
    crate.description = (f"A {summary.front} run of esap-executors: {summary.jobs} job(s) on "
                         f"{', '.join(summary.sites) or 'no site'}")
    crate.datePublished = _iso(time.time())
    crate.license = str(metadata.get("license") or "notspecified")
    workflow_entity = _add_workflow(crate, metadata)
    profiles = [PROCESS_RUN] + ([WORKFLOW_RUN, WORKFLOW_ROCRATE] if workflow_entity is not None else [])
    for profile in profiles:
        entity = crate.add(ContextEntity(crate, profile, properties={
            "@type": "CreativeWork", "name": _profile_name(profile), "version": profile.rsplit("/", 1)[-1]}))
        crate.root_dataset.append_to("conformsTo", entity)

    agent = crate.add(ContextEntity(crate, "#submitter", properties={
        "@type": "Person", "name": str(metadata.get("user") or _user())}))
    inputs = [_add_data(crate, item, "inputs") for item in _items(metadata.get("inputs"))]
    outputs = [_add_data(crate, item, "outputs") for item in _items(metadata.get("outputs"))]
    engine = _add_engine(crate, metadata, summary.front)
    instrument = workflow_entity if workflow_entity is not None else engine
    run_action = crate.add_action(instrument, identifier=f"#run-{summary.run_id}", object=inputs, result=outputs,
                                  properties={
        "name": f"esap run {summary.run_id}",
        "description": f"{summary.front} run {summary.key}",
        "startTime": _iso(summary.started or summary.created),
        **({"endTime": _iso(summary.ended)} if summary.ended else {}),
        "actionStatus": _status(summary.final and set(summary.states) <= {"completed"}, summary.final),
        "agent": {"@id": agent.id},
    })
    if workflow_entity is not None:
        _add_parameters(crate, workflow_entity, inputs, outputs)
    crate.root_dataset.append_to("mentions", run_action)
    tools: dict[str, Any] = {}
    for job in report.jobs:
        action = _add_job(crate, job, tools)
        action["agent"] = agent
        crate.root_dataset.append_to("mentions", action)
    out.mkdir(parents=True, exist_ok=True)
    crate.write(out)
    return out / "ro-crate-metadata.json"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _items(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _add_workflow(crate: ROCrate, metadata: Mapping[str, Any]) -> Any:
    workflow = metadata.get("workflow")
    if not isinstance(workflow, Mapping) or not workflow.get("path") or not Path(workflow["path"]).is_file():
        return None
    path = Path(workflow["path"])
    language = str(workflow.get("language", ""))
    properties = {"name": str(workflow.get("name") or path.name), "sha256": sha256_of(path)}
    if language in LANGUAGES:
        return crate.add_workflow(path, dest_path=path.name, main=True, lang=LANGUAGES[language],
                                  properties=properties)
    # JDL: no ComputerLanguage entity in the rocrate library; described here
    entity = crate.add_workflow(path, dest_path=path.name, main=True, lang="cwl", properties=properties)
    language_entity = crate.add(ContextEntity(crate, "#jdl", properties={
        "@type": "ComputerLanguage", "name": "Job Description Language (gLite JDL)",
        "alternateName": "JDL", "identifier": {"@id": "https://edms.cern.ch/document/590869"},
        "url": {"@id": "https://edms.cern.ch/document/590869"}}))
    entity["programmingLanguage"] = language_entity
    return entity


def _add_engine(crate: ROCrate, metadata: Mapping[str, Any], front: str) -> Any:
    engine = metadata.get("engine") if isinstance(metadata.get("engine"), Mapping) else {}
    assert isinstance(engine, Mapping)
    from .. import __version__

    name = str(engine.get("name") or f"esap-executors ({front})")
    return crate.add(ContextEntity(crate, "#engine", properties={
        "@type": "SoftwareApplication", "name": name,
        "softwareVersion": str(engine.get("version") or __version__)}))


def _add_data(crate: ROCrate, item: Mapping[str, Any], folder: str) -> Any:
    path = Path(str(item.get("path", "")))
    properties: dict[str, Any] = {"name": str(item.get("name") or path.name), "alternateName": str(path)}
    if path.is_dir():
        return crate.add_dataset(None, f"{path.as_uri()}/", properties=properties)
    if not path.is_file():
        properties["description"] = "not found when the crate was written"
        return crate.add_file(None, path.as_uri(), properties=properties)
    properties.update(sha256=sha256_of(path), contentSize=str(path.stat().st_size),
                      dateModified=_iso(path.stat().st_mtime))
    if path.stat().st_size > COPY_LIMIT:
        return crate.add_file(None, path.as_uri(), properties=properties)
    destination = f"{folder}/{_unique_name(crate, folder, path)}"
    return crate.add_file(path, dest_path=destination, properties=properties)


def _unique_name(crate: ROCrate, folder: str, path: Path) -> str:
    name, count = path.name, 1
    while crate.get(f"{folder}/{name}") is not None:
        count += 1
        name = f"{path.stem}_{count}{path.suffix}"
    return name


def _add_parameters(crate: ROCrate, workflow: Any, inputs: Sequence[Any], outputs: Sequence[Any]) -> None:
    """FormalParameters of the workflow for the named inputs and outputs (their values' slots)."""
    for direction, entities in (("input", inputs), ("output", outputs)):
        for entity in entities:
            slot = entity.get("name")
            kind = "Dataset" if "Dataset" in _types(entity) else "File"
            parameter = crate.add_formal_parameter(
                name=str(slot), additionalType=kind, identifier=f"#param-{direction}-{_safe(entity.id)}")
            parameter["workExample"] = entity
            entity["exampleOfWork"] = parameter
            workflow.append_to(direction, parameter)


def _add_job(crate: ROCrate, job: JobReport, tools: dict[str, Any]) -> Any:
    tool = tools.get(job.group)
    if tool is None:
        tool = tools[job.group] = crate.add(ContextEntity(crate, f"#tool-{_safe(job.group)}", properties={
            "@type": "SoftwareApplication", "name": job.group}))
    site = crate.get(f"#site-{_safe(job.site)}") or crate.add(ContextEntity(crate, f"#site-{_safe(job.site)}",
                                                                            properties={"@type": "Place",
                                                                                        "name": job.site}))
    ok = job.state == "completed"
    properties: dict[str, Any] = {
        "name": f"{job.name} ({job.job_id})",
        "description": f"scheduler job {job.native_id or '-'} on {job.site}, {job.state}",
        "location": {"@id": site.id},
        "actionStatus": _status(ok, final=job.ended is not None),
        "additionalProperty": [],
        "resourceUsage": [],
    }
    if job.started is not None:
        properties["startTime"] = _iso(job.started)
    if job.ended is not None:
        properties["endTime"] = _iso(job.ended)
    if not ok and job.ended is not None:
        exit_text = f"exit code {job.exit_code}" if job.exit_code is not None else job.state
        properties["error"] = job.reason or exit_text
        if job.cause and job.cause != "EXIT_CODE" and job.cause not in properties["error"]:
            properties["error"] = f"{job.cause}: {properties['error']}"
    action = crate.add_action(tool, identifier=f"#job-{job.job_id}", properties=properties)
    facts = [("esap job id", job.job_id, None), ("site", job.site, None),
             ("scheduler job id", job.native_id, None), ("exit code", job.exit_code, None),
             ("attempt", job.attempt, None), ("failure cause", job.cause, None),
             ("retry", job.retry_note, None), ("queued", _iso(job.queued), None),
             ("requested cores", job.cores, None), ("requested memory", job.memory_mib, "MiB"),
             ("requested walltime", job.walltime_s, "s")]
    if job.segments:  # a checkpointed step: one action, its scheduler jobs listed in it
        facts.append(("segments", len(job.segments), None))
        facts += [(f"segment {n}", f"{s.job_id}: scheduler job {s.native_id or '-'}, {s.state}"
                   + ("" if s.exit_code is None else f" (exit {s.exit_code})"), None)
                  for n, s in enumerate(job.segments, start=1)]
    action["additionalProperty"] = [_value(crate, action, i, name, value, unit)
                                    for i, (name, value, unit) in enumerate(facts) if value is not None]
    usage = [("wallTime", job.wall_s, "s"), ("cpuTime", job.cpu_s, "s"), ("peakMemory", job.max_memory_mib, "MiB")]
    action["resourceUsage"] = [_value(crate, action, 100 + i, name, value, unit)
                               for i, (name, value, unit) in enumerate(usage) if value is not None]
    if job.container:
        action["containerImage"] = _image(crate, job.container)
    return action


def _value(crate: ROCrate, action: Any, index: int, name: str, value: object, unit: str | None) -> Any:
    properties: dict[str, Any] = {"@type": "PropertyValue", "name": name, "propertyID": name, "value": value}
    if unit:
        properties["unitCode"] = UNITS[unit]
        properties["unitText"] = unit
    return crate.add(ContextEntity(crate, f"{action.id}-{index}", properties=properties))


def _image(crate: ROCrate, image: str) -> Any:
    identifier = f"#image-{_safe(image)}"
    existing = crate.get(identifier)
    if existing is not None:
        return existing
    digest = DIGEST.search(image)
    name = DIGEST.sub("", image)
    sif = name.endswith(".sif") or name.startswith("/")
    properties: dict[str, Any] = {
        "@type": "ContainerImage", "name": name,
        "additionalType": {"@id": "https://w3id.org/ro/terms/workflow-run#" + ("SIFImage" if sif else "DockerImage")},
    }
    if not sif:
        repository, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", "")
        first = repository.split("/", 1)[0]
        has_registry = "/" in repository and ("." in first or ":" in first or first == "localhost")
        registry = first if has_registry else "docker.io"
        repository = repository.split("/", 1)[1] if has_registry else repository
        properties.update(registry=registry, name=repository)
        if tag:
            properties["tag"] = tag
    if digest:
        properties["sha256"] = digest.group(1)
    return crate.add(ContextEntity(crate, identifier, properties=properties))


def _status(ok: bool, final: bool = True) -> dict[str, str]:
    if not final:
        return {"@id": "http://schema.org/ActiveActionStatus"}
    return {"@id": "http://schema.org/CompletedActionStatus" if ok else "http://schema.org/FailedActionStatus"}


def _types(entity: Any) -> list[str]:
    kind = entity.type
    return list(kind) if isinstance(kind, list) else [str(kind)]


def _profile_name(profile: str) -> str:
    return {PROCESS_RUN: "Process Run Crate", WORKFLOW_RUN: "Workflow Run Crate",
            WORKFLOW_ROCRATE: "Workflow RO-Crate"}[profile]


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _iso(value: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(value)) + f".{int(value % 1 * 1000):03d}+00:00"
