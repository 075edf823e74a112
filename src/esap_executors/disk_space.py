"""Telling a full disk from a bug: SQLite reports a full filesystem as a generic I/O error."""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import EsapError
from .paths import state_dir


class NoSpace(EsapError):
    """A disk is full (the state directory's, or one esap writes to). Exit code 3."""

    exit_code = 3


@contextmanager
def full_disk_reported() -> Iterator[None]:
    """Turn the errors of a full disk into one line for the user; other errors pass unchanged."""
    try:
        yield
    except (OSError, sqlite3.OperationalError) as exc:
        message = out_of_space(exc)
        if message is None:
            raise
        raise NoSpace(message) from exc


LOW_WATER_BYTES = 256 * 1024  # below this, a write of the store or a job's files may fail


def out_of_space(exc: BaseException) -> str | None:
    """One line for the user when `exc` comes from a full state directory, else None."""
    if isinstance(exc, OSError):
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            return None
        if exc.filename:
            return f"no space left on the device of {exc.filename}: free some space and run the same command again"
    elif not isinstance(exc, sqlite3.OperationalError) or os.environ.get("ESAP_STATE_URL"):
        return None  # a store on a server has errors of its own that say what happened
    directory = state_dir()
    try:
        stats = os.statvfs(directory)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    if isinstance(exc, sqlite3.OperationalError) and free >= LOW_WATER_BYTES:
        return None
    return (f"no space left in the state directory {directory} ({free // 1024} KiB free): what was "
            "recorded before is intact; free some space and run the same command again to resume")
