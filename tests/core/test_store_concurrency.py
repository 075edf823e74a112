"""Two worker processes share one PostgreSQL store: ids never collide and final states are never left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.states import JobState
from esap_executors.store import JobPaths, JobRecord
from esap_executors.stores import open_store
from tests.support import ROOT

SHARED_JOBS = 150


def test_two_processes_allocate_ids_and_change_states_at_once(postgres_state_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_state_url)
    store.ensure_run("rshared", "shared run", "uws")
    ids = store.new_job_ids("rshared", SHARED_JOBS)
    store.add_jobs([JobRecord(job_id=i, run_id="rshared", key=i, name=i, site="local", native_id=None,
                              state=JobState.QUEUED, spec=JobSpec(argv=("true",)),
                              location=JobPaths(workdir="/tmp", stdout="/tmp/o", stderr="/tmp/e")) for i in ids])
    store.set_native_ids([(i, f"n{i}") for i in ids])
    start = tmp_path / "start"
    workers = [
        subprocess.Popen([sys.executable, "-m", "tests.core.store_worker", postgres_state_url, "rshared", role,
                          str(start), str(tmp_path / f"{role}.ids")], cwd=ROOT)
        for role in ("finisher", "spoiler")
    ]
    start.touch()
    assert [w.wait(timeout=300) for w in workers] == [0, 0]

    handed = [line for role in ("finisher", "spoiler") for line in (tmp_path / f"{role}.ids").read_text().split()]
    numbers = sorted(int(job_id.split(".")[1]) for job_id in handed)
    assert numbers == list(range(SHARED_JOBS + 1, SHARED_JOBS + 1 + len(handed)))  # no gap, no id twice
    assert len(store.jobs_of_run("rshared")) == SHARED_JOBS + len(handed)

    history = store.transitions_of_run("rshared")
    ended = {JobState.COMPLETED: 0, JobState.FAILED: 0}
    for job_id in ids:
        states = [new for _, new, _, _ in history[job_id]]
        finals = [i for i, state in enumerate(states) if JobState(state).is_final]
        assert len(finals) == 1 and finals[0] == len(states) - 1, (job_id, states)  # never left
        job = store.job(job_id)
        assert job.state.value == states[-1]
        ended[job.state] += 1
    assert sum(ended.values()) == SHARED_JOBS


OPEN_AND_ALLOCATE = """
import sys
from esap_executors.stores import open_store
store = open_store(sys.argv[1])
store.ensure_run("rfresh", "fresh", "uws")
print(" ".join(store.new_job_ids("rfresh", 5)))
"""


def test_workers_opening_a_new_store_at_once_migrate_it_once(postgres_state_url: str) -> None:
    import psycopg

    from esap_executors import state_schema

    workers = [subprocess.Popen([sys.executable, "-c", OPEN_AND_ALLOCATE, postgres_state_url], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, [err for _, err in outputs]
    handed = sorted(int(i.split(".")[1]) for out, _ in outputs for i in out.split())
    assert handed == list(range(1, 21))
    with psycopg.connect(postgres_state_url) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(state_schema.VERSION,)]


def test_a_store_opened_before_a_fork_serves_the_parent_and_the_child(postgres_state_url: str) -> None:
    """As in a prefork worker pool: each process gets its own connection, neither breaks the other's."""
    import os

    store = open_store(postgres_state_url)
    store.ensure_run("rfork", "fork", "uws")
    parent_first = store.new_job_ids("rfork", 1)
    session = store.connect().execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[attr-defined]
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        own = store.connect().execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[attr-defined]
        ok = own != session and store.new_job_ids("rfork", 1) == ["rfork.2"]
        os._exit(0 if ok else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert parent_first + store.new_job_ids("rfork", 1) == ["rfork.1", "rfork.3"]
