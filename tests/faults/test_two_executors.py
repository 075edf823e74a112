"""Two executor processes on the same run at once: one runs it, the other is refused clearly;
no job runs twice. After the first has ended, the same command reattaches to the run."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support import EXAMPLE_SITES, ROOT, VENV_BIN

from .conftest import WORKFLOW, Ledger, final_states, run_counts

JOBS = 20
REFUSAL = "is being run by process"


def test_two_executors_on_one_run_run_each_job_once(state_dir: Path, tmp_path: Path, ledger: Ledger) -> None:
    ledger.fault = "two executors on one run at once"
    marks = tmp_path / "marks"
    marks.mkdir()
    key = f"faults-twice-{uuid.uuid4().hex[:8]}"
    argv = [sys.executable, str(WORKFLOW), str(EXAMPLE_SITES), key, "local", str(JOBS), str(marks)]
    env = {k: v for k, v in os.environ.items() if k != "ESAP_FAULT_KILL_AT"}
    env["FAULT_JOB_SLEEP"] = "2"  # the two overlap
    both = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
            for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in both]
    counts = run_counts(marks, JOBS)
    result = ledger.runs("two executors on one run at once", counts, JOBS, detail="local, API")
    winners = [out for p, (out, _) in zip(both, outputs, strict=True) if p.returncode == 0]
    losers = [err for p, (_, err) in zip(both, outputs, strict=True) if p.returncode != 0]
    assert winners, [err[-1500:] for _, err in outputs]
    for stdout in winners:
        assert final_states(stdout) == {f"job-{i}": "completed" for i in range(JOBS)}, stdout
    for stderr in losers:
        assert REFUSAL in stderr, stderr[-2000:]
    assert result == "held", counts

    again = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    assert final_states(again.stdout) == {f"job-{i}": "completed" for i in range(JOBS)}
    assert run_counts(marks, JOBS) == counts  # reattached: nothing ran again


def test_two_esap_commands_on_one_run_key(state_dir: Path, tmp_path: Path, ledger: Ledger) -> None:
    ledger.fault = "two executors on one run at once"
    mark = tmp_path / "ran"
    key = f"faults-twice-cli-{uuid.uuid4().hex[:8]}"
    argv = [str(VENV_BIN / "esap"), "--sites", str(EXAMPLE_SITES), "run", "--run-id", key, "--site", "local",
            "--", "/bin/sh", "-c", f"sleep 3; echo ran >> {mark}"]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline_lines = first.stderr
    assert deadline_lines is not None
    assert "submitted" in deadline_lines.readline()  # the first holds the run
    second = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    first.communicate(timeout=120)
    runs = len(mark.read_text().splitlines()) if mark.exists() else 0
    ledger.runs("two executors on one run at once", {"job": runs}, 1, detail="local, esap run --run-id")
    assert first.returncode == 0
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert second.returncode == 3 and len(lines) == 1 and REFUSAL in lines[0], second.stderr
    assert runs == 1
