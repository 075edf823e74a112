"""`esap run` of many jobs (a parametric JDL): a progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.support import EXAMPLE_SITES, VENV_BIN, esap

PARAMETRIC = """Type = "Job";
JobType = "Parametric";
Parameters = 6;
ParameterStart = 0;
ParameterStep = 1;
Executable = "/bin/sh";
Arguments = "-c 'sleep 1; echo _PARAM_'";
StdOutput = "out__PARAM_.txt";
OutputSandbox = {"out__PARAM_.txt"};
"""


def write_jdl(tmp_path: Path) -> Path:
    jdl = tmp_path / "six.jdl"
    jdl.write_text(PARAMETRIC)
    return jdl


def test_many_jobs_in_a_pipe_give_plain_lines(state_dir: Path, tmp_path: Path) -> None:
    result = esap("run", str(write_jdl(tmp_path)), "--output-dir", str(tmp_path / "out"), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stderr and "\r" not in result.stderr
    assert sum(" completed" in line for line in result.stderr.splitlines()) >= 6


def test_many_jobs_on_a_terminal_show_a_progress_bar(state_dir: Path, tmp_path: Path) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    session = f"esap-progress-{os.getpid()}"
    command = (f"cd {tmp_path} && {VENV_BIN / 'esap'} --sites {EXAMPLE_SITES} run {write_jdl(tmp_path)} "
               f"--output-dir {tmp_path / 'out'} > /dev/null; echo RUN-ENDED-$?")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "40", command + "; sleep 120"],
                   check=True, env={**os.environ, "TERM": "xterm-256color"})
    screen = ""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and "RUN-ENDED" not in screen:
            time.sleep(0.5)
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                    check=True).stdout
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
    assert "RUN-ENDED-0" in screen, screen
    bars = [line for line in screen.splitlines() if line.startswith("esap ━") or "6/6" in line]
    assert bars and "6/6" in bars[-1] and "6 completed" in bars[-1], screen
    assert " completed" not in screen.replace("6 completed", ""), screen  # no line per job
