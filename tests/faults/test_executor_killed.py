"""The executor SIGKILLed at each point of a submission; a rerun ends with every job run once.

The kill comes from esap_executors/faultpoints.py (ESAP_FAULT_KILL_AT), so it lands exactly
at the point named, not at a time that happens to fall near it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from esap_executors.faultpoints import POINTS
from tests.support import EXAMPLE_SITES, require_service

from .conftest import Ledger, final_states, run_counts, run_workflow

JOBS = 4
SITES = ["local", "slurm-local"]


@pytest.mark.parametrize("site", SITES)
@pytest.mark.parametrize("point", POINTS)
def test_killed_executor_reruns_every_job_exactly_once(site: str, point: str, state_dir: Path, tmp_path: Path,
                                                       ledger: Ledger) -> None:
    ledger.fault = f"executor SIGKILLed at {point}"
    if site != "local":
        require_service("slurm")
    marks, out = tmp_path / "marks", tmp_path / "out"
    marks.mkdir()
    out.mkdir()
    key = f"faults-kill-{point}-{uuid.uuid4().hex[:8]}"

    killed = run_workflow(EXAMPLE_SITES, key, site, JOBS, marks, out, kill_at=point)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    if point in ("before-record", "after-record"):
        time.sleep(1)
        assert run_counts(marks, JOBS) == {f"job-{i}": 0 for i in range(JOBS)}  # nothing was sent

    rerun = run_workflow(EXAMPLE_SITES, key, site, JOBS, marks, out)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    counts = run_counts(marks, JOBS)
    result = ledger.runs(f"executor SIGKILLed at {point}", counts, JOBS, detail=site)
    assert final_states(rerun.stdout) == {f"job-{i}": "completed" for i in range(JOBS)}, rerun.stdout
    assert result == "held", counts
    for i in range(JOBS):  # every output staged out whole
        assert (out / f"job-{i}.first").read_text() == "first\n"
        assert (out / f"job-{i}.second").read_text() == "second\n"
