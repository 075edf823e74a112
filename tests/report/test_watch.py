"""`esap status --watch [RUN]`: a live view of a run, from the store while its poller lives."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import EXAMPLE_SITES, VENV_BIN, esap

RUN_IN_BACKGROUND = f"""
import sys
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store

seconds = [float(s) for s in sys.argv[3:]]
with Run.open(sys.argv[1], catalogue=Catalogue.load({str(EXAMPLE_SITES)!r}),
              store=open_store()) as run:
    run.submit([JobRequest(key=f"j{{i}}", name=f"sleep {{s}}", spec=make_spec(["sleep", str(s)], cores=1,
                memory="32M", walltime="2m")) for i, s in enumerate(seconds)])
    print(run.run_id, flush=True)
    if sys.argv[2] == "wait":
        run.wait(timeout=300)
"""


def start_run(key: str, seconds: list[float], wait: bool = True) -> tuple[subprocess.Popen[str], str]:
    """A run of sleeping jobs on the local site, followed by its process unless `wait` is false."""
    process = subprocess.Popen([sys.executable, "-c", RUN_IN_BACKGROUND, key, "wait" if wait else "nowait",
                                *map(str, seconds)],
                               stdout=subprocess.PIPE, text=True, cwd="/tmp")
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_watch_under_tmux_shows_the_counts_change_and_ends_by_itself(state_dir: Path) -> None:
    if not shutil.which("tmux"):
        pytest.skip("tmux is not installed")
    process, run_id = start_run("watch-tmux", [1, 3, 5, 7, 9, 11])
    session = f"esap-watch-{os.getpid()}"
    command = f"{VENV_BIN / 'esap'} --sites {EXAMPLE_SITES} status --watch {run_id} --interval 0.5; echo WATCH-ENDED-$?"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50", command + "; sleep 120"],
                   check=True, env={**os.environ, "TERM": "xterm-256color"})
    seen: list[str] = []
    screen = ""
    followed = False
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True,
                                    text=True, check=True).stdout
            row = next((line for line in screen.splitlines() if line.strip("│ ").startswith("local ")), "")
            if row and (not seen or seen[-1] != row):
                seen.append(row)
            followed = followed or "states from store (its poller is alive)" in screen
            if "WATCH-ENDED" in screen:
                break
            time.sleep(0.3)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        process.wait(timeout=120)
    assert "WATCH-ENDED-0" in screen, screen
    assert len(seen) >= 3, screen  # the per-site counts changed while the run went on
    assert followed and "final" in screen  # read from the store while the run's poller lived
    assert re.fullmatch(r"local\s+│\s+6\s+│\s+6", seen[-1].strip("│ ")), seen  # all six completed


def test_watch_in_a_pipe_prints_plain_lines_and_queries_the_sites_when_nobody_follows(state_dir: Path) -> None:
    process, run_id = start_run("watch-pipe", [2, 4, 6], wait=False)
    process.wait(timeout=60)  # nobody follows the run any more

    result = esap("status", "--watch", run_id, "--interval", "0.5", timeout=120)

    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    lines = result.stdout.splitlines()
    assert len(lines) >= 2 and lines[-1].split(" ", 1)[1].startswith(f"run {run_id}: 3 jobs, 3 completed; final")
    assert all("; from the sites;" in line for line in lines[:-1]), lines
    status = json.loads(esap("status", run_id, "--json").stdout)
    assert [job["state"] for job in status] == ["completed"] * 3


def test_watch_of_an_unknown_run_is_one_line_and_exit_2(state_dir: Path) -> None:
    result = esap("status", "--watch", "r0123456789a")

    assert result.returncode == 2 and result.stderr.count("\n") == 1 and result.stdout == ""
