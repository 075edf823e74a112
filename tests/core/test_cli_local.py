"""The `esap` CLI on the local site, as a user runs it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from tests.support import EXAMPLE_SITES, ROOT, esap


def test_readme_job_runs_and_shows_output_and_final_state(state_dir: Path) -> None:
    result = esap("run", "--cores", "1", "--mem", "256M", "--walltime", "5m", "--",
                  "python3", str(ROOT / "examples" / "jobs" / "star_counts.py"), "7", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "star field seed=7" in result.stdout and "mag" in result.stdout
    assert "completed" in result.stderr.splitlines()[-1]


def test_failed_job_exit_code_and_status(state_dir: Path) -> None:
    result = esap("run", "--json", "--", "sh", "-c", "echo oops >&2; exit 3")
    assert result.returncode == 1
    job = json.loads(result.stdout)
    assert job["state"] == "failed" and job["exit_code"] == 3
    status = esap("status", job["id"], "--json")
    assert json.loads(status.stdout)["exit_code"] == 3
    logs = esap("logs", job["id"])
    assert "oops" in logs.stderr


def test_submit_status_cancel(state_dir: Path) -> None:
    submitted = esap("submit", "--json", "--", "sleep", "120")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        state = json.loads(esap("status", job_id, "--json").stdout)["state"]
        if state == "running":
            break
        time.sleep(0.5)
    assert state == "running"
    cancelled = esap("cancel", job_id)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    table = esap("status")
    assert job_id in table.stdout and "cancelled" in table.stdout


def test_missing_executable_is_bad_input(state_dir: Path) -> None:
    result = esap("run", "--", "no-such-program-xyz", "arg")
    assert result.returncode == 2
    assert "no-such-program-xyz" in result.stderr and "Traceback" not in result.stderr
    assert json.loads(esap("status", "--json").stdout) == []


def test_status_of_a_run_lists_its_jobs(state_dir: Path) -> None:
    submitted = esap("run", "--json", "--run-id", "status-of-run", "--", "true")
    job = json.loads(submitted.stdout)
    listed = json.loads(esap("status", job["run"], "--json").stdout)
    assert [j["id"] for j in listed] == [job["id"]]


def test_cancel_a_run_cancels_all_its_jobs_and_runs_lists_it(state_dir: Path) -> None:
    # A run of two jobs whose submitter is gone (like a killed esap-cwltool)
    with Run.open("cancel-whole-run", catalogue=Catalogue.load(EXAMPLE_SITES), front="cwl", store=open_store()) as run:
        records = run.submit([JobRequest(key=f"k{n}", spec=make_spec(["sleep", str(n)]), site="local")
                              for n in (120, 121)])
    ids = sorted(r.job_id for r in records)
    run_id = run.run_id

    cancelled = esap("cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert sorted(cancelled.stdout.split()) == sorted([*ids, "cancelled", "cancelled"])
    states = {j["id"]: j["state"] for j in json.loads(esap("status", run_id, "--json").stdout)}
    assert states == dict.fromkeys(ids, "cancelled")
    again = esap("cancel", run_id)
    assert again.returncode == 0 and f"{ids[0]} is already cancelled" in again.stdout

    (listed,) = json.loads(esap("runs", "--json").stdout)
    assert (listed["run"], listed["front"], listed["jobs"]) == (run_id, "cwl", {"cancelled": 2})
    table = esap("runs").stdout
    assert run_id in table and "2 cancelled" in table


def test_ids_are_matched_exactly_and_a_prefix_only_when_asked(state_dir: Path) -> None:
    submitted = esap("submit", "--json", "--", "sleep", "120")
    assert submitted.returncode == 0, submitted.stderr
    job_id = json.loads(submitted.stdout)["id"]
    try:
        for pattern in ("%", "_", "", job_id[:4] + "%"):
            refused = esap("cancel", pattern)
            assert refused.returncode == 2, (pattern, refused.stderr)
            assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
        prefix = job_id[:5]
        assert esap("status", prefix).returncode == 2  # a prefix is not an id ...
        asked = esap("status", "--prefix", prefix, "--json")  # ... unless the user says it is one
        assert asked.returncode == 0, asked.stderr
        assert json.loads(asked.stdout)["id"] == job_id
        assert json.loads(esap("status", job_id, "--json").stdout)["state"] in ("queued", "running")
    finally:
        esap("cancel", job_id)
