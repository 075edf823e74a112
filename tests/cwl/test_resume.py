"""Rerunning the same command after the executor was killed: completed steps are not rerun,
the running step is reattached (same scheduler job), and the workflow finishes."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from esap_executors.states import JobState
from tests.cwl.helpers import RUN_LINE, jobs_of_run, outputs_of, run_tool
from tests.support import EXAMPLE_SITES, VENV_BIN, require_service

DATA = Path(__file__).parent / "data"


def wait_for(condition: object, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()  # type: ignore[operator]
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_rerun_after_kill_reattaches_and_does_not_rerun_completed_steps(tmp_path: Path) -> None:
    require_service("slurm")
    command = [str(VENV_BIN / "esap-cwltool"), "--site", "slurm-local", "--outdir", str(tmp_path / "out"),
               str(DATA / "resume.cwl"), "--message", "resumed"]
    env = dict(os.environ, ESAP_SITES=str(EXAMPLE_SITES))
    log = tmp_path / "first.log"
    with log.open("w") as stderr:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        found = wait_for(lambda: RUN_LINE.search(log.read_text()), 120, "the run id")
        run_id = found.group(1)  # type: ignore[attr-defined]

        def slow_running() -> bool:
            jobs = {j.name: j for j in jobs_of_run(run_id)}
            return ("slow" in jobs and jobs["slow"].state is JobState.RUNNING
                    and jobs["fast"].state is JobState.COMPLETED)

        wait_for(slow_running, 180, "step 'slow' to run after 'fast' completed")
    finally:
        first.kill()
        first.wait()
    before = {j.name: j for j in jobs_of_run(run_id)}

    second = run_tool("esap-cwltool", *command[1:], cwd=tmp_path, timeout=300)
    outputs = outputs_of(second)
    assert Path(outputs["result"]["path"]).read_text() == "resumed\nslow-done\n"
    assert RUN_LINE.search(second.stderr).group(1) == run_id  # type: ignore[union-attr]
    after = {j.name: j for j in jobs_of_run(run_id)}
    assert sorted(after) == ["fast", "slow"]
    assert len(jobs_of_run(run_id)) == 2, "a step was submitted again"
    for name in ("fast", "slow"):
        assert after[name].job_id == before[name].job_id
        assert after[name].native_id == before[name].native_id
        assert after[name].state is JobState.COMPLETED


def test_a_finished_run_is_not_resumed_by_the_next_one(tmp_path: Path) -> None:
    args = ["--site", "local", str(DATA / "echo.cwl"), "--message", "again"]
    first = run_tool("esap-cwltool", *args, cwd=tmp_path)
    second = run_tool("esap-cwltool", *args, cwd=tmp_path)
    outputs_of(first)
    outputs_of(second)
    assert RUN_LINE.search(first.stderr).group(1) != RUN_LINE.search(second.stderr).group(1)  # type: ignore[union-attr]
