"""Job ids are unique by construction: a run's jobs are numbered by the store."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from esap_executors.store import job_id_of
from tests.support import EXAMPLE_SITES


def keys_whose_old_ids_collide() -> tuple[str, str]:
    """Two job keys that the releases before job numbers gave the same id (8 hex digits of a hash)."""
    seen: dict[str, str] = {}
    for n in itertools.count():
        key = f"sample-{n}"
        old_suffix = hashlib.sha256(key.encode()).hexdigest()[:8]
        if old_suffix in seen:
            return seen[old_suffix], key
        seen[old_suffix] = key
    raise AssertionError("unreachable")


def test_two_jobs_whose_old_ids_collide_are_both_recorded_and_run(state_dir: Path) -> None:
    first, second = keys_whose_old_ids_collide()
    requests = [JobRequest(key=key, spec=make_spec(["true"]), site="local") for key in (first, second)]
    catalogue = Catalogue.load(EXAMPLE_SITES)
    with Run.open("colliding-keys", catalogue=catalogue, store=open_store()) as run:
        records = run.submit(requests)
        final = run.wait(timeout=120)
    assert len({r.job_id for r in records}) == 2
    assert {final[r.job_id].key: final[r.job_id].state for r in records} == {
        first: JobState.COMPLETED, second: JobState.COMPLETED,
    }
    # a rerun of the same run key finds the same jobs under the same ids and sends nothing
    with Run.open("colliding-keys", catalogue=catalogue, store=open_store()) as rerun:
        again = rerun.submit(requests)
    assert [r.job_id for r in again] == [r.job_id for r in records]
    assert len(open_store().jobs_of_run(run.run_id)) == 2


def test_ids_are_short_numbers_never_handed_out_twice(store_location: str | Path) -> None:
    one, other = open_store(store_location), open_store(store_location)  # e.g. two processes on one run
    one.ensure_run("r0123456789a", "key", "cli")
    handed = one.new_job_ids("r0123456789a", 3) + other.new_job_ids("r0123456789a", 2)
    assert handed == [f"r0123456789a.{n}" for n in range(1, 6)]


def test_numbers_never_spell_an_id_of_the_releases_before_them() -> None:
    # those ids ended in 8 hexadecimal digits; a number of 8 decimal digits could be one
    for number in (1, 9_999_999, 10_000_000, 55_555_555, 99_999_999):
        assert len(job_id_of("r0123456789a", number).split(".")[1]) != 8
