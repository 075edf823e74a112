"""The fault-injection suite: each module breaks one thing a long unattended run meets.

Every test writes what it saw into a ledger: per fault and case, whether every job ran
exactly once (held), some never ran or were forgotten (lost), or ran twice (duplicated).
The ledger is `.pytest_cache/esap-faults.json` (or $ESAP_FAULT_RESULTS); a partial run
updates only its own cases. scripts/reliability_table.py turns it into RELIABILITY.md.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT

WORKFLOW = Path(__file__).with_name("workflow.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that stop a part of the Slurm 26.05 cluster run only where 26.05 is selected
    ($ESAP_TEST_SLURM): scripts/test.sh runs them last in the 26.05 process, after the other
    tests on that cluster, so no test of the suite meets the outage."""
    from tests.slurm.conftest import SELECTED

    if "26.05" in SELECTED:
        return
    left = [item for item in items if item.get_closest_marker("slurm_2605_outage")]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if not item.get_closest_marker("slurm_2605_outage")]


def ledger_path() -> Path:
    return Path(os.environ.get("ESAP_FAULT_RESULTS", str(ROOT / ".pytest_cache" / "esap-faults.json")))


@dataclass
class Ledger:
    """What one test saw; written at its teardown (a test that never recorded counts as an error)."""

    case: str
    fault: str = ""
    result: str = ""
    detail: str = ""
    jobs: int = 0

    def runs(self, fault: str, counts: Mapping[str, int], expected: int, detail: str = "") -> str:
        """Record how many times each of `expected` jobs ran; returns held, lost or duplicated."""
        self.fault, self.jobs = fault, expected
        lost = expected - sum(1 for n in counts.values() if n >= 1)
        twice = sum(1 for n in counts.values() if n > 1)
        self.result = "duplicated" if twice else "lost" if lost else "held"
        self.detail = detail or (f"{lost} lost, {twice} ran twice" if lost or twice else "")
        return self.result

    def outcome(self, fault: str, result: str, detail: str = "", jobs: int = 0) -> None:
        self.fault, self.result, self.detail, self.jobs = fault, result, detail, jobs


def _write(entry: Ledger, failed: bool) -> None:
    """Merge one case into the ledger (pytest processes of scripts/test.sh write it at once)."""
    path = ledger_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        cases = data.setdefault("cases", {})
        cases[entry.case] = {"fault": entry.fault or entry.case.split("[")[0], "result": entry.result or "error",
                             "test_passed": not failed, "jobs": entry.jobs, "detail": entry.detail}
        faults: dict[str, dict[str, int]] = {}
        for case in cases.values():
            row = faults.setdefault(case["fault"], {"cases": 0, "held": 0, "lost": 0, "duplicated": 0, "error": 0})
            row["cases"] += 1
            row[case["result"] if case["result"] in row else "error"] += 1
        data["faults"] = dict(sorted(faults.items()))
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        partial.replace(path)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[_FAILED] = report.failed


_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def ledger(request: pytest.FixtureRequest) -> Iterator[Ledger]:
    entry = Ledger(case=request.node.nodeid.split("::", 1)[-1])
    yield entry
    failed = request.node.stash.get(_FAILED, True)
    if failed and entry.result == "held":
        entry.result, entry.detail = "error", entry.detail or "the test failed after the jobs held"
    if entry.result or failed:
        _write(entry, failed)


def run_workflow(sites: Path, key: str, site: str, jobs: int, marks: Path, out_dir: Path | None = None,
                 *, kill_at: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("ESAP_FAULT_KILL_AT", None)
    if kill_at:
        env["ESAP_FAULT_KILL_AT"] = kill_at
    argv = [sys.executable, str(WORKFLOW), str(sites), key, site, str(jobs), str(marks)]
    if out_dir is not None:
        argv.append(str(out_dir))
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT, check=False)


def run_counts(marks: Path, jobs: int) -> dict[str, int]:
    """How many times each job of workflow.py ran (its lines in MARKS_DIR)."""
    counts = {}
    for i in range(jobs):
        mark = marks / f"job-{i}"
        counts[f"job-{i}"] = len(mark.read_text().splitlines()) if mark.exists() else 0
    return counts


def final_states(output: str) -> dict[str, str]:
    return dict(line.split() for line in output.splitlines() if line.startswith("job-"))
