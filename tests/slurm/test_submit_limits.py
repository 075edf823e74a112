"""A site's submission limits on real SLURM: jobs beyond them wait in the store and go as allowed.

The issue's example (max_submit_per_minute: 30, 100 jobs) takes more than three minutes; the same
rule is checked with 20 a minute and 30 jobs (about one minute).
"""

from __future__ import annotations

import getpass
import os
import subprocess
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

from esap_executors.limits import SiteLimits
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import EXAMPLE_SITES

from .conftest import Cluster, shell


def _catalogue(site: str, **limits: int) -> Catalogue:
    chosen = Catalogue.load(EXAMPLE_SITES).get(site)
    return Catalogue({site: replace(chosen, limits=SiteLimits(**limits))})


def _submit_times(cluster: Cluster, run_id: str) -> list[int]:
    """The epoch second each scheduler job (array tasks one each) of the run was submitted."""
    out = subprocess.run(
        [cluster.command("sacct"), "-n", "-X", "-P", "-a", f"--name=esap-{run_id}", "-S", "now-1hour",
         "-o", "JobID,Submit"], capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "SLURM_TIME_FORMAT": "%s"}).stdout
    return sorted(int(line.split("|")[1]) for line in out.splitlines() if line.strip())


def test_max_submit_per_minute_spreads_the_jobs_and_all_complete(cluster: Cluster, state_dir: Path) -> None:
    site = cluster.sites[0]
    with Run(f"rate-{uuid.uuid4().hex}", catalogue=_catalogue(site, max_submit_per_minute=20),
             store=open_store()) as run:
        records = run.submit([JobRequest(key=f"j{i}", spec=shell("true"), site=site) for i in range(30)])
        assert sum(r.native_id is None for r in records) == 10  # waiting, recorded in the store
        assert {r.state for r in open_store().jobs_of_run(run.run_id)} == {JobState.QUEUED}
        final = run.wait(timeout=300)
    assert [r.state for r in final.values()] == [JobState.COMPLETED] * 30
    deadline = time.monotonic() + 30  # the accounting database may lag behind the controller
    while len(times := _submit_times(cluster, run.run_id)) < 30 and time.monotonic() < deadline:
        time.sleep(1)
    assert len(times) == 30
    for start in times:  # in any 60 s, at most 20 submitted
        assert sum(start <= t < start + 60 for t in times) <= 20
    assert times[-1] - times[0] >= 59  # the last ten waited for the minute to pass


def test_max_queued_keeps_at_most_that_many_in_the_queue(cluster: Cluster, state_dir: Path) -> None:
    site = cluster.sites[0]
    run = Run(f"queued-{uuid.uuid4().hex}", catalogue=_catalogue(site, max_queued=10), store=open_store())
    seen: list[int] = []
    done = threading.Event()

    def watch_queue() -> None:
        while not done.is_set():
            out = subprocess.run([cluster.command("squeue"), "-h", "-r", f"--name=esap-{run.run_id}", "-o", "%i"],
                                 capture_output=True, text=True, timeout=30, check=False).stdout
            seen.append(len(out.split()))
            done.wait(0.2)

    watcher = threading.Thread(target=watch_queue)
    watcher.start()
    try:
        run.submit([JobRequest(key=f"j{i}", spec=shell("sleep 2"), site=site) for i in range(25)])
        final = run.wait(timeout=300)
    finally:
        done.set()
        watcher.join()
        run.close()
    assert [r.state for r in final.values()] == [JobState.COMPLETED] * 25
    assert max(seen) == 10, seen  # full, never above


def test_max_array_size_splits_same_shaped_jobs_into_smaller_arrays(cluster: Cluster, state_dir: Path) -> None:
    site = cluster.sites[0]
    with Run(f"arrays-{uuid.uuid4().hex}", catalogue=_catalogue(site, max_array_size=3), store=open_store()) as run:
        records = run.submit([JobRequest(key=f"j{i}", spec=shell("true"), site=site) for i in range(7)])
        final = run.wait(timeout=300)
    assert [r.state for r in final.values()] == [JobState.COMPLETED] * 7
    arrays: dict[str, int] = {}
    for record in records:
        array_id, _, _task = str(record.native_id).partition("_")
        arrays[array_id] = arrays.get(array_id, 0) + 1
    assert sorted(arrays.values()) == [1, 3, 3]  # never more than 3 tasks in one array


LIMITED_QOS = "esap-submit4"  # made here: MaxSubmitJobsPerUser=4, allowed to the test's user


def _limited_qos(cluster: Cluster) -> None:
    sacctmgr = cluster.command("sacctmgr")
    subprocess.run([sacctmgr, "-i", "add", "qos", LIMITED_QOS], capture_output=True, timeout=60,
                   check=False)  # exists already: fine
    for argv in (["modify", "qos", LIMITED_QOS, "set", "MaxSubmitJobsPerUser=4"],
                 ["modify", "user", getpass.getuser(), "set", f"qos+={LIMITED_QOS}"]):
        subprocess.run([sacctmgr, "-i", *argv], capture_output=True, timeout=60, check=True)


def test_a_qos_max_submit_jobs_per_user_is_discovered_and_kept(cluster: Cluster, state_dir: Path) -> None:
    """SLURM refuses a fifth queued job in the QoS: the ten jobs of a run in it all complete only
    because the submitter, having read the QoS's limit, keeps at most four in the queue."""
    _limited_qos(cluster)
    site = cluster.sites[0]  # sacctmgr's answers (the CLI access path)
    chosen = Catalogue.load(EXAMPLE_SITES).get(site)
    catalogue = Catalogue({site: replace(chosen, defaults={**chosen.defaults, "qos": LIMITED_QOS})})
    with Run(f"qos-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store()) as run:
        assert run.backend(site).scheduler_max_queued() == 4
        run.submit([JobRequest(key=f"j{i}", spec=shell("sleep 1"), site=site) for i in range(10)])
        final = run.wait(timeout=300)
    assert [r.state for r in final.values()] == [JobState.COMPLETED] * 10, {r.reason for r in final.values()}
