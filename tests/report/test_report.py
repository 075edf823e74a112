"""`esap report RUN`: every job's times, place, outcome and usage, as JSON, text and an HTML page."""

from __future__ import annotations

import json
from pathlib import Path

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from tests.support import EXAMPLE_SITES, esap

from .browser import open_report


def run_local_jobs(seconds: list[float], failing: int = 0) -> str:
    """A run of sleeping jobs on the local site (and `failing` jobs that exit 3); its id."""
    requests = [
        JobRequest(key=f"sleep-{i}", name=f"sleep {s}",
                   spec=make_spec(["sleep", str(s)], cores=1, memory="64M", walltime="2m",
                                  labels={"cwl_step": "sleepers"}))
        for i, s in enumerate(seconds)
    ]
    requests += [
        JobRequest(key=f"fail-{i}", name="fails", spec=make_spec(["sh", "-c", "exit 3"], cores=1, memory="64M",
                                                                 walltime="1m", labels={"cwl_step": "failing"}))
        for i in range(failing)
    ]
    with Run.open(f"report-test-{seconds}-{failing}", catalogue=Catalogue.load(str(EXAMPLE_SITES)),
                  store=open_store()) as run:
        run.submit(requests)
        run.wait(timeout=120)
        return run.run_id


def check_times_in_order(jobs: list[dict[str, object]]) -> None:
    for job in jobs:
        queued, started, ended = job["queued"], job["started"], job["ended"]
        assert isinstance(queued, float) and isinstance(started, float) and isinstance(ended, float), job
        assert queued <= started <= ended, job


def test_report_json_has_every_job_with_ordered_times_and_the_summary(state_dir: Path) -> None:
    run_id = run_local_jobs([0.2, 1.5, 3], failing=1)

    result = esap("report", run_id, "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    jobs = report["jobs"]
    assert len(jobs) == 4
    check_times_in_order(jobs)
    assert {j["site"] for j in jobs} == {"local"}
    assert all(j["native_id"] for j in jobs)
    (failed,) = [j for j in jobs if j["state"] == "failed"]
    assert failed["exit_code"] == 3 and failed["group"] == "failing"
    longest = max(jobs, key=lambda j: j["ended"] - j["started"])
    assert longest["name"] == "sleep 3" and longest["wall_s"] >= 3
    summary = report["run"]
    assert summary["states"] == {"completed": 3, "failed": 1} and summary["final"]
    assert summary["wall_s"] >= 3
    # the local site accounts CPU time: used, reserved (cores x run time) and requested (cores x walltime)
    assert 0 < summary["cpu_hours_used"] < summary["cpu_hours_reserved"] < summary["cpu_hours_requested"]
    assert summary["cpu_hours_requested"] == (3 * 120 + 60) / 3600
    assert 0 < summary["efficiency"] < 0.5  # sleeping jobs use little of their core

    text = esap("report", run_id)
    assert text.returncode == 0 and "3 completed, 1 failed" in text.stdout


def test_report_html_opens_offline_with_one_bar_per_job(state_dir: Path, tmp_path: Path) -> None:
    run_id = run_local_jobs([0.2, 0.5, 2.5, 1], failing=2)
    html = tmp_path / "report.html"

    result = esap("report", run_id, "--html", str(html))

    assert result.returncode == 0, result.stderr
    text = html.read_text()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    page = open_report(html)
    assert page.console_errors == []
    assert page.bars == 6 and page.table_rows == 6
    assert page.colours > 20, "the screenshot is blank"
    report = json.loads(esap("report", run_id, "--json").stdout)
    longest = max(report["jobs"], key=lambda j: j["wall_s"] or 0)
    assert longest["name"] == "sleep 2.5" and page.first_row_after_sort == longest["job_id"]


def test_report_of_an_unknown_run_is_one_line_and_exit_2(state_dir: Path) -> None:
    result = esap("report", "r0123456789a", "--json")

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "r0123456789a" in result.stderr
