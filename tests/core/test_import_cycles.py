"""Modules that must not import each other both ways (a cycle makes import order matter and
hides which concern owns what). Every import counts: module level, in functions, TYPE_CHECKING."""

from __future__ import annotations

import ast
from importlib.util import resolve_name
from pathlib import Path

import pytest

import esap_executors

PACKAGE = Path(esap_executors.__file__).parent


def imports_of(module: str) -> set[str]:
    """The modules `module` names in any import statement (from x import y: x and x.y)."""
    path = PACKAGE.joinpath(*module.split(".")[1:])
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    package = module if path.is_dir() else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize(("module", "must_not_import"), [
    ("esap_executors.jdl.cli", "esap_executors.cli.job_commands"),  # a front imports no other front
    ("esap_executors.sites", "esap_executors.backends"),  # backends are configured by sites
    ("esap_executors.cwl.job", "esap_executors.cwl.session"),  # the session submits the jobs
])
def test_modules_that_must_not_import_each_other(module: str, must_not_import: str) -> None:
    named = {m for m in imports_of(module) if m == must_not_import or m.startswith(must_not_import + ".")}
    assert named == set(), f"{module} imports {sorted(named)}"
