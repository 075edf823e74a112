"""Workflows submitted as ESAP UWS jobs (`esap uws submit`) run through the gateway's Celery worker
on the real schedulers, and the user sees the outcome through the gateway alone."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import require_service
from tests.uws.conftest import (
    DATA,
    ESAP_SH,
    GATEWAY,
    WORKER_PID,
    esap_uws,
    policy_decisions,
    status,
    submit,
    wait_for,
    wait_for_scheduler_job,
    worker_store,
)

SLURM_ENV = "/var/lib/slurm-ci/env"


def squeue_ids() -> set[str]:
    """The job ids the host cluster still has in its queue."""
    argv = ["bash", "-c", f"source {SLURM_ENV} && squeue -h -o %i"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return {line.strip() for line in done.stdout.splitlines() if line.strip()}


def slurm_jobs_of_run(run_id: str) -> list[str]:
    """Every job the host cluster has seen today under the run's name (queued, running or ended)."""
    argv = ["bash", "-c", f"source {SLURM_ENV} && sacct -X -n -P -o JobID --name=esap-{run_id} -S now-1days"
                          f" && squeue -h -o %i -n esap-{run_id}"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})


def results(job_id: int, token: str, download: Path | None = None) -> dict[str, list[str]]:
    extra = ["--download", str(download)] if download else []
    done = esap_uws("results", str(job_id), *extra, token=token)
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    return {row[0]: row[1:] for row in rows}


def assert_clean_error(summary: str, token: str) -> None:
    assert "Traceback" not in summary and 'File "' not in summary
    assert token not in summary and "eyJ" not in summary


@pytest.mark.slurm
def test_a_cwl_workflow_runs_on_slurm_and_its_outputs_are_the_results(alice: str, tmp_path: Path) -> None:
    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "greeting.cwl"),
                    str(DATA / "greeting.yml"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    assert [job["name"] for job in final["run"]["jobs"]] == ["say", "shout"]
    assert all(job["state"] == "completed" and job["scheduler_id"] for job in final["run"]["jobs"])
    found = results(job_id, alice, download=tmp_path)
    uri, size, mime = found["greeting"]
    assert uri.startswith("file:///") and uri.endswith("/greeting.txt")
    assert (mime, int(size)) == ("text/plain", len("HELLO FROM ESAP\n"))
    assert (tmp_path / "greeting.txt").read_text() == "HELLO FROM ESAP\n"


@pytest.mark.htcondor
def test_a_snakemake_workflow_runs_on_htcondor(alice: str) -> None:
    job_id = submit("--front", "snakemake", "--site", "htcondor-local", str(DATA / "Snakefile"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    assert {job["site"] for job in final["run"]["jobs"]} == {"htcondor-local"}
    found = results(job_id, alice)
    assert set(found) == {"hello.txt", "upper.txt"}
    uri, size, mime = found["upper.txt"]
    assert (int(size), mime) == (len("HELLO SNAKEMAKE\n"), "text/plain")
    assert Path(uri.removeprefix("file://")).read_text() == "HELLO SNAKEMAKE\n"


@pytest.mark.htcondor
def test_a_jdl_job_runs_on_htcondor_and_its_output_sandbox_is_the_results(alice: str) -> None:
    job_id = submit("--front", "jdl", "--site", "htcondor-local", str(DATA / "job.jdl"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    found = results(job_id, alice)
    assert {"result.txt", "std.out", "std.err"} <= {Path(key).name for key in found}
    key = next(k for k in found if Path(k).name == "result.txt")
    uri, size, mime = found[key]
    assert Path(uri.removeprefix("file://")).read_text() == "jdl result\n"
    assert (int(size), mime) == (len("jdl result\n"), "text/plain")


@pytest.mark.slurm
def test_a_failing_workflow_ends_in_error_naming_the_step(alice: str) -> None:
    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "broken.cwl"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "ERROR", final
    summary = final["errorSummary"]
    assert summary.startswith("step broken failed on slurm-local"), summary
    assert "exit code 3" in summary or "exit 3" in summary, summary
    assert_clean_error(summary, alice)
    assert "greeting" not in results(job_id, alice)


@pytest.mark.slurm
def test_abort_cancels_the_runs_slurm_jobs(alice: str, tmp_path: Path) -> None:
    inputs = tmp_path / "long.yml"
    inputs.write_text("seconds: 600\n")
    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "sleeper.cwl"), str(inputs), token=alice)
    running = wait_for_scheduler_job(job_id, alice)
    scheduler_ids = {job["scheduler_id"] for job in running["run"]["jobs"]}
    assert scheduler_ids <= squeue_ids()
    done = esap_uws("abort", str(job_id), token=alice)
    assert done.returncode == 0 and "ABORTED" in done.stdout, done.stderr
    end = time.monotonic() + 90  # the worker notices within its poll interval, then cancels
    while scheduler_ids & squeue_ids():
        assert time.monotonic() < end, f"still queued after ABORT: {scheduler_ids & squeue_ids()}"
        time.sleep(1)
    end = time.monotonic() + 30  # the worker records the cancellation once scancel returned
    final = status(job_id, alice)
    while {job["state"] for job in final["run"]["jobs"]} != {"cancelled"}:
        assert time.monotonic() < end, final
        time.sleep(1)
        final = status(job_id, alice)
    assert final["phase"] == "ABORTED"


@pytest.mark.slurm
def test_a_worker_killed_mid_run_reattaches_without_resubmitting(alice: str, tmp_path: Path,
                                                                 restart_worker: None) -> None:
    inputs = tmp_path / "medium.yml"
    inputs.write_text("seconds: 30\n")
    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "sleeper.cwl"), str(inputs), token=alice)
    running = wait_for_scheduler_job(job_id, alice)
    before = [(job["id"], job["scheduler_id"]) for job in running["run"]["jobs"]]
    os.killpg(int(WORKER_PID.read_text()), signal.SIGKILL)  # the Celery worker, its pool and its front
    restarted = subprocess.run(["bash", str(ESAP_SH), "start"], capture_output=True, text=True, timeout=600,
                               check=False)
    assert restarted.returncode == 0, restarted.stderr[-2000:]
    final = wait_for(job_id, alice, timeout=400)
    assert final["phase"] == "COMPLETED", final
    assert [(job["id"], job["scheduler_id"]) for job in final["run"]["jobs"]] == before
    assert final["run"]["run_key"].startswith(f"{GATEWAY}uws/jobs/{job_id}/@")
    uri, size, _ = results(job_id, alice)["slept"]
    assert Path(uri.removeprefix("file://")).read_text() == "slept 30\n"


@pytest.fixture
def worker_dying_after_the_front() -> Iterator[None]:
    """The Celery worker armed to die once a front has ended, before anything reaches the gateway."""
    armed = subprocess.run(["bash", str(ESAP_SH), "start"], capture_output=True, text=True, timeout=900,
                           check=False, env={**os.environ, "ESAP_WORKER_FAULT_KILL_AT": "uws-front-ended"})
    assert armed.returncode == 0, armed.stderr[-2000:]
    try:
        yield
    finally:
        subprocess.run(["bash", str(ESAP_SH), "start"], capture_output=True, text=True, timeout=900, check=False)


@pytest.mark.slurm
def test_a_worker_dying_after_the_run_ended_reports_it_without_running_it_again(
        alice: str, tmp_path: Path, worker_dying_after_the_front: None) -> None:
    from esap_executors.submitter import run_id_for

    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "greeting.cwl"),
                    str(DATA / "greeting.yml"), token=alice)
    final = wait_for(job_id, alice, timeout=400)  # a rerun would die at the same point again: never final
    assert final["phase"] == "COMPLETED", final
    run_key = final["run"]["run_key"]
    assert final["run"]["run"] == run_id_for(f"{run_key}#0")  # the first (and only) run is the one reported
    assert worker_store().run(run_id_for(f"{run_key}#1")) is None  # no second run was opened
    assert len(slurm_jobs_of_run(final["run"]["run"])) == 2  # say and shout, each sent once
    workdir = Path(os.environ.get("ESAP_UWS_WORKDIR", "/tmp/esap-uws")) / f"{job_id}-{run_id_for(run_key)}"
    assert not (workdir / "front-exit.json").exists()  # the worker died before recording the front's end
    results(job_id, alice, download=tmp_path)
    assert (tmp_path / "greeting.txt").read_text() == "HELLO FROM ESAP\n"


@pytest.mark.slurm
def test_a_user_outside_the_sites_groups_gets_the_policys_reason(carol: str) -> None:
    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "greeting.cwl"),
                    str(DATA / "greeting.yml"), token=carol)
    final = wait_for(job_id, carol)
    assert final["phase"] == "ERROR", final
    summary = final["errorSummary"]
    assert "slurm-local" in summary and "/guests" in summary, summary
    assert_clean_error(summary, carol)
    assert final["run"]["jobs"] == []  # nothing recorded, nothing sent
    assert slurm_jobs_of_run(final["run"]["run"]) == []
    decisions = policy_decisions(final["run"]["run"])
    assert decisions and all(not allowed and site == "slurm-local" for site, allowed, _ in decisions)


def test_a_sealed_token_copied_into_another_request_does_not_open(alice: str, carol: str) -> None:
    """Every user of the gateway can read every job's parameters: carol copies alice's sealed token."""
    from esap_executors.esap.uws_client import UwsGateway

    job_id = submit("--front", "cwl", "--site", "slurm-local", str(DATA / "greeting.cwl"),
                    str(DATA / "greeting.yml"), token=alice)
    as_carol = UwsGateway(GATEWAY, carol)
    parameters = [{"key": p["key"], "value": p["value"]} for p in as_carol.job(job_id)["parameters"]]
    assert "eyJ" not in str(parameters)  # the token itself is nowhere in the job
    forged = [p if p["key"] != "inputs_content" else {**p, "value": "message: carol was here"} for p in parameters]
    stolen = int(as_carol.create("forged", forged)["jobId"])
    as_carol.start(stolen)
    final = wait_for(stolen, carol)
    assert final["phase"] == "ERROR", final
    assert "sealed platform token does not open" in final["errorSummary"]
    assert final["run"] is None  # the worker stopped before preparing a run
    assert wait_for(job_id, alice)["phase"] == "COMPLETED"


@pytest.fixture
def worker_ossr() -> Iterator[None]:
    """The OSSR the worker's catalogue reads (esap.sh: $ESAP_ZENODO_API_URL), served by the Zenodo stand-in."""
    from tests.esap.conftest import GATEWAY_ZENODO_PORT
    from tests.esap.zenodo_standin import ZenodoStandIn

    with ZenodoStandIn(port=GATEWAY_ZENODO_PORT):
        yield


@pytest.mark.slurm
def test_a_catalogue_entry_runs_as_its_cwl_tool_in_its_image(alice: str, worker_ossr: None,
                                                             tmp_path: Path) -> None:
    import shutil

    from tests.slurm.conftest import BUILT_SIF, SIF

    require_service("containers")
    if not SIF.is_file():  # where examples/sites.yaml (the worker's sites) maps busybox on slurm-local
        SIF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(BUILT_SIF, SIF)
    job = tmp_path / "job.yml"
    job.write_text("command: [readlink, -f, /bin/sh]\n")
    job_id = submit("--front", "cwl", "--catalogue-entry", "ossr/6340441", "--image", "busybox",
                    "--site", "slurm-local", str(job), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    assert [job["state"] for job in final["run"]["jobs"]] == ["completed"]
    results(job_id, alice, download=tmp_path / "out")
    # busybox's /bin/sh is busybox itself; this machine's is dash: the entry's command ran in the image
    assert (tmp_path / "out" / "output.txt").read_text().strip() == "/bin/busybox"


def test_an_unknown_catalogue_entry_ends_in_error_naming_it(alice: str, worker_ossr: None) -> None:
    job_id = submit("--front", "cwl", "--catalogue-entry", "ossr/1", token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "ERROR"
    assert final["errorSummary"].startswith("workflow: unknown entry ossr/1")
    assert "\n" not in final["errorSummary"].strip()
