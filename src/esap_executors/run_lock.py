"""One executor process per run at a time.

Two processes that opened the same run would each submit the jobs the other has not recorded
yet (each reads the run's records once, when it opens it): every job would run twice. The
first process to open a run holds an exclusive lock on a file of the state directory until it
closes the run (or dies: the kernel releases the lock); another process opening the run is
refused with a clear error naming the holder. Within one process the lock is counted, so a
front may open the same run again.

The lock lives in the local state directory: processes of one machine are serialized,
including those that record their runs on a PostgreSQL server. The file is removed when the run
is closed (while still locked; see `acquire` for why a concurrent opener stays safe), so the
directory holds only the locks of runs being run.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from pathlib import Path

from .errors import EsapError
from .paths import state_dir


class RunBusy(EsapError):
    """Another process is running this run. Exit code 3."""

    exit_code = 3


_held: dict[str, tuple[int, int, Path]] = {}  # run id -> (descriptor, opens of this process, lock file)
_guard = threading.Lock()


def _path(run_id: str) -> Path:
    return state_dir() / "locks" / f"{run_id}.lock"


def acquire(run_id: str) -> None:
    with _guard:
        if run_id in _held:
            fd, count, path = _held[run_id]
            _held[run_id] = (fd, count + 1, path)
            return
        path = _path(run_id)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        while True:
            fd = _locked(run_id, path)
            # The holder removes the file when it releases the lock: a lock taken on a file that
            # is no longer at the path (opened just before its removal) guards nothing; retry.
            try:
                current = os.stat(path)
            except FileNotFoundError:
                os.close(fd)
                continue
            mine = os.fstat(fd)
            if (current.st_dev, current.st_ino) != (mine.st_dev, mine.st_ino):
                os.close(fd)
                continue
            break
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        _held[run_id] = (fd, 1, path)


def _locked(run_id: str, path: Path) -> int:
    """A descriptor of the lock file, locked exclusively; RunBusy when another process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunBusy(f"run {run_id} is being run by {holder}: its jobs are followed there "
                      f"(esap status {run_id}); run this again once it has ended") from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def release(run_id: str) -> None:
    with _guard:
        if run_id not in _held:
            return
        fd, count, path = _held[run_id]
        if count > 1:
            _held[run_id] = (fd, count - 1, path)
            return
        del _held[run_id]
        # Removed while still locked: a process that opened the file meanwhile sees, once it has
        # the lock, that the path is gone or names a newer file, and retries (acquire).
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.close(fd)  # closing the only descriptor releases the lock
