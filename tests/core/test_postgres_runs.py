"""`esap run` with ESAP_STATE_URL=postgresql://...: runs end to end on local and slurm-local, and a
run whose executor was killed resumes from the server's records without running its job twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from esap_executors.states import JobState
from tests.support import EXAMPLE_SITES, ROOT, VENV_BIN, esap, require_service


def _wait_until_sent(env: dict[str, str], run_key: str, timeout: float = 60) -> dict[str, object]:
    """The run's job once the scheduler took it (its native id recorded on the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = esap("status", "--json", env=env)
        jobs = [j for j in json.loads(listed.stdout or "[]") if j.get("native_id")] if listed.returncode == 0 else []
        if jobs:
            return dict(jobs[0])
        time.sleep(0.3)
    raise AssertionError(f"the job of run {run_key} was never sent: {listed.stdout} {listed.stderr}")


@pytest.mark.parametrize("site", ["local", pytest.param("slurm-local", marks=pytest.mark.slurm)])
def test_a_killed_run_resumes_from_the_postgresql_store(
    site: str, postgres_state_url: str, state_dir: Path, tmp_path: Path
) -> None:
    if site.startswith("slurm"):
        require_service("slurm")
    env = {"ESAP_STATE_URL": postgres_state_url}
    runs_file = tmp_path / "started"  # one line each time the job's command starts
    command = ["sh", "-c", f"echo started >> {runs_file}; sleep 5; echo done"]
    run_key = f"pg-resume-{uuid.uuid4().hex[:8]}"
    executor = subprocess.Popen(
        [str(VENV_BIN / "esap"), "--sites", str(EXAMPLE_SITES), "run", "--json", "--site", site,
         "--run-id", run_key, "--", *command],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        sent = _wait_until_sent(env, run_key)
    finally:
        executor.send_signal(signal.SIGKILL)
        executor.communicate()

    again = esap("run", "--json", "--site", site, "--run-id", run_key, "--", *command, env=env, timeout=240)
    assert again.returncode == 0, again.stderr
    job = json.loads(again.stdout)
    assert (job["id"], job["native_id"], job["state"]) == (sent["id"], sent["native_id"], "completed")
    assert runs_file.read_text().splitlines() == ["started"]  # reattached, never run twice
    shown = esap("status", "--json", str(job["id"]), env=env)
    assert json.loads(shown.stdout)["site"] == site
    # the run is on the server, not in the user's SQLite store of the same state directory
    assert json.loads(esap("status", "--json").stdout) == []


def test_a_cwl_workflow_runs_with_the_postgresql_store(postgres_state_url: str, state_dir: Path,
                                                       tmp_path: Path) -> None:
    from esap_executors.stores import open_store
    from tests.cwl.helpers import outputs_of, run_id_of, run_tool

    done = run_tool("esap-cwltool", "--site", "local", "--outdir", tmp_path / "out",
                    ROOT / "tests" / "cwl" / "data" / "echo.cwl", "--message", "kept on postgres",
                    cwd=tmp_path, env={"ESAP_STATE_URL": postgres_state_url})
    outputs = outputs_of(done)
    assert Path(outputs["out"]["path"]).read_text() == "kept on postgres\n"
    store = open_store(postgres_state_url)
    run_id = run_id_of(done.stderr)
    assert [(job.state, job.site) for job in store.jobs_of_run(run_id)] == [(JobState.COMPLETED, "local")]
    assert store.run_metadata(run_id)  # the run's files, for its RO-Crate, on the server too
