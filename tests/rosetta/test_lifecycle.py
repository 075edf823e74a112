"""One run of several steps on rosetta-slurm through the core's Run: Rosetta requests per poll
cycle stay constant whatever the number of steps (one status listing, one task listing when
steps finished; the rest is per finished step); cancel stops and deletes the task and its
SLURM job goes; a runner killed by its SLURM time limit is found through its missing heartbeat."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState

pytestmark = pytest.mark.rosetta

SITE = "rosetta-slurm"
STEPS = 17  # plus exit3, cancel and killed: 20 steps in one run


@pytest.fixture
def run(catalogue: Catalogue, state_dir: Path) -> Iterator[Run]:
    opened = Run.open(f"rosetta-test-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store())
    yield opened
    live = [j for j, r in opened.snapshot().items() if not r.state.is_final and r.native_id]
    if live:
        opened.cancel(live)
    opened.close()


def sh(command: str, **spec: object) -> object:
    return make_spec(["sh", "-c", command], **spec)  # type: ignore[arg-type]


def slurm_jobs_of(task_uuid: str) -> list[str]:
    """The ids of the SSH user's SLURM jobs that Rosetta submitted for a task (named after its uuid)."""
    out = subprocess.run(["squeue", "-h", "-u", "esaprosetta", "-o", "%i %j"], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    return [job for job, name in (line.split(maxsplit=1) for line in out) if name.startswith(task_uuid)]


def slurm_state(job: str) -> str:
    out = subprocess.run(["sacct", "-n", "-X", "-P", "-j", job, "-o", "State"], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[0] if out else ""


def wait_until(predicate, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(1)
    return predicate()


def test_many_steps_cancel_and_lost_heartbeat(run: Run, client: RosettaClient) -> None:
    backend = run.backend(SITE)
    cycles: list[tuple[int, int, int]] = []  # (steps asked, status/task queries, other requests)
    original = backend.poll

    def counting(native_ids, *, run_id, since):  # type: ignore[no-untyped-def]
        requests, queries, actions = backend.client.requests_made, backend.query_count, backend.action_count
        result = original(native_ids, run_id=run_id, since=since)
        cycles.append((len(native_ids), backend.query_count - queries,
                       backend.client.requests_made - requests - (backend.action_count - actions)))
        return result

    backend.poll = counting  # type: ignore[method-assign]
    requests = [JobRequest(f"ok-{i}", sh(f"echo step {i}"), site=SITE) for i in range(STEPS)]
    requests += [
        JobRequest("exit3", sh("echo failing >&2; exit 3"), site=SITE),
        JobRequest("cancel", sh("sleep 300"), site=SITE),
        JobRequest("killed", sh("sleep 300"), site=SITE),
    ]
    records = {r.key: r for r in run.submit(requests)}
    names = {f"esap-{records[k].native_id}" for k in ("cancel", "killed")}
    tasks: dict[str, str] = {}

    def both_running() -> bool:
        tasks.update({t.name: t.uuid for t in client.tasks(f"esap-{run.run_id}-") if t.name in names})
        return len(tasks) == 2 and all(run.snapshot()[records[k].job_id].state is JobState.RUNNING
                                       for k in ("cancel", "killed"))

    assert wait_until(both_running, 180), ({r.key: (r.state.value, r.reason) for r in run.snapshot().values()}, tasks)
    cancel_task = tasks[f"esap-{records['cancel'].native_id}"]
    killed_task = tasks[f"esap-{records['killed'].native_id}"]
    assert slurm_jobs_of(cancel_task)
    run.cancel([records["cancel"].job_id])
    # SLURM kills the runner at its time limit (Rosetta's sbatch sets none: the operator lowers
    # it to the shortest, 1 min): no exit code is ever written
    killed_jobs = slurm_jobs_of(killed_task)
    assert len(killed_jobs) == 1, killed_jobs
    subprocess.run(["scontrol", "update", f"JobId={killed_jobs[0]}", "TimeLimit=1"], check=True)
    final = run.wait(timeout=300)

    assert all(final[records[f"ok-{i}"].job_id].state is JobState.COMPLETED for i in range(STEPS))
    assert Path(final[records["ok-3"].job_id].stdout).read_text() == "step 3\n"
    failed = final[records["exit3"].job_id]
    assert failed.state is JobState.FAILED and failed.exit_code == 3
    assert final[records["cancel"].job_id].state is JobState.CANCELLED
    assert wait_until(lambda: not slurm_jobs_of(cancel_task), 30)
    lost = final[records["killed"].job_id]
    assert lost.state is JobState.FAILED and "heartbeat lost" in (lost.reason or "")
    assert wait_until(lambda: slurm_state(killed_jobs[0]) == "TIMEOUT", 30), slurm_state(killed_jobs[0])
    assert client.tasks(f"esap-{run.run_id}-") == []  # every task stopped and deleted

    assert cycles
    for _steps, queries, others in cycles:
        assert queries <= 2, cycles  # one status listing, plus one task listing when steps finished
        assert others == queries, cycles  # nothing else but per-finished-step actions
    assert max(steps for steps, _, _ in cycles) == len(requests)
