"""One status path: whoever sees a job end first, its exit code, reason and retry are kept."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors import backends
from esap_executors.cli.main import main
from esap_executors.job import JobSpec, StageOut
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState

from .scripted_backend import EXIT_CODE, REASON, ScriptedBackend, fail, finish


@pytest.fixture
def sites(state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setitem(backends.BACKEND_MODULES, "scripted", "tests.core.scripted_backend:ScriptedBackend")
    ScriptedBackend.reset()
    path = tmp_path / "sites.yaml"
    path.write_text(f"scripted:\n  backend: scripted\n  work_root: {tmp_path / 'work'}\n")
    yield path
    ScriptedBackend.release.set()


def _fail_and_let_esap_status_see_it_first(sites: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, Run]:
    run = Run.open("status-sees-it-first", catalogue=Catalogue.load(sites), store=open_store())
    first = run.submit([JobRequest(key="flaky", spec=JobSpec(argv=("true",), retries=1), site="scripted")])[0]
    fail(first.native_id or "")
    assert main(["status", first.run_id, "--sites", str(sites)]) == 0  # before the run's own poll
    assert "failed" in capsys.readouterr().out
    ScriptedBackend.release.set()
    return first.job_id, run


STATUS_READERS = pytest.mark.parametrize(
    "status_explains", [True, False], ids=["status-explains", "status-records-a-bare-failure"])


@STATUS_READERS
def test_a_failure_seen_first_by_esap_status_keeps_its_exit_code_and_reason(
    sites: Path, status_explains: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    ScriptedBackend.others_explain = status_explains
    first, run = _fail_and_let_esap_status_see_it_first(sites, capsys)
    try:
        run.wait(timeout=60)
    finally:
        run.close()
    recorded = open_store().job(first)
    assert recorded.state is JobState.FAILED
    assert (recorded.exit_code, recorded.reason) == (EXIT_CODE, REASON)
    assert main(["status", first, "--sites", str(sites)]) == 0
    assert f" {EXIT_CODE} " in capsys.readouterr().out


@STATUS_READERS
def test_a_failure_seen_first_by_esap_status_is_still_retried(
    sites: Path, status_explains: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    ScriptedBackend.others_explain = status_explains
    first, run = _fail_and_let_esap_status_see_it_first(sites, capsys)
    try:
        final = run.wait(timeout=60)
    finally:
        run.close()
    (last,) = final.values()
    assert last.job_id != first
    assert last.attempt == 1 and last.state is JobState.COMPLETED


def test_a_snapshot_never_changes_under_its_reader(sites: Path) -> None:
    run = Run.open("snapshots", catalogue=Catalogue.load(sites), store=open_store())
    try:
        job = run.submit([JobRequest(key="one", spec=JobSpec(argv=("true",)), site="scripted")])[0]
        ScriptedBackend.release.set()
        before = run.snapshot()[job.job_id]
        assert before.state is JobState.RUNNING or before.state is JobState.QUEUED
        fail(job.native_id or "")
        after = run.wait(timeout=60)[job.job_id]
    finally:
        run.close()
    assert (after.state, after.exit_code, after.reason) == (JobState.FAILED, EXIT_CODE, REASON)
    assert before.state is not JobState.FAILED and before.exit_code is None  # what the reader saw, kept
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.state = JobState.COMPLETED  # type: ignore[misc]


def test_outputs_are_staged_out_once_and_a_failing_copy_does_not_stop_esap_status(
    sites: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept, blocker = tmp_path / "kept.txt", tmp_path / "a-file"
    blocker.write_text("not a directory")
    spec = JobSpec(argv=("true",), stage_out=(StageOut("out.txt", str(kept)), StageOut("out.txt", str(blocker / "x"))))
    run = Run.open("stage-out-once", catalogue=Catalogue.load(sites), store=open_store())
    try:
        job = run.submit([JobRequest(key="writer", spec=spec, site="scripted")])[0]
        (Path(job.workdir) / "out.txt").write_text("result")
        finish(job.native_id or "")
        assert main(["status", job.job_id, "--sites", str(sites)]) == 0  # sees the end first, stages out
        assert kept.read_text() == "result"
        kept.unlink()
        ScriptedBackend.release.set()
        final = run.wait(timeout=60)[job.job_id]
    finally:
        run.close()
    assert final.state is JobState.COMPLETED
    assert not kept.exists()  # the run did not stage out a second time
    assert final.missing_outputs and "a-file" in final.missing_outputs[-1]
    assert "missing outputs: out.txt" in capsys.readouterr().out


def test_esap_runs_shows_jobs_that_ended_since_the_run_last_looked(
    sites: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ScriptedBackend.release.set()
    with Run.open("ended-while-nobody-looked", catalogue=Catalogue.load(sites), store=open_store()) as run:
        job = run.submit([JobRequest(key="one", spec=JobSpec(argv=("true",)), site="scripted")])[0]
    finish(job.native_id or "")
    capsys.readouterr()
    assert main(["runs", "--json", "--sites", str(sites)]) == 0
    (listed,) = [r for r in json.loads(capsys.readouterr().out) if r["run"] == job.run_id]
    assert listed["jobs"] == {"completed": 1}
