"""The soak's executor: many small runs back to back in one process, measured after each.

    python tests/faults/soak.py SITES_YAML RUNS JOBS_PER_RUN

Prints one JSON line per run: its jobs' states, this process's resident memory, open file
descriptors, child processes and threads (psutil) and Python's allocated blocks once the run
is closed.
"""

from __future__ import annotations

import collections
import gc
import json
import sys
import uuid

import psutil

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store


def main(argv: list[str]) -> int:
    sites_yaml, runs, per_run = argv[0], int(argv[1]), int(argv[2])
    catalogue = Catalogue.load(sites_yaml)
    store = open_store()
    me = psutil.Process()
    spec = make_spec(["/bin/true"])
    for number in range(runs):
        with Run.open(f"soak-{uuid.uuid4().hex}", catalogue=catalogue, store=store) as run:
            run.submit([JobRequest(f"j{i}", spec, site="local") for i in range(per_run)])
            final = run.wait(timeout=600)
        states = collections.Counter(r.state.value for r in final.values())
        gc.collect()  # what is still held, not what waits for the collector
        print(json.dumps({"run": number, "states": states, "rss": me.memory_info().rss, "fds": me.num_fds(),
                          "blocks": sys.getallocatedblocks(),
                          "children": len(me.children(recursive=True)), "threads": me.num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
