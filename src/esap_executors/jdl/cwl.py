"""`esap jdl2cwl`: a JDL job as a CWL CommandLineTool plus its job file (runs under stock cwltool).

Sandbox inputs become File inputs staged into the working directory under their JDL names;
OutputSandbox entries become optional File outputs (a missing one is null, as JDL reports it
missing without failing). Site matchmaking, retries and VO have no CWL equivalent: the tool's
`doc` keeps them for the reader.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from ..errors import BadInput
from ..formats.urls import scheme_of
from ..job import JobSpec
from .translate import JdlDescription, load


def _literal(text: str) -> str:
    """A string CWL must not read as a parameter reference or expression."""
    return text.replace("$(", "\\$(").replace("${", "\\${")


def _input_id(name: str, taken: set[str]) -> str:
    ident = re.sub(r"\W", "_", name) or "input"
    if ident[0].isdigit():
        ident = "in_" + ident
    base, count = ident, 1
    while ident in taken:
        count += 1
        ident = f"{base}_{count}"
    taken.add(ident)
    return ident


def convert(description: JdlDescription) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tool, job order) for a single (non-parametric) JDL job."""
    doc = description.doc
    if description.parametric:
        raise BadInput("not supported by jdl2cwl: parametric jobs (run them with `esap run`)",
                       source=doc.source, line=doc.line_of("Parameters"), field="Parameters")
    job = description.jobs[0]
    spec = job.spec
    inputs: dict[str, Any] = {}
    order: dict[str, Any] = {}
    listing = []
    taken: set[str] = set()
    by_name: dict[str, str] = {}
    for entry in spec.stage_in:
        ident = _input_id(entry.dest, taken)
        by_name[entry.dest] = ident
        inputs[ident] = {"type": "File", "doc": f"InputSandbox entry {entry.dest}"}
        order[ident] = {"class": "File", "location": entry.source if scheme_of(entry.source)
                        else Path(entry.source).as_uri()}
        listing.append({"entry": f"$(inputs.{ident})", "entryname": entry.dest, "writable": True})
    requirements: dict[str, Any] = {}
    if listing:
        requirements["InitialWorkDirRequirement"] = {"listing": listing}
    if spec.env:
        requirements["EnvVarRequirement"] = {"envDef": {k: _literal(v) for k, v in spec.env.items()}}
    if spec.cores > 1:
        requirements["ResourceRequirement"] = {"coresMin": spec.cores}
    if spec.walltime_s:
        requirements["ToolTimeLimit"] = {"timelimit": spec.walltime_s}
    tool: dict[str, Any] = {"cwlVersion": "v1.2", "class": "CommandLineTool", "doc": _doc(description, spec)}
    if requirements:
        tool["requirements"] = requirements
    argv = _command(spec)
    tool["baseCommand"] = [argv[0]]
    if len(argv) > 1:
        tool["arguments"] = [_literal(a) for a in argv[1:]]
    tool["inputs"] = inputs
    if spec.stdin:
        staged = by_name.get(spec.stdin)
        tool["stdin"] = f"$(inputs.{staged}.path)" if staged else _literal(spec.stdin)
    if spec.stdout:
        tool["stdout"] = _literal(spec.stdout)
    if spec.stderr and spec.stderr != spec.stdout:
        tool["stderr"] = _literal(spec.stderr)
    outputs: dict[str, Any] = {}
    out_taken: set[str] = set(inputs)
    for out in job.outputs:
        ident = _input_id(out.name, out_taken)
        outputs[ident] = {"type": "File?", "outputBinding": {"glob": _literal(out.name)}}
    tool["outputs"] = outputs
    return tool, order


def _command(spec: JobSpec) -> list[str]:
    if spec.stderr and spec.stderr == spec.stdout:
        # one file for both streams: CWL has no such redirection, the shell does it
        body = spec.script or "exec " + " ".join(_quote(a) for a in spec.argv)
        return ["/bin/sh", "-c", "exec 2>&1\n" + body]
    if spec.script:
        return ["/bin/sh", "-c", spec.script]
    return list(spec.argv)


def _quote(word: str) -> str:
    return shlex.quote(word)


def _doc(description: JdlDescription, spec: JobSpec) -> str:
    lines = [f"Translated by esap jdl2cwl from {Path(description.doc.source).name}."]
    if description.requirements:
        lines.append(f"JDL Requirements (site matchmaking, not expressible in CWL): {description.requirements}")
    if description.rank:
        lines.append(f"JDL Rank: {description.rank}")
    if spec.retries:
        lines.append(f"JDL retries: {spec.retries} (RetryCount + ShallowRetryCount)")
    if spec.labels.get("vo"):
        lines.append(f"JDL VirtualOrganisation: {spec.labels['vo']}")
    for out in description.jobs[0].outputs:
        if out.dest:
            lines.append(f"JDL output destination (copy it there after the run): {out.name} -> {out.dest}")
    if description.perusal_interval:
        lines.append("JDL PerusalFileEnable: CWL returns outputs only at the end")
    return "\n".join(lines)


def jdl2cwl_command(args: argparse.Namespace) -> int:
    description = load(args.jdl)
    folder = Path(args.output_dir)
    if folder.exists() and not folder.is_dir():
        raise BadInput(f"{folder} exists and is not a directory", field="--output-dir")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInput(f"cannot create {folder}: {exc.strerror}", field="--output-dir") from None
    tool, order = convert(description)
    stem = Path(args.jdl).stem
    tool_path = folder / f"{stem}.cwl"
    job_path = folder / f"{stem}.job.yml"
    tool_path.write_text("#!/usr/bin/env cwl-runner\n" + yaml.safe_dump(tool, sort_keys=False))
    job_path.write_text(yaml.safe_dump(order, sort_keys=False) if order else "{}\n")
    for warning in description.warnings:
        print(f"esap: warning: {warning}")
    print(f"{tool_path}\n{job_path}")
    return 0
