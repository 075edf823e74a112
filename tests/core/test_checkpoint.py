"""Checkpoint and continue on the local site: the signal comes before the walltime (the wrapper's
timer), the job exits with the agreed code, and a continuation finishes it in the same directory."""

from __future__ import annotations

import json
from pathlib import Path

from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from esap_executors.submitter import run_id_for
from tests.support import esap

# Stops at its checkpoint the first time; the second segment finds the state and finishes.
SEGMENTED = """
if [ -e checkpointed ]; then echo resumed >> log; echo done; exit 0; fi
trap 'echo checkpoint >> log; touch checkpointed; exit 85' USR1
echo started >> log
while :; do sleep 1; done
"""


def test_a_job_checkpoints_before_its_walltime_and_completes_in_two_segments(state_dir: Path, tmp_path: Path) -> None:
    result = esap("run", "--walltime", "20s", "--checkpoint", "USR1@15s", "--run-id", "segmented",
                  "--", "sh", "-c", SEGMENTED, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "done\n"
    assert (tmp_path / "log").read_text() == "started\ncheckpoint\nresumed\n"
    first, second = sorted(open_store().jobs_of_run(run_id_for("segmented")), key=lambda r: r.attempt)
    assert (first.exit_code, second.state, second.key) == (85, JobState.COMPLETED, first.key)
    assert first.workdir == second.workdir == str(tmp_path)
    assert second.retry_note == f"continues after its checkpoint (exit 85): segment 2 in {tmp_path}"
    _shown_as_one_step(first.run_id, [first.job_id, second.job_id], tmp_path)


def _shown_as_one_step(run_id: str, segments: list[str], tmp_path: Path) -> None:
    """`esap status`, `esap report` and the RO-Crate show the segments as one step."""
    status = esap("status", run_id, "--json")
    assert status.returncode == 0, status.stderr
    (step,) = json.loads(status.stdout)
    assert (step["id"], step["state"], [s["id"] for s in step["segments"]]) == (segments[-1], "completed", segments)
    table = esap("status", run_id).stdout.splitlines()
    assert len(table) == 4 and table[1].startswith(f"{segments[-1]} ") and " completed " in table[1]
    assert table[2].startswith(f"  segment 1/2: {segments[0]} local:") and table[2].endswith(" checkpointed (exit 85)")
    assert table[3].startswith(f"  segment 2/2: {segments[1]} local:") and table[3].endswith(" completed (exit 0)")
    crate_dir = tmp_path / "crate"
    report = esap("report", run_id, "--json", "--ro-crate", str(crate_dir))
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["run"]["jobs"] == 1 and data["run"]["states"] == {"completed": 1}
    (job,) = data["jobs"]
    assert [(s["job_id"], s["state"], s["exit_code"]) for s in job["segments"]] == [
        (segments[0], "checkpointed", 85), (segments[1], "completed", 0)]
    assert job["queued"] == job["segments"][0]["queued"] and job["ended"] == job["segments"][1]["ended"]
    graph = {e["@id"]: e for e in json.loads((crate_dir / "ro-crate-metadata.json").read_text())["@graph"]}
    actions = [e for e in graph.values() if e["@id"].startswith("#job-") and e["@type"] == "CreateAction"]
    assert [a["@id"] for a in actions] == [f"#job-{segments[-1]}"]
    facts = {graph[p["@id"]]["name"]: graph[p["@id"]]["value"] for p in actions[0]["additionalProperty"]}
    assert facts["segments"] == 2
    assert facts["segment 1"].startswith(f"{segments[0]}: scheduler job ") and facts["segment 1"].endswith(
        "checkpointed (exit 85)")


def test_a_checkpoint_needs_a_walltime_and_a_signal_name(state_dir: Path, tmp_path: Path) -> None:
    for args, message in ((("--checkpoint", "USR1@1m"), "--checkpoint: a checkpoint signal comes before the walltime"),
                          (("--walltime", "5m", "--checkpoint", "NOPE@1m"), "'NOPE' is not a signal name"),
                          (("--walltime", "5m", "--checkpoint", "USR1"), "expected SIGNAL@BEFORE")):
        result = esap("run", *args, "--", "true", cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert open_store().latest_jobs() == []
