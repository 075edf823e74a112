"""A worker process of the concurrency test: allocates job ids and changes states on a shared store.

    python -m tests.core.store_worker URL RUN_ID ROLE START_FILE OUT_FILE

Waits for START_FILE (so both workers run at once), then, job by job in an order of its own,
records jobs under ids it allocates and moves the shared jobs through states: ROLE "finisher"
runs each job and completes it, ROLE "spoiler" fails each job and then tries to run it again.
Writes the ids it was handed to OUT_FILE, one a line.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.states import JobState, JobStatus
from esap_executors.store import JobPaths, JobRecord
from esap_executors.stores import open_store


def main(url: str, run_id: str, role: str, start_file: str, out_file: str) -> None:
    store = open_store(url)
    shared = sorted(r.job_id for r in store.jobs_of_run(run_id))
    order = random.Random(role).sample(shared, len(shared))
    while not Path(start_file).exists():
        time.sleep(0.01)
    handed: list[str] = []
    plan = ([JobState.RUNNING, JobState.COMPLETED] if role == "finisher" else [JobState.FAILED, JobState.RUNNING])
    for job_id in order:
        ids = store.new_job_ids(run_id, 1 + len(handed) % 3)
        store.add_jobs([JobRecord(job_id=i, run_id=run_id, key=f"{role}-{i}", name=i, site="local",
                                  native_id=None, state=JobState.QUEUED, spec=JobSpec(argv=("true",)),
                                  location=JobPaths(workdir="/tmp", stdout="/tmp/o", stderr="/tmp/e")) for i in ids])
        handed += ids
        for state in plan:
            store.update_states([(job_id, JobStatus(state, reason=role))])
    Path(out_file).write_text("\n".join(handed) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:6])
