"""JDL jobs at work on the sites: attributes, retries, perusal, parametric batches, submit + output."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.support import EXAMPLE_SITES, VENV_BIN, require_service

from .helpers import EXAMPLES, run, run_json, write_jdl

WORKER = """#!/bin/sh
echo "args: $#"
for a in "$@"; do echo "arg=[$a]"; done
echo "GREETING=$GREETING"
echo "VO_LABEL=${ESAP_VO:-unset}"
read line; echo "stdin=[$line]"
echo "to stderr" >&2
"""


def test_attributes_at_work_on_the_local_site(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "worker.sh").write_text(WORKER)  # mode 644: the front makes it executable on the worker
    (tmp_path / "pre.sh").write_text("echo prologue > pre.txt\n")
    (tmp_path / "input.txt").write_text("first line\n")
    path = write_jdl(tmp_path, """
JobName = "attributes";
Executable = "worker.sh";
Arguments = "plain 'two words' \\"double quoted\\"";
Environment = {"GREETING=hello world"};
InputSandbox = {"worker.sh", "pre.sh", "input.txt"};
StdInput = "input.txt";
StdOutput = "both.txt";
StdError = "both.txt";
Prologue = "pre.sh";
Epilogue = "/bin/sh";
EpilogueArguments = "-c 'echo epilogue > post.txt'";
CpuNumber = 2;
CPUTime = 300;
VirtualOrganisation = "escape";
OutputSandbox = {"both.txt", "pre.txt", "post.txt"};
""")
    [job] = run_json("run", str(path), cwd=tmp_path)
    assert job["state"] == "completed" and job["name"] == "attributes" and job["missing"] == []
    folder = Path(job["output_dir"])
    out = (folder / "both.txt").read_text()
    assert "args: 3\narg=[plain]\narg=[two words]\narg=[double quoted]\n" in out
    assert "GREETING=hello world" in out and "stdin=[first line]" in out and "to stderr" in out
    assert (folder / "pre.txt").read_text() == "prologue\n"
    assert (folder / "post.txt").read_text() == "epilogue\n"


def test_retry_count_resubmits_a_failed_job(tmp_path: Path, state_dir: Path) -> None:
    marker = tmp_path / "tried-once"
    path = write_jdl(tmp_path, f"""
Executable = "/bin/sh";
Arguments = "-c 'if [ -e {marker} ]; then echo second; else touch {marker}; exit 4; fi'";
StdOutput = "out.txt";
OutputSandbox = {{"out.txt"}};
RetryCount = 1;
""")
    [job] = run_json("run", str(path), cwd=tmp_path)
    assert job["state"] == "completed" and job["attempt"] == 1
    assert (Path(job["output_dir"]) / "out.txt").read_text() == "second\n"


def test_retry_rules_by_cause_apply_to_a_jdl_job_whose_retry_count_stays_its_own(
        tmp_path: Path, state_dir: Path) -> None:
    marker = tmp_path / "tried-once"
    path = write_jdl(tmp_path, f"""
Executable = "/bin/sh";
Arguments = "-c 'if [ -e {marker} ]; then echo second; else touch {marker}; exit 4; fi'";
StdOutput = "out.txt";
OutputSandbox = {{"out.txt"}};
""")
    [job] = run_json("run", "--retry", "EXIT_CODE", str(path), cwd=tmp_path)
    assert job["state"] == "completed" and job["attempt"] == 1
    assert job["retry_note"] == "after EXIT_CODE: retried unchanged"
    refused = run("run", "--max-retries", "2", str(path), cwd=tmp_path)
    assert refused.returncode == 2
    assert ("--max-retries does not apply to a JDL job: set RetryCount or ShallowRetryCount in the file"
            in refused.stderr)


def test_perusal_copies_chosen_files_while_the_job_runs(tmp_path: Path, state_dir: Path) -> None:
    release = tmp_path / "release"
    path = write_jdl(tmp_path, f"""
Executable = "/bin/sh";
Arguments = "-c 'echo working > progress.txt; while [ ! -e {release} ]; do sleep 0.2; done; echo done >> progress.txt'";
OutputSandbox = {{"progress.txt"}};
PerusalFileEnable = true;
PerusalTimeInterval = 1;
""")
    folder = tmp_path / "out"
    command = [str(VENV_BIN / "esap"), "--sites", str(EXAMPLE_SITES), "run", str(path), "--output-dir", str(folder)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        copy = folder / "progress.txt"
        deadline = time.time() + 120
        while time.time() < deadline and not (copy.exists() and copy.read_text() == "working\n"):
            time.sleep(0.2)
        assert copy.read_text() == "working\n"  # copied back while the job still runs
        release.touch()
        stdout, stderr = process.communicate(timeout=120)
    finally:
        release.touch()
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert copy.read_text() == "working\ndone\n"


def test_parametric_job_of_20_in_one_batch(tmp_path: Path, state_dir: Path) -> None:
    jobs = run_json("run", str(EXAMPLES / "parametric.jdl"), "--output-dir", str(tmp_path / "results"),
                    cwd=tmp_path)
    assert len(jobs) == 20 and all(j["state"] == "completed" for j in jobs)
    for index, job in enumerate(jobs):
        folder = Path(job["output_dir"])
        assert folder == tmp_path / "results" / job["id"]
        assert (folder / f"out_{index}.txt").read_text() == f"value {index} squared is {index * index}\n"
    run_ids = {j["id"].split(".")[0] for j in jobs}
    assert len(run_ids) == 1
    with sqlite3.connect(state_dir / "state.db") as db:
        batches = db.execute("SELECT COUNT(DISTINCT batch), COUNT(*) FROM local_jobs WHERE run_id = ?",
                             (run_ids.pop(),)).fetchone()
    assert tuple(batches) == (1, 20)  # one submission for the 20 jobs


def test_submit_prints_the_id_then_status_and_output(tmp_path: Path, state_dir: Path) -> None:
    submitted = run("submit", str(EXAMPLES / "simple.jdl"), cwd=tmp_path, sites=EXAMPLES / "pbs-site.yaml")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.split()[0]
    deadline = time.time() + 120
    while time.time() < deadline:
        # `esap output` refreshes the state; before the end it says so and exits 1
        output = run("output", job_id, cwd=tmp_path, sites=EXAMPLES / "pbs-site.yaml")
        if output.returncode != 1:
            break
        assert "its output sandbox comes back when it ends" in output.stderr
        time.sleep(0.3)
    assert output.returncode == 0, output.stderr
    assert "completed" in output.stdout and "missing: image.png" in output.stdout
    folder = tmp_path / "esap-output" / job_id
    assert (folder / "simple.out").read_text().strip() and (folder / "simple.err").exists()


def test_outputs_come_back_through_htcondor_file_transfer(tmp_path: Path, state_dir: Path) -> None:
    require_service("htcondor")
    # in pytest's private tmp folder, which the pool's unprivileged job owner cannot read: the
    # sandbox is copied at submission, as the grid uploads it
    (tmp_path / "in.txt").write_text("hello\n")
    path = write_jdl(tmp_path, """
Executable = "/bin/sh";
Arguments = "-c 'mkdir -p data; cat in.txt > data/result.txt; echo err >&2'";
InputSandbox = {"in.txt"};
StdOutput = "o.txt"; StdError = "e.txt";
OutputSandbox = {"o.txt", "e.txt", "data/result.txt", "missing.png"};
""")
    result = run("run", str(path), "--site", "htcondor-transfer", "--json", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    folder = Path(job["output_dir"])
    assert (folder / "data" / "result.txt").read_text() == "hello\n"
    assert (folder / "e.txt").read_text() == "err\n"
    assert job["missing"] == ["missing.png"]


def test_a_link_out_of_the_job_directory_never_comes_back_through_file_transfer(tmp_path: Path,
                                                                               state_dir: Path) -> None:
    require_service("htcondor")
    path = write_jdl(tmp_path, """
Executable = "/bin/sh";
Arguments = "-c 'ln -s /etc/passwd out.txt; echo fine > ok.txt'";
OutputSandbox = {"out.txt", "ok.txt"};
""")
    result = run("run", str(path), "--site", "htcondor-transfer", "--json", cwd=tmp_path, timeout=600)
    assert result.returncode == 1, result.stderr  # the job completed; its output sandbox did not all come back
    [job] = json.loads(result.stdout)
    folder = Path(job["output_dir"])
    assert job["state"] == "completed" and (folder / "ok.txt").read_text() == "fine\n"
    assert [f.split(" (")[0] for f in job["failed"]] == ["out.txt"]
    assert "points outside the job's directory" in job["failed"][0]
    assert not (folder / "out.txt").exists()


def test_submitted_job_with_perusal_gives_a_snapshot_through_esap_output(tmp_path: Path, state_dir: Path) -> None:
    release = tmp_path / "release"
    path = write_jdl(tmp_path, f"""
Executable = "/bin/sh";
Arguments = "-c 'echo step1 > log.txt; while [ ! -e {release} ]; do sleep 0.2; done; echo step2 >> log.txt'";
OutputSandbox = {{"log.txt"}};
PerusalFileEnable = true;
""")
    try:
        submitted = run("submit", str(path), cwd=tmp_path)
        assert submitted.returncode == 0, submitted.stderr
        job_id = submitted.stdout.split()[0]
        snapshot = tmp_path / "snapshot"
        deadline = time.time() + 60
        while time.time() < deadline and not ((snapshot / "log.txt").exists()
                                              and (snapshot / "log.txt").read_text() == "step1\n"):
            peek = run("output", job_id, "--dir", str(snapshot), cwd=tmp_path)
            assert peek.returncode == 0, peek.stderr
            time.sleep(0.3)
        assert (snapshot / "log.txt").read_text() == "step1\n" and "perusal copy" in peek.stdout
    finally:
        release.touch()
    deadline = time.time() + 60
    while time.time() < deadline:
        final = run("output", job_id, cwd=tmp_path)
        if final.returncode == 0 and "completed" in final.stdout:
            break
        time.sleep(0.3)
    assert (tmp_path / "esap-output" / job_id / "log.txt").read_text() == "step1\nstep2\n"


def test_expiry_time_cancels_a_job_that_never_started(tmp_path: Path, state_dir: Path) -> None:
    # the local site of the catalogue has 2 cores: a 2-core job keeps the next one queued
    blocker = write_jdl(tmp_path, 'Executable = "/bin/sleep"; Arguments = "60"; CpuNumber = 2;', "blocker.jdl")
    submitted = run("submit", str(blocker), cwd=tmp_path)
    assert submitted.returncode == 0, submitted.stderr
    blocker_id = submitted.stdout.split()[0]
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if json.loads(run("status", blocker_id, "--json", cwd=tmp_path).stdout)["state"] == "running":
                break
            time.sleep(0.3)
        late = write_jdl(tmp_path, f'Executable = "/bin/true"; ExpiryTime = {int(time.time()) + 10};', "late.jdl")
        result = run("run", str(late), "--json", cwd=tmp_path)
        assert result.returncode == 1
        assert "ExpiryTime passed: cancelling 1 job(s) that never started" in result.stderr
        assert json.loads(result.stdout)[0]["state"] == "cancelled"
    finally:
        run("cancel", blocker_id, cwd=tmp_path)
