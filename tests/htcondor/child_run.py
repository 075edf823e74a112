"""A run submitted from a separate process, killed by the test (python -m tests.htcondor.child_run)."""

from __future__ import annotations

import dataclasses
import sys
import time

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from tests.support import EXAMPLE_SITES


def main(key: str, work_root: str, count: int) -> None:
    catalogue = Catalogue.load(EXAMPLE_SITES)
    site = catalogue.get("htcondor-local")
    catalogue.sites["htcondor-local"] = dataclasses.replace(site, work_root=work_root)
    run = Run.open(key, catalogue=catalogue, default_site="htcondor-local", store=open_store())
    records = run.submit([JobRequest(key=f"k{i}", spec=make_spec(["sleep", "4"])) for i in range(count)])
    print("SUBMITTED", " ".join(r.native_id or "-" for r in records), flush=True)
    time.sleep(3600)  # killed by the test while its jobs run


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
