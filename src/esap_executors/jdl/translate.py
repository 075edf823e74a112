"""A JDL document -> the core's job descriptions (one per parametric value)."""

from __future__ import annotations

import math
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..formats.bounds import MAX_COUNT, MAX_RETRIES, MAX_WALLTIME_S
from ..formats.printable import shortened, shown
from ..job import ENV_NAME, Container, JobSpec, StageIn
from . import arguments as args_rules
from .attributes import (
    INTERACTIVE_MESSAGE,
    JOB_TYPES,
    REJECTED_JOB_TYPES,
    REJECTED_TYPES,
    TYPES,
    check_attributes,
)
from .document import JdlDocument, parse_file
from .parametric import parameter_values, substitute
from .sandbox import OutputFile, check_output_uri, check_relative_name, input_entry

DEFAULT_PERUSAL_INTERVAL = 5
MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class JdlJob:
    key: str  # stable within the run
    name: str
    spec: JobSpec
    outputs: tuple[OutputFile, ...]
    parameter: str | None = None


@dataclass(frozen=True)
class JdlDescription:
    doc: JdlDocument
    jobs: tuple[JdlJob, ...]
    requirements: str | None
    rank: str | None
    sites: tuple[str, ...] = ()  # Site: only these
    banned: tuple[str, ...] = ()  # BannedSites
    perusal_interval: int | None = None  # seconds; None: perusal off
    expiry: float | None = None  # epoch seconds the job must start before
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def parametric(self) -> bool:
        return self.jobs[0].parameter is not None


class _Values:
    """Typed access to the attributes, with `_PARAM_` substituted."""

    def __init__(self, doc: JdlDocument, parameter: str | None) -> None:
        self.doc = doc
        self.parameter = parameter

    def raw(self, name: str) -> Any:
        return substitute(self.doc.value(name), self.parameter)

    def string(self, name: str) -> str | None:
        value = self.raw(name)
        if value is not None and not isinstance(value, str):
            raise self.doc.bad(name, f"expected a string in double quotes, found {self.doc.expression(name)}")
        return value

    def strings(self, name: str) -> list[str]:
        value = self.raw(name)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.doc.bad(name, 'expected a list of strings, e.g. {"a", "b"}')
        return value

    def integer(self, name: str, minimum: int, maximum: int = MAX_COUNT) -> int | None:
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                or not float(value).is_integer():
            raise self.doc.bad(name, f"expected a whole number, found {self.doc.expression(name)}")
        if value < minimum:
            raise self.doc.bad(name, f"{int(value)}: at least {minimum} is needed")
        if value > maximum:
            raise self.doc.bad(name, f"{shortened(self.doc.expression(name), 40)}: at most {maximum}")
        return int(value)

    def boolean(self, name: str) -> bool:
        value = self.raw(name)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.doc.bad(name, f"expected true or false, found {self.doc.expression(name)}")
        return value


def load(path: str | Path) -> JdlDescription:
    return translate(parse_file(path))


_UNSCOPED_GLUE = re.compile(r"(?<![.\w])(Glue\w+)")


def _unscoped_site_attributes(doc: JdlDocument) -> list[str]:
    """GLUE names without `other.` read the job's own (unset) attribute, never the site's."""
    warnings = []
    for name in ("Requirements", "Rank"):
        if name in doc:
            for found in sorted(set(_UNSCOPED_GLUE.findall(doc.expression(name)))):
                warnings.append(f"{doc.source}:{doc.line_of(name)}: {name} uses {found}, which is the job's own "
                                f"attribute; the site's is other.{found}")
    return warnings


def translate(doc: JdlDocument) -> JdlDescription:
    warnings = check_attributes(doc) + _unscoped_site_attributes(doc)
    _check_types(doc)
    values = parameter_values(doc)
    jobs: list[JdlJob] = []
    stem = Path(doc.source).stem
    for index, parameter in enumerate(values if values is not None else [None]):
        attrs = _Values(doc, parameter)
        spec, outputs = _job_spec(attrs)
        name = attrs.string("JobName") or stem
        if parameter is not None:
            jobs.append(JdlJob(key=f"param-{index}", name=f"{name}[{parameter}]", spec=spec,
                               outputs=outputs, parameter=parameter))
        else:
            jobs.append(JdlJob(key="job", name=name, spec=spec, outputs=outputs))
    attrs = _Values(doc, None)
    perusal = attrs.boolean("PerusalFileEnable")
    interval = attrs.integer("PerusalTimeInterval", 1, 86400)
    expiry = attrs.raw("ExpiryTime")
    if expiry is not None:
        if isinstance(expiry, bool) or not isinstance(expiry, int | float) or not math.isfinite(expiry) \
                or expiry > MAX_EPOCH:
            raise doc.bad("ExpiryTime", "expected seconds since the epoch (a number before the year 9999)")
        if expiry <= time.time():
            raise doc.bad("ExpiryTime", f"{int(expiry)} has passed: the job could never start")
    return JdlDescription(
        doc=doc,
        jobs=tuple(jobs),
        requirements=_requirements(doc, attrs),
        rank=doc.expression("Rank") if "Rank" in doc else None,
        sites=tuple(attrs.strings("Site")),
        banned=tuple(attrs.strings("BannedSites")),
        perusal_interval=(interval or DEFAULT_PERUSAL_INTERVAL) if perusal else None,
        expiry=float(expiry) if expiry is not None else None,
        warnings=tuple(warnings),
    )


def _check_types(doc: JdlDocument) -> None:
    attrs = _Values(doc, None)
    kind = attrs.string("Type")
    if kind is not None and kind.lower() not in TYPES:
        if kind.lower() in REJECTED_TYPES:
            raise doc.bad("Type", f'not supported: Type = "{kind}" (one job or a parametric job per file; '
                                  "chain jobs with CWL or Snakemake)")
        raise doc.bad("Type", f'"{kind}": expected "Job" or "Parametric"')
    job_types = attrs.strings("JobType")
    for job_type in job_types:
        lowered = job_type.lower()
        if lowered == "interactive" and ("Parameters" in doc or "Executable" in doc or "Image" not in doc):
            raise doc.bad("JobType", f"{INTERACTIVE_MESSAGE}, and is one job (no Parameters)")
        if lowered in REJECTED_JOB_TYPES:
            raise doc.bad("JobType", f'not supported: JobType = "{job_type}" ({REJECTED_JOB_TYPES[lowered]})')
        if lowered not in JOB_TYPES:
            raise doc.bad("JobType", f'"{job_type}": expected "Normal" or "Parametric"')


def _requirements(doc: JdlDocument, attrs: _Values) -> str | None:
    terms = []
    if "Requirements" in doc:
        value = doc.ad.eval(doc.statements["requirements"].name)
        if isinstance(value, bool) and value is False:
            raise doc.bad("Requirements", "is always false: no site can satisfy it")
        terms.append(doc.expression("Requirements"))
    platform = attrs.string("Platform")
    if platform is not None:
        quoted = platform.replace("\\", "\\\\").replace('"', '\\"')
        terms.append(f'other.GlueHostArchitecturePlatformType == "{quoted}"')
    if not terms:
        return None
    if len(terms) == 1:
        return terms[0]
    return " && ".join(f"({t})" for t in terms)


def _job_spec(attrs: _Values) -> tuple[JobSpec, tuple[OutputFile, ...]]:
    doc = attrs.doc
    image = attrs.string("Image")
    container = Container(image) if image else None
    if "interactive" in (t.lower() for t in attrs.strings("JobType")):
        session = JobSpec(interactive=True, container=container, cores=_cores(attrs),
                          walltime_s=attrs.integer("CPUTime", 1), labels={"front": "jdl"})
        return session, ()
    stage_in, names = _input_sandbox(attrs)
    executable = attrs.string("Executable")
    if not executable:
        raise doc.bad("Executable", "Executable is mandatory: the program to run")
    program, shipped = _program(attrs, "Executable", executable, names)
    arguments = attrs.string("Arguments") or ""
    prologue = _hook(attrs, "Prologue", names)
    epilogue = _hook(attrs, "Epilogue", names)
    argv: tuple[str, ...] = ()
    script: str | None = None
    if prologue or epilogue or args_rules.needs_shell(arguments):
        script = _script(program, arguments, shipped, prologue, epilogue)
    else:
        try:
            words = args_rules.split_arguments(arguments)
        except ValueError as exc:
            raise doc.bad("Arguments", f"cannot split {arguments!r}: {exc}") from None
        if shipped:
            argv = ("/bin/sh", "-c", 'chmod u+x "$0" 2>/dev/null; exec "$0" "$@"', program, *words)
        else:
            argv = (program, *words)
    env = _environment(attrs)
    streams = {name: _stream(attrs, name) for name in ("StdInput", "StdOutput", "StdError")}
    cores = _cores(attrs)
    retries = (attrs.integer("RetryCount", 0, MAX_RETRIES) or 0) + \
        (attrs.integer("ShallowRetryCount", 0, MAX_RETRIES) or 0)
    if retries > MAX_RETRIES:
        raise doc.bad("ShallowRetryCount", f"RetryCount + ShallowRetryCount = {retries}: at most {MAX_RETRIES}")
    cpu_time = attrs.integer("CPUTime", 1, MAX_WALLTIME_S)
    labels = {"front": "jdl"}
    vo = attrs.string("VirtualOrganisation")
    if vo:
        labels["vo"] = vo
    if attrs.boolean("WholeNodes"):
        labels["whole_nodes"] = "true"
    if attrs.parameter is not None:
        labels["param"] = attrs.parameter
    spec = JobSpec(
        argv=argv,
        script=script,
        env=env,
        stdin=streams["StdInput"],
        stdout=streams["StdOutput"],
        stderr=streams["StdError"],
        cores=cores,
        walltime_s=cpu_time,
        stage_in=tuple(stage_in),
        retries=retries,
        labels=labels,
        container=container,
    )
    return spec, _output_sandbox(attrs)


def _input_sandbox(attrs: _Values) -> tuple[list[StageIn], set[str]]:
    doc = attrs.doc
    base = attrs.string("InputSandboxBaseURI")
    if base is not None:
        problem = check_output_uri(base)
        if problem:
            raise doc.bad("InputSandboxBaseURI", problem)
    stage_in: list[StageIn] = []
    names: set[str] = set()
    for entry in attrs.strings("InputSandbox"):
        try:
            source, name = input_entry(entry, base, doc.directory)
        except ValueError as exc:
            raise doc.bad("InputSandbox", str(exc)) from None
        if name in names:
            raise doc.bad("InputSandbox", f"two entries arrive as {name!r} in the working directory")
        names.add(name)
        stage_in.append(StageIn(source=source, dest=name))
    return stage_in, names


def _program(attrs: _Values, attribute: str, value: str, shipped_names: set[str]) -> tuple[str, bool]:
    """(how the worker runs it, whether it comes in the InputSandbox)."""
    if value.startswith("/"):
        return value, False
    name = value[2:] if value.startswith("./") else value
    if name in shipped_names:
        return f"./{name}", True
    if "/" in value:
        raise attrs.doc.bad(attribute, f"{value!r} is neither an absolute path on the worker nor a file "
                                       "of the InputSandbox")
    return value, False  # a command on the worker's PATH


def _hook(attrs: _Values, attribute: str, shipped_names: set[str]) -> str | None:
    value = attrs.string(attribute)
    if not value:
        if f"{attribute}Arguments" in attrs.doc:
            raise attrs.doc.bad(f"{attribute}Arguments", f"{attribute}Arguments needs {attribute}")
        return None
    program, shipped = _program(attrs, attribute, value, shipped_names)
    line = args_rules.shell_command(program, attrs.string(f"{attribute}Arguments") or "")
    return f"chmod u+x {shlex.quote(program)} 2>/dev/null; {line}" if shipped else line


def _script(program: str, arguments: str, shipped: bool, prologue: str | None, epilogue: str | None) -> str:
    lines = ["#!/bin/sh"]
    if shipped:
        lines.append(f"chmod u+x {shlex.quote(program)} 2>/dev/null")
    if prologue:
        lines.append(f"{prologue} || exit $?")
    command = args_rules.shell_command(program, arguments)
    if epilogue:
        lines += [command, "status=$?", f"{epilogue} || exit $?", "exit $status"]
    else:
        lines.append(f"exec {command}")
    return "\n".join(lines) + "\n"


def _environment(attrs: _Values) -> dict[str, str]:
    env = {}
    for item in attrs.strings("Environment"):
        name, sep, value = item.partition("=")
        if not sep or not ENV_NAME.fullmatch(name):
            raise attrs.doc.bad("Environment", f'{shown(item, 60)} is not "NAME=value" (NAME: letters, digits, _)')
        env[name] = value
    return env


def _stream(attrs: _Values, name: str) -> str | None:
    value = attrs.string(name)
    if value is None:
        return None
    problem = check_relative_name(value)
    if problem:
        raise attrs.doc.bad(name, f"{value!r} {problem}")
    return value


def _cores(attrs: _Values) -> int:
    doc = attrs.doc
    cpus = attrs.integer("CpuNumber", 1)
    per_node = attrs.integer("SMPGranularity", 1)
    hosts = attrs.integer("HostNumber", 1)
    whole = attrs.boolean("WholeNodes")
    if per_node and hosts and not whole:
        raise doc.bad("SMPGranularity", "cannot be combined with HostNumber unless WholeNodes = true")
    if hosts and cpus and hosts > cpus:
        raise doc.bad("HostNumber", f"{hosts} nodes for {cpus} CPUs: HostNumber should not exceed CpuNumber")
    if hosts and hosts > 1:
        raise doc.bad("HostNumber", f"not supported: HostNumber = {hosts} (esap runs a job on one node)")
    if whole:
        if per_node is None:
            raise doc.bad("WholeNodes", "WholeNodes = true needs SMPGranularity (the CPUs of the node to fill)")
        if cpus and cpus > per_node:
            nodes = math.ceil(cpus / per_node)
            raise doc.bad("CpuNumber", f"not supported: {cpus} CPUs on whole nodes of {per_node} need {nodes} "
                                       "nodes (esap runs a job on one node)")
        return per_node
    if per_node and cpus and cpus > per_node:
        nodes = math.ceil(cpus / per_node)
        raise doc.bad("CpuNumber", f"not supported: {cpus} CPUs with SMPGranularity = {per_node} span {nodes} "
                                   "nodes (esap runs a job on one node)")
    return cpus or per_node or 1


def _output_sandbox(attrs: _Values) -> tuple[OutputFile, ...]:
    doc = attrs.doc
    names = attrs.strings("OutputSandbox")
    for name in names:
        problem = check_relative_name(name)
        if problem:
            raise doc.bad("OutputSandbox", f"{name!r} refused: it {problem}")
    dests: list[str | None] = [None] * len(names)
    uris = attrs.strings("OutputSandboxDestURI")
    base = attrs.string("OutputSandboxBaseDestURI")
    if uris and base:
        raise doc.bad("OutputSandboxDestURI", "give OutputSandboxDestURI or OutputSandboxBaseDestURI, not both")
    if uris:
        if len(uris) != len(names):
            raise doc.bad("OutputSandboxDestURI", f"{len(uris)} URIs for {len(names)} OutputSandbox files: "
                                                  "one per file, in the same order")
        for uri in uris:
            problem = check_output_uri(uri)
            if problem:
                raise doc.bad("OutputSandboxDestURI", problem)
        dests = list(uris)
    elif base:
        problem = check_output_uri(base)
        if problem:
            raise doc.bad("OutputSandboxBaseDestURI", problem)
        dests = [base.rstrip("/") + "/" + name for name in names]
    elif base is None and "OutputSandboxDestURI" in doc and not names:
        raise doc.bad("OutputSandboxDestURI", "OutputSandboxDestURI needs OutputSandbox")
    return tuple(OutputFile(name=n, dest=d) for n, d in zip(names, dests, strict=True))
