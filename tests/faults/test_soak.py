"""A soak: many small runs back to back on the local site (5,000 jobs) in one executor process.

Memory stays flat (resident set and Python's allocated blocks after warm-up), no file
descriptor or process is left behind, every job ends completed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support import EXAMPLE_SITES, ROOT

from .conftest import Ledger

SOAK = Path(__file__).with_name("soak.py")
RUNS, JOBS_PER_RUN = 50, 100
WARM_UP = 10  # runs before the baseline: caches (SQLite pages, imports, arenas) fill first
MIB = 2**20


def supervisors_of(state_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if any("local_supervisor" in part for part in cmdline) and any(str(state_dir) in part for part in cmdline):
            found.append(process)
    return found


def test_soak_5000_jobs_flat_memory_no_leaks(state_dir: Path, ledger: Ledger) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ESAP_FAULT_KILL_AT"}
    soak = subprocess.run([sys.executable, str(SOAK), str(EXAMPLE_SITES), str(RUNS), str(JOBS_PER_RUN)],
                          capture_output=True, text=True, timeout=900, env=env, cwd=ROOT, check=False)
    assert soak.returncode == 0, soak.stderr[-3000:]
    rows = [json.loads(line) for line in soak.stdout.splitlines()]
    completed = sum(row["states"].get("completed", 0) for row in rows)
    others = sum(n for row in rows for state, n in row["states"].items() if state != "completed")
    ledger.outcome("soak: 50 runs x 100 jobs back to back (local)", "held" if completed == RUNS * JOBS_PER_RUN
                   else "lost", detail=f"{completed} completed, {others} other", jobs=RUNS * JOBS_PER_RUN)
    assert len(rows) == RUNS and completed == RUNS * JOBS_PER_RUN, (completed, others)

    baseline, last = rows[WARM_UP:WARM_UP + 10], rows[-10:]
    rss_growth = statistics.median(r["rss"] for r in last) - statistics.median(r["rss"] for r in baseline)
    blocks_growth = statistics.median(r["blocks"] for r in last) / statistics.median(r["blocks"] for r in baseline)
    ledger.detail += (f"; RSS {baseline[0]['rss'] / MIB:.1f} -> {last[-1]['rss'] / MIB:.1f} MiB, "
                      f"fds {baseline[0]['fds']} -> {last[-1]['fds']}")
    assert rss_growth < 16 * MIB, [round(r["rss"] / MIB, 1) for r in rows]
    assert blocks_growth < 1.02, [r["blocks"] for r in rows]  # no Python object piles up per run
    assert max(r["fds"] for r in last) <= max(r["fds"] for r in baseline) + 4, [r["fds"] for r in rows]
    assert all(r["children"] == 0 for r in rows), [r["children"] for r in rows]

    deadline = time.monotonic() + 30  # a supervisor exits once its batch has ended
    while supervisors_of(state_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert supervisors_of(state_dir) == []
