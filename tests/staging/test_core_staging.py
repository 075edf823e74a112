"""Any front's jobs (the core's stage_in / stage_out) with inputs and outputs on the WebDAV storage."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.job import StageIn, StageOut, make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import EXAMPLE_SITES

from .conftest import Storage


def test_a_local_job_reads_and_writes_the_storage(logged_in: Storage, tmp_path: Path) -> None:
    logged_in.put_file("in/list.txt", b"m31\nm33\nm81\n")
    spec = dataclasses.replace(
        make_spec(["sh", "-c", "wc -l < list.txt > n.txt"]),
        stage_in=(StageIn(logged_in.davs("in/list.txt"), "list.txt"),),
        stage_out=(StageOut("n.txt", logged_in.davs("out/n.txt")),))
    with Run.open("core-storage", catalogue=Catalogue.load(EXAMPLE_SITES), store=open_store()) as run:
        [record] = run.submit([JobRequest(key="count", spec=spec, site="local")])
        final = run.wait([record.job_id], timeout=120)[record.job_id]
    assert final.state is JobState.COMPLETED
    assert logged_in.local("out/n.txt").read_text().strip() == "3"


def test_a_missing_input_url_stops_the_submission(logged_in: Storage, tmp_path: Path) -> None:
    spec = dataclasses.replace(make_spec(["cat", "x"]), stage_in=(StageIn(logged_in.davs("none.txt"), "x"),))
    with Run.open("core-missing", catalogue=Catalogue.load(EXAMPLE_SITES), store=open_store()) as run:
        with pytest.raises(BadInput, match=r"stage_in: davs://.*/none.txt: not found \(HTTP 404\)"):
            run.submit([JobRequest(key="k", spec=spec, site="local")])
        assert run.store.jobs_of_run(run.run_id) == []
