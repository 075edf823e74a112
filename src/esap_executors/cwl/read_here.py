"""Which storage inputs this (submit) host must read itself, even on a site whose jobs fetch
their own inputs (`staging: {fetch: execute}`): cwltool reads them here, so a placeholder will
not do.

- `loadContents` on the input, its inputBinding or a step input it feeds (cwltool reads the
  first 64 KiB while it builds the step; expressions see `self.contents`);
- `secondaryFiles` on any of those (cwltool looks for them beside the file, here);
- an input fed to an ExpressionTool (its expression runs here);
- a workflow output taken straight from the input (cwltool copies it to --outdir, here).

Only the workflow's own inputs are concerned: what steps produce is never a placeholder.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cwltool.process import Process, shortname


def inputs_read_here(process: Process) -> set[str]:
    """The names of the process's inputs that must be real files on this host."""
    tool = process.tool
    inputs = list(tool.get("inputs") or [])
    if tool.get("class") == "ExpressionTool":
        return {shortname(str(declared["id"])) for declared in inputs}
    found = {shortname(str(declared["id"])) for declared in inputs if _reads_file(declared)}
    steps = getattr(process, "steps", None)
    if not steps:
        return found
    by_id = {str(declared["id"]): shortname(str(declared["id"])) for declared in inputs}
    for output in tool.get("outputs") or []:
        found.update(by_id[source] for source in _sources(output.get("outputSource")) if source in by_id)
    for step in steps:
        inner = inputs_read_here(step.embedded_tool)
        for step_input in step.tool.get("in") or []:
            if _reads_file(step_input) or shortname(str(step_input["id"])) in inner:
                found.update(by_id[source] for source in _sources(step_input.get("source")) if source in by_id)
    return found


def _reads_file(declared: dict[str, Any]) -> bool:
    binding = declared.get("inputBinding") or {}
    return bool(declared.get("loadContents") or binding.get("loadContents") or declared.get("secondaryFiles"))


def _sources(value: object) -> Iterable[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []
