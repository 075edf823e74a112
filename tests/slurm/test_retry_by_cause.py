"""Retries by cause on real SLURM: memory, a time limit, a failed node.

Only the Slurm 26.05 cluster kills a job for its memory (CR_CPU_Memory and
JobAcctGatherParams=OverMemoryKill in scripts/services/slurm-next.sh; no cgroups here,
../shared/reference/services.md): the out-of-memory retry runs there, through both access paths.
The other clusters schedule CPUs only, and a job above its --mem completes on them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from esap_executors.backends.slurm.records import SlurmRecord, to_status
from esap_executors.causes import Cause, cause_of
from esap_executors.cli.job_commands import explanation
from esap_executors.errors import BadInput
from esap_executors.retry_policy import parse_cli
from esap_executors.runs import JobRequest, Run
from esap_executors.states import JobState
from tests.support import esap

from .conftest import CLUSTERS, Cluster, require_cluster, shell


def test_slurm_failure_states_name_their_cause() -> None:
    for state, cause in (("OUT_OF_MEMORY", Cause.OUT_OF_MEMORY), ("TIMEOUT", Cause.TIMEOUT),
                         ("NODE_FAIL", Cause.NODE_FAIL), ("PREEMPTED", Cause.PREEMPTED),
                         ("CANCELLED", Cause.CANCELLED)):
        status = to_status(SlurmRecord(native_id="1", state=state, exit_code=1))
        assert cause_of(status) is cause, state
    # SLURM's FAILED with an exit code and no signal: the job ended by itself, and whether exit
    # code 1 is a failure is the job's success codes' to say (the Tracker then names EXIT_CODE)
    ended = to_status(SlurmRecord(native_id="1", state="FAILED", exit_code=1))
    assert ended.state is JobState.COMPLETED and ended.exit_code == 1 and cause_of(ended) is None
    # memory enforced by accounting (OverMemoryKill): FAILED 0:9, its peak at or above its request
    killed = to_status(SlurmRecord(native_id="1", state="FAILED", signal=9, max_rss="111292K", req_mem="50M"))
    assert (killed.state, killed.reason, cause_of(killed)) == (JobState.FAILED, "OUT_OF_MEMORY", Cause.OUT_OF_MEMORY)
    other_kill = to_status(SlurmRecord(native_id="1", state="FAILED", signal=9, max_rss="20000K", req_mem="50M"))
    assert cause_of(other_kill) is Cause.EXIT_CODE


MEMORY_ENFORCING = CLUSTERS["26.05"]
GROWER = "python3 -c \"import time; block = bytearray(150 * 1024 * 1024); time.sleep(3)\" && echo finished > {out}"


@pytest.mark.slurm_version("26.05")  # the one test cluster that enforces memory
@pytest.mark.parametrize("site", MEMORY_ENFORCING.sites)
def test_a_job_above_its_memory_is_killed_and_succeeds_with_doubled_memory(
        site: str, new_run: Callable[..., Run], tmp_path: Path) -> None:
    """150 MiB in a job that asked for 100M: SLURM kills it (FAILED 0:9, its peak above ReqMem),
    the Tracker names OUT_OF_MEMORY, and the retry asks for 200M and completes."""
    require_cluster(MEMORY_ENFORCING)
    run = new_run()
    spec = shell(GROWER.format(out=tmp_path / "out"), memory="100M").with_changes(
        retry_policy=parse_cli(["OUT_OF_MEMORY:memory=x2,up_to=1G"], None))
    run.submit([JobRequest(key="grower", spec=spec, site=site)])
    final = next(iter(run.wait(timeout=240).values()))
    attempts = sorted(run.store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert [(r.state, r.cause, r.spec.memory_mib) for r in attempts] == [
        (JobState.FAILED, "OUT_OF_MEMORY", 100), (JobState.COMPLETED, None, 200)]
    assert explanation(attempts[0]).startswith("OUT_OF_MEMORY: ")  # esap status's REASON column
    assert final.retry_note == "after OUT_OF_MEMORY: memory 100 MiB -> 200 MiB"
    assert attempts[0].native_id != attempts[1].native_id
    assert (tmp_path / "out").read_text() == "finished\n"


def test_a_job_over_its_time_limit_is_retried_with_more_time(
        cluster: Cluster, new_run: Callable[..., Run], tmp_path: Path) -> None:
    """`--time=1` (SLURM's least) kills a 75 s job; the retry gets 2 minutes and completes."""
    site = cluster.sites[0]
    run = new_run()
    spec = shell(f"sleep 75; echo finished > {tmp_path}/out", walltime="1m").with_changes(
        retry_policy=parse_cli(["TIMEOUT:walltime=x2,up_to=3m"], None))
    run.submit([JobRequest(key="slow", spec=spec, site=site)])
    final = next(iter(run.wait(timeout=420).values()))
    attempts = sorted(run.store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert [(r.state, r.cause, r.spec.walltime_s) for r in attempts] == [
        (JobState.FAILED, "TIMEOUT", 60), (JobState.COMPLETED, None, 120)]
    assert final.retry_note == "after TIMEOUT: walltime 00:01:00 -> 00:02:00"
    assert attempts[0].native_id != attempts[1].native_id  # a new scheduler job of the same step
    assert (tmp_path / "out").read_text() == "finished\n"


def test_a_node_set_down_under_a_job_is_avoided_by_its_retry(
        cluster: Cluster, new_run: Callable[..., Run], tmp_path: Path) -> None:
    site = cluster.sites[0]
    run = new_run()
    spec = shell(f"hostname; sleep 20; echo finished > {tmp_path}/out").with_changes(
        retry_policy=parse_cli(["NODE_FAIL:avoid_node"], None))
    (first,) = run.submit([JobRequest(key="victim", spec=spec, site=site)])
    node = _node_when_running(cluster, str(first.native_id))
    try:
        _scontrol(cluster, "update", f"nodename={node}", "state=down", "reason=esap retry test")
        final = next(iter(run.wait(timeout=240).values()))
    finally:
        _resume(cluster, node)
    attempts = sorted(run.store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert [(r.state, r.cause) for r in attempts] == [(JobState.FAILED, "NODE_FAIL"), (JobState.COMPLETED, None)]
    assert attempts[0].node == node
    assert attempts[1].spec.avoid_nodes == (node,)
    assert final.retry_note == f"after NODE_FAIL: avoiding {node}"
    ran_on = _node_of(cluster, str(attempts[1].native_id))
    assert ran_on and ran_on != node
    assert (tmp_path / "out").read_text() == "finished\n"


def _scontrol(cluster: Cluster, *args: str) -> None:
    subprocess.run([cluster.command("scontrol"), *args], check=True, capture_output=True, text=True, timeout=30)


def _resume(cluster: Cluster, node: str) -> None:
    """Back to service (ReturnToService=2 may have done it already when its slurmd answered)."""
    subprocess.run([cluster.command("scontrol"), "update", f"nodename={node}", "state=resume"],
                   capture_output=True, text=True, timeout=30, check=False)
    state = subprocess.run([cluster.command("sinfo"), "-h", "-n", node, "-o", "%T"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert "down" not in state, f"node {node} is still {state.strip()}"


def _node_of(cluster: Cluster, native_id: str) -> str:
    """The job's node as accounting records it (which may lag the job's end by seconds)."""
    deadline = time.monotonic() + 30
    while True:
        out = subprocess.run([cluster.command("sacct"), "-n", "-X", "-P", "-j", native_id, "-o", "NodeList"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        node = out.strip().splitlines()[0] if out.strip() else ""
        if (node and node != "None assigned") or time.monotonic() > deadline:
            return node
        time.sleep(1)


def _node_when_running(cluster: Cluster, native_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        out = subprocess.run([cluster.command("squeue"), "-h", "-j", native_id, "-o", "%T %N"],
                             capture_output=True, text=True, timeout=30, check=False).stdout.split()
        if len(out) == 2 and out[0] == "RUNNING":
            return out[1]
        time.sleep(0.5)
    raise AssertionError(f"job {native_id} did not start within 60 s")


SEGMENTED = """
if [ -e checkpointed ]; then echo resumed >> log; exit 0; fi
trap 'echo checkpoint >> log; touch checkpointed; exit 85' USR1
echo started >> log
while :; do sleep 1; done
"""


def test_a_job_gets_its_checkpoint_signal_from_slurm_and_continues(
        cluster: Cluster, new_run: Callable[..., Run], tmp_path: Path) -> None:
    """SLURM sends USR1 before `--time=2` ends (its resolution is up to a minute early)."""
    from esap_executors.checkpoint import parse_checkpoint

    site = cluster.sites[0]
    run = new_run()
    spec = shell(SEGMENTED, walltime="2m").with_changes(cwd=str(tmp_path), checkpoint=parse_checkpoint("USR1@30"))
    run.submit([JobRequest(key="segmented", spec=spec, site=site)])
    final = next(iter(run.wait(timeout=400).values()))
    first, second = sorted(run.store.jobs_of_run(run.run_id), key=lambda r: r.attempt)
    assert (first.exit_code, final.job_id, final.state) == (85, second.job_id, JobState.COMPLETED)
    assert first.workdir == second.workdir == str(tmp_path)
    assert (tmp_path / "log").read_text() == "started\ncheckpoint\nresumed\n"
    status = esap("status", run.run_id, "--json")  # one step, its two scheduler jobs inside
    (step,) = json.loads(status.stdout)
    assert (step["id"], [(s["native_id"], s["exit_code"]) for s in step["segments"]]) == (
        second.job_id, [(first.native_id, 85), (second.native_id, 0)])


def test_a_retry_request_reaches_slurm_through_every_access_path(
        site: str, new_run: Callable[..., Run], tmp_path: Path) -> None:
    """What a retry or checkpoint changes (excluded node, no requeue, warning signal) is a valid
    request for sbatch and for every slurmrestd API version."""
    from esap_executors.checkpoint import parse_checkpoint

    from .conftest import cluster_of

    run = new_run()
    spec = shell("hostname", walltime="5m").with_changes(
        avoid_nodes=("n2",), retry_policy=parse_cli(["NODE_FAIL:avoid_node"], None),
        checkpoint=parse_checkpoint("USR1@60"))
    try:
        (record,) = run.submit([JobRequest(key="placed", spec=spec, site=site)])
    except BadInput as exc:  # Slurm 22.05's REST API (v0.0.38) has neither, and says so before sending
        assert str(exc) == "excluded_nodes: slurmrestd API v0.0.38 cannot request excluded nodes"
        with pytest.raises(BadInput, match="v0.0.38 cannot send a signal to the job's script"):
            run.submit([JobRequest(key="placed", spec=spec.with_changes(avoid_nodes=()), site=site)])
        unsigned = spec.with_changes(avoid_nodes=(), checkpoint=None)
        run.submit([JobRequest(key="placed", spec=unsigned, site=site)])
        assert next(iter(run.wait(timeout=240).values())).state is JobState.COMPLETED
        return
    final = next(iter(run.wait(timeout=240).values()))
    assert final.state is JobState.COMPLETED, final.reason
    assert _node_of(cluster_of(site), str(record.native_id)) == "n1"
