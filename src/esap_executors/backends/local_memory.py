"""Memory used by the local site's jobs: the proportional set size (PSS) of each job's session.

A job runs in its own session (the supervisor starts it with a new session), so its processes
are those of that session id. PSS divides shared pages among the processes that share them:
a job that forks workers is not charged once per worker for the pages they share, as a sum of
resident sizes would.
"""

from __future__ import annotations

import os
from collections.abc import Collection

_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def session_memory_mib(sessions: Collection[int]) -> dict[int, int]:
    """MiB used by the processes of each session in `sessions` (0 when it has none left)."""
    used_kib = dict.fromkeys(sessions, 0)
    if not sessions:
        return {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        session = _session_of(entry.name)
        if session in used_kib:
            used_kib[session] += _process_kib(entry.name)
    return {session: kib // 1024 for session, kib in used_kib.items()}


def stat_fields(pid: int | str) -> list[bytes] | None:
    """/proc/PID/stat after the command name (fields[0] is the state); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rindex(b")") + 2 :].split()


def _session_of(pid: str) -> int | None:
    fields = stat_fields(pid)
    return None if fields is None else int(fields[3])


def _process_kib(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as rollup:
            for line in rollup:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    try:  # no smaps_rollup (older kernels): the resident size
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_KIB
    except (OSError, ValueError, IndexError):
        return 0
