"""A job that could not be sent ends FAILED, unless another process ended it first (`esap cancel`):
then readers and listeners get the job as the store holds it, never a state the store refused."""

from __future__ import annotations

from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import esap


def test_a_job_cancelled_elsewhere_that_then_cannot_be_sent_stays_cancelled(state_dir: Path, tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(f"local:\n  backend: local\n  work_root: {tmp_path / 'work'}\n"
                     "  options: {max_cores: 2}\n  limits: {max_queued: 1}\n")
    run = Run.open("fail-unsent", catalogue=Catalogue.load(sites), store=open_store())
    heard: list[tuple[str, JobState]] = []
    try:
        first, waiting = run.submit([JobRequest(key=key, spec=JobSpec(script="sleep 60"), site="local")
                                     for key in ("first", "waiting")])
        assert waiting.native_id is None  # max_queued: 1
        cancelled = esap("cancel", waiting.job_id, sites=sites, timeout=120)
        assert cancelled.returncode == 0, cancelled.stderr
        run.add_listener(lambda record, status: heard.append((record.job_id, status.state)))

        # the executor's attempt to send it fails (e.g. the scheduler refused the submission)
        run.tracker.fail_unsent([waiting], "not submitted: the scheduler refused it")
        seen = run.tracker.get(waiting.job_id)
        run.cancel([first.job_id])
    finally:
        run.close()
    stored = run.store.job(waiting.job_id)
    assert stored.state is JobState.CANCELLED
    assert (seen.state, seen.reason) == (stored.state, stored.reason)
    assert [state for job_id, state in heard if job_id == waiting.job_id] == [JobState.CANCELLED]
