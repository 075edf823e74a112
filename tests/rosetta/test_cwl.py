"""CWL on the Rosetta site: every CommandLineTool step is a Rosetta task of the runner; File
and Directory inputs go up through Rosetta's file manager and the outputs come back. A scatter
workflow returns the same outputs as on slurm-local."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support import EXAMPLE_SITES, VENV_BIN

pytestmark = pytest.mark.rosetta

DATA = Path(__file__).parent.parent / "cwl" / "data"


def cwltool(site: str, cwd: Path, *args: object) -> dict:  # type: ignore[type-arg]
    env = dict(os.environ, ESAP_SITES=str(EXAMPLE_SITES))
    completed = subprocess.run([str(VENV_BIN / "esap-cwltool"), "--site", site, "--no-container",
                                *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                               timeout=600, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout)  # type: ignore[no-any-return]


def test_scatter_workflow_same_outputs_as_slurm_local(rosetta: None, state_dir: Path, tmp_path: Path) -> None:
    results = {}
    for site in ("slurm-local", "rosetta-slurm"):
        run_dir = tmp_path / site
        run_dir.mkdir()
        outputs = cwltool(site, run_dir, DATA / "scatter-wf.cwl", "--words", "alpha", "--words", "beta",
                          "--words", "gamma", "--words", "delta")
        results[site] = Path(outputs["joined"]["path"]).read_text()
    assert results["rosetta-slurm"] == results["slurm-local"] == "alpha\nbeta\ngamma\ndelta\n"


def test_file_and_directory_inputs_and_a_directory_output(rosetta: None, state_dir: Path, tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "folder").mkdir(parents=True)
    (inputs / "data.txt").write_text("payload\n")
    for name in ("a.dat", "b.dat"):
        (inputs / "folder" / name).write_text(name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    outputs = cwltool("rosetta-slurm", run_dir, DATA / "transfer.cwl", "--data", inputs / "data.txt",
                      "--folder", inputs / "folder")
    results = Path(outputs["results"]["path"])
    assert sorted(p.name for p in results.iterdir()) == ["copy.txt", "home.txt", "listing.txt", "where.txt"]
    assert (results / "copy.txt").read_text() == "payload\n"
    assert (results / "listing.txt").read_text().split() == ["a.dat", "b.dat"]
    # it ran in the step's folder of the Rosetta storage, bound at /storage in the container
    assert (results / "where.txt").read_text().startswith("/storage/esap/")
