"""Which storage inputs esap-cwltool fetches on the submit host even where jobs fetch their own:
those cwltool reads there (found from the workflow's own input definitions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from cwltool.context import LoadingContext
from cwltool.load_tool import load_tool
from cwltool.workflow import default_make_tool

from esap_executors.cwl.read_here import inputs_read_here


def _tool(inputs: dict[str, Any], cls: str = "CommandLineTool") -> dict[str, Any]:
    body: dict[str, Any] = {"class": cls, "inputs": inputs, "outputs": {}}
    if cls == "ExpressionTool":
        body.update(requirements={"InlineJavascriptRequirement": {}}, expression="$({})")
    else:
        body["baseCommand"] = "true"
    return body


def _read_here(tmp_path: Path, document: dict[str, Any]) -> set[str]:
    path = tmp_path / "w.cwl"
    path.write_text(yaml.safe_dump({"cwlVersion": "v1.2", **document}))
    context = LoadingContext()
    context.construct_tool_object = default_make_tool
    return inputs_read_here(load_tool(str(path), context))


def test_a_tool_reads_inputs_with_load_contents_or_secondary_files(tmp_path: Path) -> None:
    assert _read_here(tmp_path, _tool({
        "plain": "File",
        "bound": {"type": "File", "inputBinding": {"loadContents": True}},
        "loaded": {"type": "File", "loadContents": True},
        "indexed": {"type": "File", "secondaryFiles": [".bai"]},
    })) == {"bound", "loaded", "indexed"}


def test_a_workflow_reads_what_its_steps_read_and_what_it_passes_through(tmp_path: Path) -> None:
    step = {"class": "Workflow",
            "requirements": {"SubworkflowFeatureRequirement": {}},
            "inputs": {"a": "File", "b": "File", "c": "File", "d": "File", "e": "File", "untouched": "File"},
            "outputs": {"e_again": {"type": "File", "outputSource": "e"}},
            "steps": {
                "step_load": {"in": {"x": {"source": "a", "loadContents": True}, "y": "untouched"}, "out": [],
                              "run": _tool({"x": "File", "y": "File"})},
                "tool_load": {"in": {"x": "b"}, "out": [],
                              "run": _tool({"x": {"type": "File", "inputBinding": {"loadContents": True}}})},
                "expression": {"in": {"x": "c"}, "out": [], "run": _tool({"x": "File"}, "ExpressionTool")},
                "nested": {"in": {"inner": "d"}, "out": [], "run": {
                    "class": "Workflow", "inputs": {"inner": "File"}, "outputs": {},
                    "steps": {"s": {"in": {"z": "inner"}, "out": [],
                                    "run": _tool({"z": {"type": "File", "loadContents": True}})}}}}}}
    assert _read_here(tmp_path, step) == {"a", "b", "c", "d", "e"}
