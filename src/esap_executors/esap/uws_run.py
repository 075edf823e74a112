"""One UWS job's workflow run through a front: its directory, the front's command line, its outputs.

The worker runs the front as the user would (esap-cwltool, snakemake --executor esap, esap run
job.jdl) in a directory of its own under $ESAP_UWS_WORKDIR, with the UWS job's URL as the run key,
so a second delivery of the same job reattaches to the run's scheduler jobs instead of submitting
them again. The user's platform token reaches the front in its environment only (BEARER_TOKEN),
where the site policy of every front reads it.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..states import JobState
from ..store import Store
from ..submitter import run_id_for
from .uws_jobdir import FRONT_UMASK
from .uws_jobdir import WORKDIR_ENV as WORKDIR_ENV
from .uws_jobdir import JobDirectory as JobDirectory
from .uws_jobdir import job_directory as job_directory
from .uws_parameters import Source, UwsJobRequest
from .uws_sources import SourcePolicy

_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def record_exit(directory: JobDirectory, run_id: str, code: int) -> None:
    partial = directory.front_exit.with_suffix(".part")
    partial.write_text(json.dumps({"run": run_id, "exit": code}))
    partial.replace(directory.front_exit)


def ended_run(directory: JobDirectory, store: Store, current_run_id: str) -> tuple[str, int] | None:
    """(run id, the front's exit code) of a run an earlier delivery saw to its end but did not report.

    The front's recorded exit code; else, for a front that ended unrecorded (the worker died in
    between), the run its status file names when the store has moved past it: a CWL run whose
    generation ended (esap-cwltool ends it as cwltool finishes), which a new front would not resume
    but run again. Its outcome is then what its jobs ended in, with cwltool's output document."""
    try:
        recorded = json.loads(directory.front_exit.read_text())
        return str(recorded["run"]), int(recorded["exit"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        previous = str(json.loads(directory.status.read_text())["run"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if previous == current_run_id or store.run(previous) is None:
        return None
    jobs = store.jobs_of_run(previous)
    completed = bool(jobs) and all(job.state is JobState.COMPLETED for job in jobs)
    return previous, 0 if completed and _output_document(directory) is not None else 1


def _output_document(directory: JobDirectory) -> dict[str, Any] | None:
    try:
        document = json.loads(directory.stdout.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def materialise(source: Source, into: Path, token: str | None = None, field: str = "workflow") -> Path:
    """The file in the job directory: written from its content, read from a URL the deployment allows
    (uws_sources.py), or a catalogue entry's CWL tool (the user's token, if the gateway asks for one)."""
    if source.entry is not None:
        from .uws_catalogue import write_tool

        return write_tool(source, into, token)
    path = into / source.name
    if source.content is not None:
        path.write_text(source.content)
        return path
    assert source.url is not None
    policy = SourcePolicy.from_environment()
    if urlsplit(source.url).scheme == "file":
        path.write_bytes(policy.read_file(source.url, field))
    else:
        path.write_bytes(policy.fetch(source.url, field))
    return path


def front_argv(request: UwsJobRequest, directory: JobDirectory, run_key: str) -> list[str]:
    """The command line of the request's front; its files are in directory.inputs already."""
    bin_dir = Path(sys.executable).parent
    workflow = str(directory.inputs / request.workflow.name)
    inputs = str(directory.inputs / request.inputs.name) if request.inputs else None
    site = ["--site", request.site] if request.site else []
    if request.front == "cwl":
        return [str(bin_dir / "esap-cwltool"), *site, "--esap-run-id", run_key,
                "--esap-workdir", str(directory.work), "--outdir", str(directory.outputs),
                workflow, *([inputs] if inputs else [])]
    if request.front == "snakemake":
        return [str(bin_dir / "snakemake"), "--snakefile", workflow, "--directory", str(directory.outputs),
                "--executor", "esap", "--esap-run-id", run_key, "--jobs", "10", "--latency-wait", "30",
                *(["--esap-site", request.site] if request.site else []),
                *(["--esap-requirements", request.requirements] if request.requirements else []),
                *(["--configfile", inputs] if inputs else [])]
    return [str(bin_dir / "esap"), "run", workflow, *site, "--run-id", run_key,
            "--output-dir", str(directory.outputs)]


def run_id_of(front: str, store: Store, run_key: str) -> str:
    """The id of the run the front opens for `run_key` (esap-cwltool numbers a key's finished runs)."""
    if front == "cwl":
        return run_id_for(f"{run_key}#{store.cwl_generation(run_key)}")
    return run_id_for(run_key)


def start_front(argv: list[str], directory: JobDirectory, token: str | None) -> subprocess.Popen[bytes]:
    """The front, writing to files (they outlive this process), the token in its environment only."""
    env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN", "BEARER_TOKEN_FILE")}
    if token:
        env["BEARER_TOKEN"] = token
    with open(directory.stdout, "wb") as out, open(directory.stderr, "wb") as err:
        # what the front and its jobs make stays within the worker and the job users' group (uws_jobdir.py)
        return subprocess.Popen(argv, cwd=directory.inputs, env=env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, umask=FRONT_UMASK)


def _result(key: str, path: Path) -> dict[str, Any]:
    mime, _ = mimetypes.guess_type(path.name)
    return {"key": key, "value": path.resolve().as_uri(), "size": path.stat().st_size,
            "mimeType": mime or "application/octet-stream"}


def _cwl_files(value: Any) -> Iterator[Path]:
    if isinstance(value, dict):
        if value.get("class") == "File" and isinstance(value.get("location") or value.get("path"), str):
            location = value.get("path") or unquote(urlsplit(value["location"]).path)
            yield Path(location)
            for secondary in value.get("secondaryFiles") or []:
                yield from _cwl_files(secondary)
        elif value.get("class") == "Directory":
            for item in value.get("listing") or []:
                yield from _cwl_files(item)
        else:
            for item in value.values():
                yield from _cwl_files(item)
    elif isinstance(value, list):
        for item in value:
            yield from _cwl_files(item)


def outputs(request: UwsJobRequest, directory: JobDirectory) -> list[dict[str, Any]]:
    """The run's outputs as UWS results: file URIs with their sizes and MIME types."""
    if request.front == "cwl":
        try:
            document = json.loads(directory.stdout.read_text() or "{}")
        except ValueError:
            document = {}
        results = []
        for name, value in sorted(document.items()):
            paths = [p for p in _cwl_files(value) if p.is_file()]
            for index, path in enumerate(paths):
                results.append(_result(name if len(paths) == 1 else f"{name}[{index}]", path))
        return results
    skip = {directory.outputs / ".snakemake"}
    found = []
    for path in sorted(directory.outputs.rglob("*")):
        if path.is_file() and not any(parent in skip for parent in path.parents):
            found.append(_result(str(path.relative_to(directory.outputs)), path))
    return found


def last_line(path: Path) -> str:
    """The last line a front wrote to stderr: its one-line error (never a traceback's frames)."""
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return _TERMINAL_CODES.sub("", lines[-1]) if lines else ""
