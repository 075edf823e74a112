"""A small workflow run as its own executor process: the process the fault tests kill.

    python tests/faults/workflow.py SITES_YAML RUN_KEY SITE JOBS MARKS_DIR [OUT_DIR]

Submits JOBS jobs to SITE under RUN_KEY (a rerun with the same key reattaches), waits for
them and prints one line per job: ``key state``. Each job appends one line to MARKS_DIR/<key>,
so a test counts how many times each job really ran; with OUT_DIR each job also writes two
outputs that are staged out there. ESAP_FAULT_KILL_AT (esap_executors/faultpoints.py) makes
this process SIGKILL itself at one point of the submission; FAULT_JOB_SLEEP makes each job
sleep that many seconds first.
"""

from __future__ import annotations

import os
import sys

from esap_executors.job import StageOut, make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store


def requests(site: str, jobs: int, marks: str, out_dir: str | None) -> list[JobRequest]:
    made = []
    for i in range(jobs):
        key = f"job-{i}"
        pause = os.environ.get("FAULT_JOB_SLEEP", "0")
        script = f"sleep {pause}; echo ran >> {marks}/{key}; echo first > first.txt; echo second > second.txt"
        extra: dict[str, object] = {}
        if out_dir:
            extra["stage_out"] = (StageOut("first.txt", f"{out_dir}/{key}.first"),
                                  StageOut("second.txt", f"{out_dir}/{key}.second"))
        made.append(JobRequest(key, make_spec(["/bin/sh", "-c", script], **extra), site=site))
    return made


def main(argv: list[str]) -> int:
    sites_yaml, key, site, jobs, marks = argv[:5]
    out_dir = argv[5] if len(argv) > 5 else None
    run = Run.open(key, catalogue=Catalogue.load(sites_yaml), store=open_store())
    try:
        run.submit(requests(site, int(jobs), marks, out_dir))
        print("SUBMITTED", flush=True)
        final = run.wait(timeout=300)
        for record in sorted(final.values(), key=lambda r: r.key):
            print(record.key, record.state.value, flush=True)
    finally:
        run.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
