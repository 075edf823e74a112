"""One executor process per run: a second process is refused while the first runs it, and the
lock file the first held is gone once it has closed the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esap_executors import run_lock
from esap_executors.run_lock import RunBusy

HOLDER = """
import sys
from esap_executors import run_lock
run_lock.acquire(sys.argv[1])
print("held", flush=True)
sys.stdin.readline()
run_lock.release(sys.argv[1])
print("released", flush=True)
"""


def test_a_run_held_by_another_process_is_refused_and_its_lock_file_goes_when_it_ends(state_dir: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "lock-run"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusy, match=r"^run lock-run is being run by process \d+ on "):
            run_lock.acquire("lock-run")
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert list((state_dir / "locks").iterdir()) == []
    run_lock.acquire("lock-run")  # free now
    run_lock.acquire("lock-run")  # counted within a process
    run_lock.release("lock-run")
    assert [p.name for p in (state_dir / "locks").iterdir()] == ["lock-run.lock"]
    run_lock.release("lock-run")
    assert list((state_dir / "locks").iterdir()) == []


def test_a_lock_taken_on_a_file_removed_meanwhile_is_taken_again_on_the_file_at_the_path(
        state_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The interleaving acquire guards against: this process opens the lock file, and before it
    # locks it the holder releases the run and removes the file.
    opened: list[int] = []
    real_locked = run_lock._locked

    def locked_after_the_holder_left(run_id: str, path: Path) -> int:
        fd = real_locked(run_id, path)
        if not opened:
            path.unlink()  # the holder's release
        opened.append(fd)
        return fd

    monkeypatch.setattr(run_lock, "_locked", locked_after_the_holder_left)
    run_lock.acquire("raced-run")
    try:
        assert len(opened) == 2  # the first lock guarded a removed file: taken again
        held = Path(state_dir / "locks" / "raced-run.lock")
        assert held.exists() and "process" in held.read_text()
        other = subprocess.run([sys.executable, "-c", HOLDER, "raced-run"], input="\n", capture_output=True,
                               text=True, timeout=60, check=False)
        assert other.returncode != 0 and "is being run by process" in other.stderr
    finally:
        run_lock.release("raced-run")
