"""Per-step site choice: esap:Site hint, --site, and GPU steps through the core's matchmaking."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from esap_executors.cwl.placement import CUDA_REQUIREMENT, SITE_HINT, place
from esap_executors.errors import BadInput
from esap_executors.sites import Catalogue

CATALOGUE = """
cpu-site:
  backend: local
gpu-site:
  backend: local
  attributes:
    GPUs: 2
"""


class Builder:
    def __init__(self, requirements: dict[str, dict[str, Any]], hints: dict[str, dict[str, Any]]) -> None:
        self.requirements = requirements
        self.hints = hints

    def get_requirement(self, name: str) -> tuple[dict[str, Any] | None, bool]:
        if name in self.requirements:
            return self.requirements[name], True
        if name in self.hints:
            return self.hints[name], False
        return None, False


class Step:
    def __init__(self, requirements: dict[str, dict[str, Any]] | None = None,
                 hints: dict[str, dict[str, Any]] | None = None) -> None:
        self.name = "step"
        self.builder = Builder(requirements or {}, hints or {})


@pytest.fixture
def catalogue(tmp_path: Path) -> Catalogue:
    path = tmp_path / "sites.yaml"
    path.write_text(CATALOGUE)
    return Catalogue.load(path)


def test_gpu_step_goes_to_the_site_with_gpus(catalogue: Catalogue) -> None:
    placement = place(catalogue, Step(hints={CUDA_REQUIREMENT: {}}), None, 1)
    assert (placement.site, placement.gpus) == ("gpu-site", 1)


def test_gpu_hint_falls_back_to_cpu_on_a_site_without(catalogue: Catalogue) -> None:
    placement = place(catalogue, Step(hints={CUDA_REQUIREMENT: {}}), "cpu-site", 1)
    assert (placement.site, placement.gpus) == ("cpu-site", 0)


def test_gpu_requirement_is_refused_where_no_site_has_enough(catalogue: Catalogue) -> None:
    with pytest.raises(BadInput, match="requires 4 GPU"):
        place(catalogue, Step(requirements={CUDA_REQUIREMENT: {}}), None, 4)


def test_site_hint_wins_over_the_run_default(catalogue: Catalogue) -> None:
    placement = place(catalogue, Step(hints={SITE_HINT: {"name": "gpu-site"}}), "cpu-site", 0)
    assert placement.site == "gpu-site"


def test_cpu_step_uses_the_run_default(catalogue: Catalogue) -> None:
    assert place(catalogue, Step(), "cpu-site", 0).site == "cpu-site"


TWO_LOCAL_SITES = "here:\n  backend: local\nthere:\n  backend: local\n"


def _hinted_workflow(hint_one: Any, hint_two: Any) -> dict[str, Any]:
    def step(hints: Any) -> dict[str, Any]:
        return {"in": {}, "out": ["done"], "run": {
            "class": "CommandLineTool", "hints": hints, "baseCommand": ["echo", "placed"], "inputs": {},
            "stdout": "done.txt", "outputs": {"done": {"type": "stdout"}}}}

    return {"cwlVersion": "v1.2", "class": "Workflow", "$namespaces": {"esap": "https://w3id.org/esap/cwl#"},
            "inputs": {}, "steps": {"one": step(hint_one), "two": step(hint_two)},
            "outputs": {"a": {"type": "File", "outputSource": "one/done"},
                        "b": {"type": "File", "outputSource": "two/done"}}}


def test_site_hint_by_name_in_inline_tools_places_the_steps(tmp_path: Path) -> None:
    """`esap:Site: {name: X}` (cwl/README.md's form; schema-salad expands `name` into an id) and the
    list form with `class: esap:Site` both place an inline tool's step on the named site."""
    import yaml

    from tests.cwl.helpers import jobs_of_run, outputs_of, run_id_of, run_tool

    sites = tmp_path / "sites.yaml"
    sites.write_text(TWO_LOCAL_SITES)
    workflow = tmp_path / "hinted.cwl"
    workflow.write_text(yaml.safe_dump(_hinted_workflow(
        {"esap:Site": {"name": "there"}}, [{"class": "esap:Site", "name": "there"}])))
    completed = run_tool("esap-cwltool", "--site", "here", "--outdir", tmp_path / "out", workflow,
                         cwd=tmp_path, sites=sites)
    outputs_of(completed)

    jobs = jobs_of_run(run_id_of(completed.stderr))
    assert sorted((j.name, j.site) for j in jobs) == [("one", "there"), ("two", "there")]


def test_site_hint_naming_an_unknown_site_is_refused(tmp_path: Path) -> None:
    import yaml

    from tests.cwl.helpers import run_tool

    sites = tmp_path / "sites.yaml"
    sites.write_text(TWO_LOCAL_SITES)
    workflow = tmp_path / "hinted.cwl"
    workflow.write_text(yaml.safe_dump(_hinted_workflow(
        {"esap:Site": {"name": "there"}}, {"esap:Site": {"name": "nowhere"}})))
    completed = run_tool("esap-cwltool", "--site", "here", "--outdir", tmp_path / "out", workflow,
                         cwd=tmp_path, sites=sites)

    assert completed.returncode != 0
    assert "nowhere" in completed.stderr, completed.stderr[-2000:]
    assert not (tmp_path / "out" / "done.txt").exists()
