"""500 jobs per path tracked with a constant number of scheduler queries per poll cycle."""

from __future__ import annotations

import pytest

from esap_executors.states import JobState

from .conftest import SITES, JobRequest, sacct_count, shell

pytestmark = pytest.mark.slurm

JOBS = 500


def test_500_jobs_constant_queries_per_cycle(new_run) -> None:
    run = new_run()
    cycles: dict[str, list[tuple[int, int]]] = {site: [] for site in SITES}
    for site in SITES:
        backend = run.backend(site)
        original = backend.poll

        def counting(native_ids, *, run_id, since, _backend=backend, _original=original, _site=site):
            before = _backend.query_count
            result = _original(native_ids, run_id=run_id, since=since)
            cycles[_site].append((len(native_ids), _backend.query_count - before))
            return result

        backend.poll = counting  # type: ignore[method-assign]

    requests = [JobRequest(f"{site}-{i}", shell("true"), site=site) for site in SITES for i in range(JOBS)]
    run.submit(requests)
    final = run.wait(timeout=600)

    states = [r.state for r in final.values()]
    assert states.count(JobState.COMPLETED) == 2 * JOBS, {s: states.count(s) for s in set(states)}
    for site in SITES:
        polls = cycles[site]
        assert polls, site
        assert max(live for live, _ in polls) >= JOBS // 2, polls  # many jobs live in a cycle...
        # ...and always one query (two only when the controller forgot jobs or did not answer)
        assert {queries for _, queries in polls} <= {1, 2}, polls
    assert sacct_count(run.run_id) == 2 * JOBS  # nothing submitted twice
