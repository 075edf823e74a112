"""An ESAP/OSSR entry as a CWL CommandLineTool (reference esap.md §8).

- metadata: schema.org (`s:`) name, description, codeRepository, version, keywords, authors with
  their ORCID, license, DOI identifier, runtimePlatform, programmingLanguage;
- notebooks: a papermill tool (the notebook an input defaulting to the entry's repository file,
  its parameters inputs, the executed notebook the output);
- software and batch containers with a known image: a tool running the given command in it
  (DockerRequirement as a hint: the site's image map or runtime resolves it);
- SoftwareRequirement (the software and its version; papermill for notebooks), ResourceRequirement
  from codemeta's memoryRequirements/processorRequirements;
- desktop entries, and entries with nothing to run, raise Unrunnable with the reason.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..errors import BadInput
from ..formats.memory import parse_memory_mib
from .entries import CONTAINER, DESKTOP, NOTEBOOK, Entry

SCHEMA_ORG = "https://schema.org/"
EXECUTED = "executed.ipynb"


class Unrunnable(BadInput):
    """The entry cannot become a tool; the message says why."""


def tool_for(entry: Entry) -> dict[str, Any]:
    if entry.kind == DESKTOP:
        raise Unrunnable(f"{entry.id} ({entry.name}) is a desktop application: no command line to publish",
                         field="ENTRY")
    if entry.kind == NOTEBOOK:
        body = _notebook_tool(entry)
    elif entry.image:
        body = _container_tool(entry)
    elif entry.kind == CONTAINER:
        raise Unrunnable(f"{entry.id} ({entry.name}) is a batch container entry without an image "
                         "(no singularity_image or image known; its url is None)", field="ENTRY")
    else:
        raise Unrunnable(f"{entry.id} ({entry.name}) has no notebook, command line or container image: "
                         "nothing to run (give --image IMAGE when one exists)", field="ENTRY")
    tool: dict[str, Any] = {"cwlVersion": "v1.2", "class": "CommandLineTool", "label": entry.name}
    if entry.description:
        tool["doc"] = entry.description
    tool.update(body)
    hints = _hints(entry)
    if hints:
        tool["hints"] = hints
    tool["$namespaces"] = {"s": SCHEMA_ORG}
    tool.update(_schema_org(entry))
    return tool


def _notebook_tool(entry: Entry) -> dict[str, Any]:
    notebook: dict[str, Any] = {"type": "File", "inputBinding": {"position": 1},
                                "doc": "the notebook to run"}
    default = notebook_url(entry)
    if default:
        notebook["default"] = {"class": "File", "location": default}
        notebook["doc"] = f"the notebook to run (default: {entry.filepath} of {entry.repository} at {entry.ref})"
    elif not entry.repository and not entry.local_notebook:
        raise Unrunnable(f"{entry.id} ({entry.name}) is a notebook entry without a repository "
                         "(give its notebook with --notebook FILE)", field="ENTRY")
    inputs: dict[str, Any] = {
        "notebook": notebook,
        "parameters_file": {"type": "File?", "inputBinding": {"position": 3, "prefix": "-f"},
                            "doc": "papermill parameters as a YAML file"},
    }
    arguments: list[Any] = [{"position": 2, "valueFrom": EXECUTED}]
    for index, (name, cwl_type, default) in enumerate(entry.parameters):
        position = 10 + 3 * index
        # papermill's -p NAME VALUE (typed as YAML), -r NAME VALUE for strings (kept raw)
        flag = "-r" if cwl_type == "string" else "-p"
        arguments += [{"position": position, "valueFrom": flag}, {"position": position + 1, "valueFrom": name}]
        # a CWL boolean is a flag without a value: booleans are the words papermill reads as YAML
        typed: Any = {"type": "enum", "symbols": ["True", "False"]} if cwl_type == "bool" else cwl_type
        spec: dict[str, Any] = {"type": typed, "inputBinding": {"position": position + 2},
                                "doc": f"notebook parameter {name}"}
        if default is not None:
            spec["default"] = default
        inputs[name] = spec
    return {
        "baseCommand": ["papermill"],
        "arguments": arguments,
        "inputs": inputs,
        "outputs": {"executed_notebook": {"type": "File", "outputBinding": {"glob": EXECUTED},
                                          "doc": "the notebook as it ran, with its outputs"}},
    }


def _container_tool(entry: Entry) -> dict[str, Any]:
    return {
        "inputs": {"command": {"type": "string[]", "inputBinding": {"position": 1},
                               "doc": f"the command line to run in {entry.name}'s image {entry.image}"}},
        "stdout": "output.txt",
        "outputs": {"output": {"type": "stdout", "doc": "the command's standard output"}},
    }


def _hints(entry: Entry) -> dict[str, Any]:
    hints: dict[str, Any] = {}
    if entry.image:
        hints["DockerRequirement"] = {"dockerPull": entry.image}
    packages: list[dict[str, Any]] = []
    if entry.kind == NOTEBOOK:
        packages += [{"package": "papermill"}, {"package": "ipykernel"}]
    else:
        package: dict[str, Any] = {"package": entry.name}
        if entry.version:
            package["version"] = [entry.version]
        if entry.identifier:
            package["specs"] = [entry.identifier]
        packages.append(package)
    hints["SoftwareRequirement"] = {"packages": packages}
    resources = resource_requirement(entry)
    if resources:
        hints["ResourceRequirement"] = resources
    return hints


_CORES = re.compile(r"(\d+)\s*(?:cores?|cpus?|threads?|processors?|vcpus?)\b", re.IGNORECASE)
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT])i?B?\b", re.IGNORECASE)


def resource_requirement(entry: Entry) -> dict[str, int]:
    """coresMin/ramMin (MiB) from codemeta's free-text requirements, where they name a number."""
    found: dict[str, int] = {}
    if entry.processors:
        cores = _CORES.search(entry.processors)
        if cores:
            found["coresMin"] = int(cores.group(1))
    if entry.memory:
        memory = _MEMORY.search(entry.memory)
        if memory:
            found["ramMin"] = parse_memory_mib(memory.group(1) + memory.group(2).upper(), field="memoryRequirements")
    return found


def _schema_org(entry: Entry) -> dict[str, Any]:
    meta: dict[str, Any] = {"s:name": entry.name}
    if entry.description:
        meta["s:description"] = entry.description
    if entry.repository:
        meta["s:codeRepository"] = entry.repository
    meta["s:version"] = entry.version or entry.ref
    if entry.keywords:
        meta["s:keywords"] = list(entry.keywords)
    if entry.authors:
        authors = []
        for person in entry.authors:
            author: dict[str, Any] = {"s:name": person.name}
            if person.orcid:
                author["s:identifier"] = person.orcid
            authors.append(author)
        meta["s:author"] = authors
    if entry.license:
        meta["s:license"] = entry.license
    if entry.identifier:
        meta["s:identifier"] = entry.identifier
    if entry.runtime_platform:
        meta["s:runtimePlatform"] = list(entry.runtime_platform)
    if entry.programming_language:
        meta["s:programmingLanguage"] = list(entry.programming_language)
    return meta


def notebook_url(entry: Entry) -> str | None:
    """The raw URL of the entry's notebook file in its repository (GitHub, GitLab), when both are known."""
    if not entry.repository or not entry.filepath:
        return None
    parts = urlsplit(entry.repository.removesuffix(".git").rstrip("/"))
    path = parts.path.strip("/")
    if parts.netloc == "github.com":
        return f"https://raw.githubusercontent.com/{path}/{entry.ref}/{entry.filepath}"
    if parts.scheme in ("http", "https") and path:
        return f"{parts.scheme}://{parts.netloc}/{path}/-/raw/{entry.ref}/{entry.filepath}"  # GitLab's layout
    return None


def dump(tool: dict[str, Any], entry_id: str) -> str:
    header = f"#!/usr/bin/env cwl-runner\n# generated by `esap catalogue cwl` from the catalogue entry {entry_id}\n"
    return header + yaml.safe_dump(tool, sort_keys=False, allow_unicode=True, width=100)
