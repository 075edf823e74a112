"""One executor process per run at a time.

Two processes that opened the same run would each submit the jobs the other has not recorded
yet (each reads the run's records once, when it opens it): every job would run twice. The
first process to open a run holds an exclusive lock on a file of the state directory until it
closes the run (or dies: the kernel releases the lock); another process opening the run is
refused with a clear error naming the holder. Within one process the lock is counted, so a
front may open the same run again.

The lock lives in the local state directory: processes of one machine are serialized,
including those that record their runs on a PostgreSQL server.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading

from .errors import EsapError
from .paths import state_dir


class RunBusy(EsapError):
    """Another process is running this run. Exit code 3."""

    exit_code = 3


_held: dict[str, tuple[int, int]] = {}  # run id -> (descriptor, how many opens of this process)
_guard = threading.Lock()


def acquire(run_id: str) -> None:
    with _guard:
        if run_id in _held:
            fd, count = _held[run_id]
            _held[run_id] = (fd, count + 1)
            return
        directory = state_dir() / "locks"
        directory.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(directory / f"{run_id}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        _held[run_id] = (fd, 1)


def release(run_id: str) -> None:
    with _guard:
        if run_id not in _held:
            return
        fd, count = _held[run_id]
        if count > 1:
            _held[run_id] = (fd, count - 1)
            return
        del _held[run_id]
        os.close(fd)  # closing the only descriptor releases the lock
