"""Generated tools run through esap-cwltool on the local site and on SLURM (papermill from this
environment: the job's PATH leads to it, as a site's module or image would on a centre)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.cwl.helpers import catalogue_with_images, outputs_of, run_tool
from tests.support import VENV_BIN, esap, require_service

STAR_COUNTS = Path(__file__).parent / "data" / "star-counts"
SITES = ["local", "slurm-local"]


def _require(site: str) -> None:
    if site == "slurm-local":
        require_service("slurm")


@pytest.fixture(scope="module")
def notebook_tool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tool = tmp_path_factory.mktemp("tool") / "star-counts.cwl"
    result = esap("catalogue", "cwl", "--codemeta", str(STAR_COUNTS / "codemeta.json"),
                  "--notebook", str(STAR_COUNTS / "star_counts.ipynb"), "-o", str(tool))
    assert result.returncode == 0, result.stderr
    return tool


@pytest.mark.parametrize("site", SITES)
def test_the_notebook_tool_runs_with_its_parameters(site: str, notebook_tool: Path, tmp_path: Path) -> None:
    _require(site)
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump({"notebook": {"class": "File", "path": str(STAR_COUNTS / "star_counts.ipynb")},
                                   "stars": 40, "field": f"orion-{site}", "bright_only": "True"}))
    path = f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    outputs = outputs_of(run_tool("esap-cwltool", "--site", site, notebook_tool, job, cwd=tmp_path, env={"PATH": path}))
    executed = json.loads(Path(outputs["executed_notebook"]["path"]).read_text())
    printed = "".join(text for cell in executed["cells"] for out in cell.get("outputs", [])
                      for text in out.get("text", []))
    first = printed.splitlines()[0]
    assert first.startswith(f"orion-{site}: ") and first.endswith(" stars")
    assert 0 < int(first.split()[1]) < 40  # bright_only=True kept only the stars brighter than 12
    injected = [cell for cell in executed["cells"] if "injected-parameters" in cell["metadata"].get("tags", [])]
    assert injected and "stars = 40" in "".join(injected[0]["source"])


@pytest.mark.parametrize("site", SITES)
def test_a_container_tool_runs_in_its_image(site: str, tmp_path: Path, cli_env: dict[str, str]) -> None:
    _require(site)
    require_service("containers")
    tool = tmp_path / "supernovae.cwl"
    made = esap("catalogue", "cwl", "ossr/6340441", "--image", "busybox", "-o", str(tool), env=cli_env)
    assert made.returncode == 0, made.stderr
    sites = catalogue_with_images(tmp_path / "sites.yaml", {"local": {"busybox": "localhost/busybox:ci"}})
    job = tmp_path / "job.yml"
    job.write_text(yaml.safe_dump({"command": ["readlink", "-f", "/bin/sh"]}))
    outputs = outputs_of(run_tool("esap-cwltool", "--site", site, tool, job, cwd=tmp_path, sites=sites))
    # busybox's /bin/sh is busybox itself; this machine's is dash: the command ran in the image
    assert Path(outputs["output"]["path"]).read_text().strip() == "/bin/busybox"
