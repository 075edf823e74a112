"""Which process follows a run: its poller records states in the store while that process lives.

`esap status --watch` reads the store alone while the owner is alive, and queries the sites
itself (once per site per refresh) only when nobody else follows the run.
"""

from __future__ import annotations

import os
import socket

from .backends.local_supervisor import process_start_ticks
from .store import Store


def record_owner(store: Store, run_id: str) -> None:
    pid = os.getpid()
    store.update_run_metadata(run_id, {"owner": {"pid": pid, "start": process_start_ticks(pid),
                                                 "host": socket.gethostname()}})


def owner_alive(store: Store, run_id: str) -> bool:
    """The process that opened the run last still runs (on this host: another host's is assumed alive)."""
    owner = store.run_metadata(run_id).get("owner")
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") != socket.gethostname():
        return True
    start = process_start_ticks(owner["pid"])
    return start is not None and start == owner.get("start")
