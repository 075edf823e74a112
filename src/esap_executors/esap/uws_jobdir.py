"""A UWS job's directory: private to the worker and, through one group, to the sites' job users.

The base directory is `$ESAP_UWS_WORKDIR` (default: `uws-jobs` in the worker's state directory).
Another local user must not be able to swap a job's workflow or outputs, nor prepare a directory
the worker would then use: the base and every job directory must belong to the worker (a
directory someone else made is refused, nothing runs), nobody but the worker and the group
`$ESAP_UWS_GROUP` enters them, and only that group's members (the accounts the sites run jobs as:
an HTCondor owner, a centre account) write into a job's `out` and `work`. Without a group the
directories are the worker's alone (its jobs run as the worker's own user).
"""

from __future__ import annotations

import fcntl
import grp
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import EsapError
from ..paths import state_dir
from .uws_parameters import plain_name

WORKDIR_ENV = "ESAP_UWS_WORKDIR"
GROUP_ENV = "ESAP_UWS_GROUP"
FRONT_UMASK = 0o007  # what the front and its jobs create stays within the worker and the group


class UnsafeDirectory(EsapError):
    """A directory the worker would use belongs to someone else: nothing runs."""

    exit_code = 3


@dataclass(frozen=True)
class JobDirectory:
    root: Path

    @property
    def inputs(self) -> Path:
        return self.root / "in"

    @property
    def outputs(self) -> Path:
        return self.root / "out"

    @property
    def work(self) -> Path:
        return self.root / "work"

    @property
    def stdout(self) -> Path:
        return self.root / "front.out"

    @property
    def stderr(self) -> Path:
        return self.root / "front.err"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def front_exit(self) -> Path:
        """The run id and the front's exit code, once the front ended (an outcome not yet reported)."""
        return self.root / "front-exit.json"

    @property
    def reported(self) -> Path:
        """Present once a delivery reported the run's outcome to the gateway."""
        return self.root / "reported"

    def try_lock(self) -> IO[bytes] | None:
        """The job's lock, held while one delivery runs it (released when its process dies), or None."""
        handle = open(self.root / ".lock", "ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle


def base_directory() -> Path:
    return Path(os.environ.get(WORKDIR_ENV) or state_dir() / "uws-jobs")


def job_group() -> int | None:
    """The group of the sites' job users ($ESAP_UWS_GROUP, a name or a number), or None."""
    name = os.environ.get(GROUP_ENV, "").strip()
    if not name:
        return None
    if name.isdigit():
        return int(name)
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        raise UnsafeDirectory(f"{GROUP_ENV}: no group {name!r} on this machine") from None


def job_directory(name: str) -> JobDirectory:
    """The job's directory under the base, made (or found) private to the worker and its group."""
    group = job_group()
    base = base_directory()
    if not base.exists():
        base.mkdir(parents=True, mode=0o700)
    _own(base, group, 0o750 if group is not None else 0o700, "ESAP_UWS_WORKDIR")
    directory = JobDirectory(base / plain_name(name, "job directory"))
    shared = 0o2770 if group is not None else 0o700  # the jobs write outputs and work files here
    readable = 0o2750 if group is not None else 0o700
    for path, mode in ((directory.root, readable), (directory.inputs, readable),
                       (directory.outputs, shared), (directory.work, shared)):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            pass  # a second delivery of the job: it must still be the worker's
        _own(path, group, mode, "job directory")
    return directory


def _own(path: Path, group: int | None, mode: int, what: str) -> None:
    """Refuse a directory the worker did not make (or a link in its place); set its group and mode."""
    info = path.lstat()
    # a link is the worker's own configuration at most (a base directory the worker's user linked)
    if stat.S_ISLNK(info.st_mode) and (what == "job directory" or info.st_uid != os.geteuid()):
        raise UnsafeDirectory(f"{what} {path} is a symbolic link: nothing was run")
    info = path.stat()
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{what} {path} is not a directory: nothing was run")
    if info.st_uid != os.geteuid():
        raise UnsafeDirectory(f"{what} {path} belongs to uid {info.st_uid}, not to the worker "
                              f"(uid {os.geteuid()}): nothing was run")
    if group is not None and info.st_gid != group:
        os.chown(path, -1, group)
    path.chmod(mode)
