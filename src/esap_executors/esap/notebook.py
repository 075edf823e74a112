"""A notebook's papermill parameters (the cell tagged `parameters`), as CWL input types and defaults."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .entries import NOTEBOOK, Entry

CWL_TYPES = {"int": "int", "float": "float", "str": "string", "bool": "bool"}


def parameters_of(path: Path) -> tuple[tuple[str, str, Any], ...]:
    import papermill  # imported only when a notebook is read

    if not path.is_file():
        raise BadInput("no such notebook", source=str(path))
    try:
        found = papermill.inspect_notebook(str(path))
    except Exception as exc:  # papermill/nbformat raise many kinds for a broken notebook
        raise BadInput(f"not a readable notebook: {exc}", source=str(path)) from exc
    parameters = []
    for name, info in found.items():
        try:
            default = ast.literal_eval(str(info.get("default")))
        except (ValueError, SyntaxError):
            default = None  # an expression: its value is known only when the notebook runs
        # papermill infers a type only from an annotation (`stars: int = 100`); else from the default's value
        type_name = str(info.get("inferred_type_name"))
        if type_name == "None" and default is not None:
            type_name = type(default).__name__
        cwl_type = CWL_TYPES.get(type_name)
        if cwl_type is None:
            continue  # None, lists, objects: left to the parameters file
        if cwl_type == "bool":
            default = str(default) if isinstance(default, bool) else None
        elif not isinstance(default, int | float | str) or isinstance(default, bool):
            default = None
        parameters.append((name, cwl_type, default))
    return tuple(parameters)


def with_notebook(entry: Entry, path: Path, filepath: str | None = None) -> Entry:
    """The entry as a notebook entry whose parameters are those of the local notebook `path`."""
    return replace(entry, kind=NOTEBOOK, parameters=parameters_of(path), local_notebook=str(path),
                   filepath=filepath or entry.filepath)
