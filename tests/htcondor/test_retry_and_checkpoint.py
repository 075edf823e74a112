"""Retries by cause and checkpoints on the real pool: a job over its allowed execute duration is
held by HTCondor, fails as TIMEOUT and is retried with more time; a job with a checkpoint gets its
signal from the job wrapper's timer and completes in two segments in the same directory."""

from __future__ import annotations

import uuid
from pathlib import Path

from esap_executors.checkpoint import parse_checkpoint
from esap_executors.job import make_spec
from esap_executors.retry_policy import parse_cli
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT


def test_a_job_over_its_walltime_is_retried_with_more_time(catalogue: Catalogue, store: Store) -> None:
    """The schedd evaluates the limit every PERIODIC_EXPR_INTERVAL (60 s on the test pool)."""
    spec = make_spec(["sh", "-c", "sleep 90; echo finished"], walltime="20s",
                     retry_policy=parse_cli(["TIMEOUT:walltime=x8"], None))
    with Run.open(f"htc-retry-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        run.submit([JobRequest(key="slow", spec=spec)])
        final = next(iter(run.wait(timeout=WAIT).values()))
        attempts = sorted(store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert [(r.state, r.cause, r.spec.walltime_s) for r in attempts] == [
        (JobState.FAILED, "TIMEOUT", 20), (JobState.COMPLETED, None, 160)], attempts[0].reason
    assert final.retry_note == "after TIMEOUT: walltime 00:00:20 -> 00:02:40"
    assert attempts[0].node  # the machine it ran on, for a retry that avoids it
    assert Path(final.stdout).read_text() == "finished\n"


SEGMENTED = """
if [ -e checkpointed ]; then echo resumed >> log; exit 0; fi
trap 'echo checkpoint >> log; touch checkpointed; exit 85' USR1
echo started >> log
while :; do sleep 1; done
"""


def test_a_checkpointed_job_continues_in_the_same_directory(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["sh", "-c", SEGMENTED], walltime="30s", checkpoint=parse_checkpoint("USR1@25s"))
    with Run.open(f"htc-cp-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        run.submit([JobRequest(key="segmented", spec=spec)])
        final = next(iter(run.wait(timeout=WAIT).values()))
        first, second = sorted(store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert (first.exit_code, second.state, final.job_id) == (85, JobState.COMPLETED, second.job_id)
    assert first.workdir == second.workdir
    assert (Path(second.workdir) / "log").read_text() == "started\ncheckpoint\nresumed\n"
