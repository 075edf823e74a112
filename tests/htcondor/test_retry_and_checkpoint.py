"""Checkpoints on the real pool: a job with a checkpoint gets its signal from the job wrapper's
timer (HTCondor sends none before a limit) and completes in two segments in the same directory.

No TIMEOUT retry is tested here: the test pool (HTCondor 23.9.6) does not enforce
`allowed_execute_duration` (a job with AllowedExecuteDuration = 20 ran 90 s and completed), so
no job of it ends for its time limit."""

from __future__ import annotations

import uuid
from pathlib import Path

from esap_executors.checkpoint import parse_checkpoint
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT

# one line: HTCondor's arguments carry no line breaks
SEGMENTED = ("if [ -e checkpointed ]; then echo resumed >> log; exit 0; fi; "
             "trap 'echo checkpoint >> log; touch checkpointed; exit 85' USR1; "
             "echo started >> log; while :; do sleep 1; done")


def test_a_checkpointed_job_continues_in_the_same_directory(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["sh", "-c", SEGMENTED], walltime="30s", checkpoint=parse_checkpoint("USR1@25s"))
    with Run.open(f"htc-cp-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        run.submit([JobRequest(key="segmented", spec=spec)])
        final = next(iter(run.wait(timeout=WAIT).values()))
        first, second = sorted(store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert (first.exit_code, second.state, final.job_id) == (85, JobState.COMPLETED, second.job_id)
    assert first.workdir == second.workdir
    assert (Path(second.workdir) / "log").read_text() == "started\ncheckpoint\nresumed\n"
