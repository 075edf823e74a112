"""Success, non-zero exit, TIMEOUT, cancel, an array of 50 and 500+ jobs tracked with a
constant number of scheduler queries per poll cycle, through sbatch and slurmrestd.

Everything runs in one run so the minute a TIMEOUT needs is spent once.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from esap_executors.states import JobState

from .conftest import Cluster, JobRequest, sacct_count, shell

pytestmark = pytest.mark.slurm

MANY = 200  # trivial jobs per path on top of the others: 2 x (200 + 54) > 500 tracked jobs


def count_queries_per_poll(run, site: str, cycles: list[tuple[int, int]]) -> None:
    backend = run.backend(site)
    original = backend.poll

    def counting(native_ids, *, run_id, since):
        before = backend.query_count
        result = original(native_ids, run_id=run_id, since=since)
        cycles.append((len(native_ids), backend.query_count - before))
        return result

    backend.poll = counting  # type: ignore[method-assign]


def test_success_failure_timeout_cancel_array_and_many(new_run, cluster: Cluster) -> None:
    sites = cluster.sites
    run = new_run()
    cycles: dict[str, list[tuple[int, int]]] = {site: [] for site in sites}
    for site in sites:
        count_queries_per_poll(run, site, cycles[site])
    requests = []
    for site in sites:
        requests += [
            JobRequest(f"{site}-ok", shell('echo "job=$SLURM_JOB_ID"', cores=2), site=site),
            JobRequest(f"{site}-timeout", shell("sleep 600", walltime="1m"), site=site),
            JobRequest(f"{site}-cancel", shell("sleep 600", cores=3), site=site),
            JobRequest(f"{site}-exit3", shell("echo failing >&2; exit 3", cores=4), site=site),
        ]
        requests += [
            JobRequest(f"{site}-array-{i}", shell(f"echo task {i} $SLURM_ARRAY_TASK_ID", memory="64M"), site=site)
            for i in range(50)
        ]
    requests += [JobRequest(f"{site}-many-{i}", shell("true"), site=site) for site in sites for i in range(MANY)]
    records = {r.key: r for r in run.submit(requests)}

    for site in sites:  # 50 same-shaped jobs went out as ONE job array
        arrays = {records[f"{site}-array-{i}"].native_id.split("_")[0] for i in range(50)}
        assert len(arrays) == 1, arrays

    cancel_ids = [records[f"{site}-cancel"].job_id for site in sites]
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        snapshot = run.snapshot()
        if all(snapshot[j].state is JobState.RUNNING for j in cancel_ids):
            break
        time.sleep(0.5)
    run.cancel(cancel_ids)

    final = run.wait(timeout=600)
    by_key = {r.key: r for r in final.values()}
    assert all(r.state.is_final for r in by_key.values()), {k: r.state for k, r in by_key.items()}
    for site in sites:
        ok = by_key[f"{site}-ok"]
        assert ok.state is JobState.COMPLETED and ok.exit_code == 0, (site, ok)
        assert re.search(r"job=\d+", Path(ok.stdout).read_text()), site

        failed = by_key[f"{site}-exit3"]
        assert failed.state is JobState.FAILED and failed.exit_code == 3, (site, failed)
        assert "failing" in Path(failed.stderr).read_text()

        assert by_key[f"{site}-cancel"].state is JobState.CANCELLED, site

        timed_out = by_key[f"{site}-timeout"]
        assert timed_out.state is JobState.FAILED, (site, timed_out)
        assert "TIMEOUT" in (timed_out.reason or ""), (site, timed_out.reason)

        for i in range(50):
            task = by_key[f"{site}-array-{i}"]
            assert task.state is JobState.COMPLETED, (site, i, task)
            assert Path(task.stdout).read_text().startswith(f"task {i} "), (site, i)
        assert all(by_key[f"{site}-many-{i}"].state is JobState.COMPLETED for i in range(MANY)), site

        polls = cycles[site]
        assert max(live for live, _ in polls) >= MANY, polls  # hundreds of jobs live in a cycle...
        # ...and one query per cycle (two only when the controller forgot jobs or did not answer)
        assert {queries for _, queries in polls} <= {1, 2}, polls
    assert sacct_count(run.run_id, cluster) == len(requests)  # nothing submitted twice
