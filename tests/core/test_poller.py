from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from esap_executors import backends
from esap_executors.job import JobSpec
from esap_executors.poller import Change, PollInterval
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue, PollSettings, Site
from esap_executors.sqlite_store import open_store
from tests.support import esap

from . import counting_backend


@pytest.fixture
def counting_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalogue:
    monkeypatch.setitem(backends.BACKEND_MODULES, "counting", "tests.core.counting_backend:CountingBackend")
    site = Site(name="counting", backend="counting", work_root=str(tmp_path / "work"),
                poll=PollSettings(start=0.2, floor=0.1, ceiling=0.2))
    return Catalogue({"counting": site})


@pytest.mark.parametrize("jobs", [1, 100, 1000])
def test_queries_per_cycle_do_not_grow_with_tracked_jobs(
    jobs: int, counting_catalogue: Catalogue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ESAP_POLL_START", "0.2")
    monkeypatch.setenv("ESAP_POLL_CEILING", "0.2")
    run = Run.open(f"poller-{jobs}", catalogue=counting_catalogue, store=open_store(tmp_path / "s.db"))
    try:
        run.submit([JobRequest(key=f"j{i}", spec=JobSpec(argv=("true",)), site="counting") for i in range(jobs)])
        backend = run.backend("counting")
        time.sleep(1.5)
        cycles_before = run.tracker.poll_cycles
        queries_before = backend.query_count
        time.sleep(2.0)
        cycles = run.tracker.poll_cycles - cycles_before
        queries = backend.query_count - queries_before
        assert cycles >= 3
        assert queries == cycles  # one query per cycle, whatever the number of jobs
        counting_backend.finish_all()
        final = run.wait(timeout=30)
        assert len(final) == jobs and all(r.state.value == "completed" for r in final.values())
    finally:
        run.close()


def test_interval_backs_off_and_resets() -> None:
    interval = PollInterval(start=5, floor=1, ceiling=120)
    values = [interval.after_cycle(False) for _ in range(20)]
    assert values[0] > 5 * 1.3 and max(values) <= 120 * 1.1
    assert interval.current == 120
    interval.after_cycle(True)
    assert interval.current == 5


def test_interval_is_shortest_while_jobs_are_ending() -> None:
    interval = PollInterval(start=1, floor=0.5, ceiling=30)
    interval.after_cycle(Change.SOME)
    assert interval.current == 1
    assert interval.after_cycle(Change.ENDING) <= 0.5 * 1.1
    assert interval.current == 0.5
    interval.after_cycle(Change.NONE)  # nothing ended this time: back off from there
    assert interval.current == 0.75


@pytest.mark.parametrize(("variable", "value"), [
    ("ESAP_POLL_FLOOR", "0"), ("ESAP_POLL_START", "-1"), ("ESAP_POLL_CEILING", "nan"),
    ("ESAP_POLL_FLOOR", "fast"), ("ESAP_POLL_START", "inf")])
def test_a_poll_variable_that_is_not_a_positive_number_is_refused_and_nothing_runs(
        variable: str, value: str, state_dir: Path, tmp_path: Path) -> None:
    ran = tmp_path / "ran"
    result = esap("run", "--", "touch", str(ran), env={variable: value})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"esap: error: environment: {variable}: {value!r} is not a positive number of seconds"]
    assert json.loads(esap("status", "--json").stdout) == []
    assert not ran.exists()
