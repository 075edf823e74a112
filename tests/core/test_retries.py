from __future__ import annotations

from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState


def test_a_failed_job_with_retries_is_resubmitted_and_wait_follows_it(state_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "tried-once"
    script = f"if [ -e {marker} ]; then echo second; else touch {marker}; exit 4; fi"
    run = Run.open("retry-test", catalogue=Catalogue.load(), store=open_store())
    try:
        first = run.submit([JobRequest(key="flaky", spec=JobSpec(script=script, retries=1))])[0]
        final = run.wait(timeout=120)
    finally:
        run.close()
    (record,) = final.values()
    assert record.state is JobState.COMPLETED and record.attempt == 1
    assert record.job_id != first.job_id
    assert Path(record.stdout).read_text().strip() == "second"
    history = {r.job_id: r.state for r in run.store.jobs_of_run(run.run_id)}
    assert history[first.job_id] is JobState.FAILED


def test_a_retry_that_cannot_be_sent_ends_failed_and_the_run_does_not_wait_for_it(
        state_dir: Path, tmp_path: Path) -> None:
    # The first attempt puts a file where the next attempt's stdout directory must be made:
    # the retry is recorded but cannot be sent. It must end failed, with the reason, instead of
    # staying QUEUED without a scheduler job (the run would wait for it for ever).
    streams = tmp_path / "streams"
    script = f"rm -rf {streams} && touch {streams} && exit 4"
    run = Run.open("retry-unsent", catalogue=Catalogue.load(), store=open_store())
    try:
        run.submit([JobRequest(key="step", spec=JobSpec(script=script, retries=1, stdout=f"{streams}/out"))])
        final = run.wait(timeout=60)
    finally:
        run.close()
    (record,) = final.values()
    assert record.attempt == 1
    assert record.state is JobState.FAILED
    assert record.reason is not None and record.reason.startswith("not submitted")
    stored = run.store.job(record.job_id)
    assert stored.state is JobState.FAILED
