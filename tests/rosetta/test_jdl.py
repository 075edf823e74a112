"""A grid JDL job whose Requirements match only the Rosetta SLURM site: matchmaking picks it,
the input sandbox is uploaded through Rosetta's file manager, the step runs as a Rosetta task,
and the output sandbox (a file the job made plus its std streams) comes back."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import esap

pytestmark = pytest.mark.rosetta

JDL = """Type = "Job";
JobType = "Normal";
Executable = "/bin/sh";
Arguments = "-c 'cat input.txt; echo made from $(cat input.txt) > result.txt'";
Requirements = other.GlueCEInfoLRMSType == "Rosetta" && other.IsCluster;
StdOutput = "out.txt";
StdError = "err.txt";
InputSandbox = {"input.txt"};
OutputSandbox = {"out.txt", "err.txt", "result.txt"};
"""


def test_jdl_job_matched_to_rosetta_with_sandboxes(rosetta: None, state_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "input.txt").write_text("sandboxed\n")
    (tmp_path / "job.jdl").write_text(JDL)
    result = esap("run", "job.jdl", "--output-dir", "results", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "on rosetta-slurm" in result.stdout
    results = tmp_path / "results"
    assert (results / "out.txt").read_text() == "sandboxed\n"
    assert (results / "result.txt").read_text() == "made from sandboxed\n"
