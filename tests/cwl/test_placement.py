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
