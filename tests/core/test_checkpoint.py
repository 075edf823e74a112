"""Checkpoint and continue on the local site: the signal comes before the walltime (the wrapper's
timer), the job exits with the agreed code, and a continuation finishes it in the same directory."""

from __future__ import annotations

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


def test_a_checkpoint_needs_a_walltime_and_a_signal_name(state_dir: Path, tmp_path: Path) -> None:
    for args, message in ((("--checkpoint", "USR1@1m"), "--checkpoint: a checkpoint signal comes before the walltime"),
                          (("--walltime", "5m", "--checkpoint", "NOPE@1m"), "'NOPE' is not a signal name"),
                          (("--walltime", "5m", "--checkpoint", "USR1"), "expected SIGNAL@BEFORE")):
        result = esap("run", *args, "--", "true", cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert open_store().latest_jobs() == []
