"""`esap-cwltool --inputs-from-basket INPUT`: the ESAP basket's files as one input of the workflow.

INPUT names a workflow input of type File[] (every item) or File (a basket of exactly one item).
Its value is a list of `{class: File, location: <https URL>, basename: <name>}`: cwltool fetches
http(s) Files itself. The other inputs come as usual, from a job-order file and/or `--name value`
options; the job order is rewritten to a private file with every location made absolute.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import BadInput
from ..esap.basket import BasketInput

OPTION = "--inputs-from-basket"
_ONE, _MANY = "File", "File[]"


def with_basket_inputs(rest: Sequence[str], input_name: str, inputs: Sequence[BasketInput],
                       scratch: Path) -> list[str]:
    """cwltool's arguments with the basket's files added to the job order (written under `scratch`)."""
    from cwltool.argparser import arg_parser

    arguments = list(rest)
    args = arg_parser().parse_args(arguments)
    workflow = str(args.workflow or "")
    if not workflow:
        raise BadInput("needs the workflow to give the basket to", field=OPTION)
    job_order = list(args.job_order or [])
    head = arguments[:len(arguments) - len(job_order)]
    cardinality = _input_cardinality(workflow, input_name)
    if cardinality == _ONE and len(inputs) != 1:
        raise BadInput(f"input {input_name!r} is a single File and the basket holds {len(inputs)} files "
                       "(make it File[] or leave one item in the basket)", field=OPTION)
    files = [{"class": "File", "location": found.url, "basename": found.filename} for found in inputs]
    order: dict[str, Any] = {}
    if job_order and job_order[0] == "-":
        raise BadInput("the job order cannot come from standard input with --inputs-from-basket", field=OPTION)
    if job_order and not job_order[0].startswith("-"):
        order = _load_job_order(job_order[0])
        job_order = job_order[1:]
    if input_name in order:
        raise BadInput(f"input {input_name!r} is set both in the job order and by the basket", field=OPTION)
    order[input_name] = files if cardinality == _MANY else files[0]
    target = scratch / "basket-job.json"
    target.write_text(json.dumps(order, indent=2))
    os.chmod(target, 0o600)
    return [*head, str(target), *job_order]


def private_scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="esap-basket-")


def _input_cardinality(workflow: str, input_name: str) -> str:
    from cwltool.context import LoadingContext
    from cwltool.load_tool import load_tool
    from cwltool.process import shortname
    from cwltool.workflow import default_make_tool

    context = LoadingContext()
    context.construct_tool_object = default_make_tool
    try:
        process = load_tool(workflow, context)
    except Exception as exc:
        raise BadInput(f"{workflow}: cannot be loaded to find input {input_name!r} ({_short(exc)})",
                       field=OPTION) from None
    types = {shortname(str(i["id"])): i.get("type") for i in process.tool["inputs"]}
    if input_name not in types:
        raise BadInput(f"{workflow} has no input {input_name!r} (its inputs: {', '.join(sorted(types)) or 'none'})",
                       field=OPTION)
    kind = _file_kind(types[input_name])
    if kind is None:
        raise BadInput(f"input {input_name!r} of {workflow} is of type {_type_text(types[input_name])}; "
                       "the basket fills a File or File[] input", field=OPTION)
    return kind


def _file_kind(cwl_type: Any) -> str | None:
    if isinstance(cwl_type, list):  # a union, e.g. ["null", "File"]: the File member decides
        kinds = {_file_kind(member) for member in cwl_type if member != "null"}
        kinds.discard(None)
        return _MANY if _MANY in kinds else (kinds.pop() if kinds else None)
    if cwl_type == "File":
        return _ONE
    if isinstance(cwl_type, dict) and cwl_type.get("type") == "array" and cwl_type.get("items") == "File":
        return _MANY
    return None


def _load_job_order(path: str) -> dict[str, Any]:
    """The user's job order with its relative locations made absolute (it is rewritten elsewhere)."""
    from cwltool.load_tool import CWL_CONTENT_TYPES
    from cwltool.main import jobloader_id_name, jobloaderctx
    from schema_salad.ref_resolver import Loader

    if not Path(path).is_file():
        raise BadInput(f"job order {path} does not exist", field="job_order")
    try:
        loaded, _ = Loader(jobloaderctx.copy()).resolve_ref(path, checklinks=False, content_types=CWL_CONTENT_TYPES)
    except Exception as exc:
        raise BadInput(f"{path}: not a CWL job order ({_short(exc)})", field="job_order") from None
    if not isinstance(loaded, dict):
        raise BadInput(f"{path}: a job order is a mapping of input names to values", field="job_order")
    order = json.loads(json.dumps(loaded, default=str))
    order.pop(jobloader_id_name, None)
    return dict(order)


def _type_text(cwl_type: Any) -> str:
    return json.dumps(cwl_type) if not isinstance(cwl_type, str) else cwl_type


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) < 200 else text[:197] + "..."
