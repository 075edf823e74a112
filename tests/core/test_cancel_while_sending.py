"""`esap cancel` of a job while the executor is sending it (recorded, not yet confirmed): the
store holds it CANCELLED and refuses any later state, so the scheduler job the executor just sent
must be cancelled too, or it would run unobserved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from esap_executors import submitter
from esap_executors.job import JobSpec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import esap


def test_a_job_cancelled_while_it_is_sent_is_cancelled_on_its_scheduler(
        state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(f"local:\n  backend: local\n  work_root: {tmp_path / 'work'}\n"
                     "  options: {max_cores: 2}\n")
    finished = tmp_path / "finished"
    cancels: list[str] = []

    def cancel_in_the_window(point: str) -> None:
        # the scheduler accepted the job; its native id is not stored yet
        if point == "after-send":
            job_id = open_store().jobs_of_run(run.run_id)[0].job_id
            result = esap("cancel", job_id, sites=sites, timeout=120)
            assert result.returncode == 0, result.stderr
            cancels.append(result.stdout)

    monkeypatch.setattr(submitter, "reached", cancel_in_the_window)
    run = Run.open("cancel-while-sending", catalogue=Catalogue.load(sites), store=open_store())
    try:
        (job,) = run.submit([JobRequest(key="slow", spec=JobSpec(script=f"sleep 90; touch {finished}"),
                                        site="local")])
        assert cancels and f"{job.job_id} cancelled" in cancels[0].splitlines()
        final = run.wait(timeout=60)
        stored = run.store.job(job.job_id)
        assert stored.native_id is not None
        backend = run.backends.get("local")
        deadline = time.monotonic() + 30  # the scheduler stops it asynchronously
        while True:
            on_scheduler = backend.poll([stored.native_id], run_id=run.run_id, since=0.0)[stored.native_id]
            if on_scheduler.state.is_final or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    finally:
        run.close()
    assert [r.state for r in final.values()] == [JobState.CANCELLED]
    assert stored.state is JobState.CANCELLED
    assert on_scheduler.state is JobState.CANCELLED
