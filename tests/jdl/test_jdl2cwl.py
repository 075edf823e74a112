"""`esap jdl2cwl`: stock cwltool runs the written tool and job file to the same result as `esap run`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from tests.support import VENV_BIN

from .helpers import EXAMPLES, SIMPLE, run, run_json, write_jdl

TOOL = """#!/bin/sh
echo "args: $#"; for a in "$@"; do echo "arg=[$a]"; done
echo "COLOUR=$COLOUR"
read line; echo "stdin=[$line]"
echo "to stderr" >&2
echo "$(( $1 * 3 ))" > tripled.txt
"""


def cwltool(tool: Path, job: Path, outdir: Path) -> dict[str, object]:
    result = subprocess.run([str(VENV_BIN / "cwltool"), "--quiet", "--outdir", str(outdir), str(tool), str(job)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    outputs: dict[str, object] = json.loads(result.stdout)
    return outputs


def convert(jdl: Path, folder: Path) -> tuple[Path, Path]:
    result = run("jdl2cwl", str(jdl), "-o", str(folder), cwd=folder.parent)
    assert result.returncode == 0, result.stderr
    tool, job = (Path(line) for line in result.stdout.split())
    assert yaml.safe_load(tool.read_text())["class"] == "CommandLineTool"
    return tool, job


def test_reference_example_same_result(tmp_path: Path, state_dir: Path) -> None:
    tool, job = convert(SIMPLE, tmp_path / "cwl")
    outputs = cwltool(tool, job, tmp_path / "cwl-out")
    assert outputs["image_png"] is None  # declared, not produced: null, not a failure
    [esap_job] = run_json("run", str(SIMPLE), cwd=tmp_path, sites=EXAMPLES / "pbs-site.yaml")
    esap_out = Path(esap_job["output_dir"])
    for name in ("simple.out", "simple.err"):
        assert (tmp_path / "cwl-out" / name).read_text() == (esap_out / name).read_text()
    assert "GlueCEInfoLRMSType" in yaml.safe_load(tool.read_text())["doc"]


def test_sandbox_arguments_environment_and_streams_same_result(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "tool.sh").write_text(TOOL)
    (tmp_path / "in.txt").write_text("a line\n")
    jdl = write_jdl(tmp_path, """
Executable = "tool.sh";
Arguments = "7 'two words' \\"x y\\"";
Environment = {"COLOUR=deep blue"};
InputSandbox = {"tool.sh", "in.txt"};
StdInput = "in.txt";
StdOutput = "all.txt";
StdError = "all.txt";
CpuNumber = 2;
OutputSandbox = {"all.txt", "tripled.txt", "absent.dat"};
""")
    tool, job = convert(jdl, tmp_path / "cwl")
    outputs = cwltool(tool, job, tmp_path / "cwl-out")
    assert outputs["absent_dat"] is None
    [esap_job] = run_json("run", str(jdl), cwd=tmp_path)
    assert esap_job["missing"] == ["absent.dat"]
    esap_out = Path(esap_job["output_dir"])
    for name in ("all.txt", "tripled.txt"):
        assert (tmp_path / "cwl-out" / name).read_text() == (esap_out / name).read_text()
    assert "arg=[two words]" in (esap_out / "all.txt").read_text()
    assert (esap_out / "tripled.txt").read_text() == "21\n"


def test_parametric_jobs_are_refused(tmp_path: Path) -> None:
    result = run("jdl2cwl", str(EXAMPLES / "parametric.jdl"), "-o", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "not supported by jdl2cwl: parametric jobs" in result.stderr
