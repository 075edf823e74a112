"""The state directory's filesystem full: a clear error, the store intact, the run resumable."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLE_SITES, IN_CI, esap

from .conftest import Ledger, final_states, run_counts, run_workflow

JOBS = 30


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "state"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        message = f"cannot mount a tmpfs ({done.stderr.strip()}): this test needs root"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    try:
        with filler.open("wb") as out:
            while True:
                out.write(b"\0" * 4096)
                out.flush()
    except OSError:
        pass
    return filler


def jobs_recorded(store: Path) -> int:
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count: int = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
        return count


def test_full_state_filesystem_fails_clearly_and_resumes(small_tmpfs: Path, tmp_path: Path, ledger: Ledger,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.fault = "state filesystem full"
    monkeypatch.setenv("ESAP_STATE_DIR", str(small_tmpfs))
    marks = tmp_path / "marks"
    marks.mkdir()
    key = f"faults-full-{uuid.uuid4().hex[:8]}"
    first = run_workflow(EXAMPLE_SITES, key, "local", 2, marks)  # the run starts, then the disk fills
    assert first.returncode == 0, first.stderr[-2000:]
    store = small_tmpfs / "state.db"
    recorded = jobs_recorded(store)
    filler = fill(small_tmpfs)

    refused = esap("run", "--site", "local", "--", "/bin/sh", "-c", f"echo ran >> {marks}/cli")
    assert refused.returncode == 3, refused.stderr
    assert "internal error" not in refused.stderr and "Traceback" not in refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no space left in the state directory" in lines[0], lines
    assert str(small_tmpfs) in lines[0]
    full = run_workflow(EXAMPLE_SITES, key, "local", JOBS, marks)  # the run's next jobs
    assert full.returncode != 0
    assert not (marks / "cli").exists()

    filler.unlink()
    assert jobs_recorded(store) == recorded  # intact, and nothing half-recorded
    resumed = run_workflow(EXAMPLE_SITES, key, "local", JOBS, marks)
    counts = run_counts(marks, JOBS)
    result = ledger.runs("state filesystem full", counts, JOBS, detail="local, 8 MiB tmpfs")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert final_states(resumed.stdout) == {f"job-{i}": "completed" for i in range(JOBS)}
    assert result == "held", counts
    again = esap("run", "--site", "local", "--", "/bin/sh", "-c", f"echo ran >> {marks}/cli")
    assert again.returncode == 0, again.stderr
    assert (marks / "cli").read_text() == "ran\n"
