"""Copying a job's outputs out of its working directory without leaving it.

A job controls its directory: it can make `out.txt` a symbolic link to /etc/passwd, or a
directory component a link to /root. Every output is therefore resolved inside the job's
directory (a link may point elsewhere in it, never out of it), then opened one component at
a time with O_NOFOLLOW from a descriptor of that directory, so a link swapped in between the
check and the copy is refused too. Only regular files and directories are copied (a FIFO or a
device would block or never end). When esap runs as root for jobs that belong to another user,
the files are opened with that user's rights: a job cannot have esap read what it could not.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .formats.printable import shown

_CHUNK = 1 << 20


class OutsideJobDirectory(Exception):
    """An output that is not a regular file or directory inside the job's directory."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{shown(name)} {why}")
        self.name = name
        self.why = why


def resolve_inside(root: str | Path, name: str) -> str:
    """The path of `name` inside `root` relative to root's real path, links resolved; refused
    when it (or a link on the way) leads out of `root`, or names `root` itself."""
    if not name or name.startswith("/") or "\0" in name:
        raise OutsideJobDirectory(name, "is not a name relative to the job's directory")
    real_root = os.path.realpath(root)
    target = os.path.realpath(os.path.join(real_root, name))
    if target == real_root:
        raise OutsideJobDirectory(name, "names the job's directory itself")
    if not target.startswith(real_root + os.sep):
        why = "is a symbolic link that points outside the job's directory" if _has_link(real_root, name) \
            else "is outside the job's directory"
        raise OutsideJobDirectory(name, why)
    return os.path.relpath(target, real_root)


def _has_link(root: str, name: str) -> bool:
    path = root
    for part in Path(name).parts:
        path = os.path.join(path, part)
        if os.path.islink(path):
            return True
    return False


@dataclass(frozen=True)
class Reader:
    """The user whose rights outputs are read with (the jobs' owner when esap runs as root)."""

    uid: int
    gids: frozenset[int]

    def may(self, info: os.stat_result, need: int) -> bool:
        """Whether the mode bits let this user `need` (4 read, 1 search) the file."""
        if info.st_uid == self.uid:
            bits = info.st_mode >> 6
        elif info.st_gid in self.gids:
            bits = info.st_mode >> 3
        else:
            bits = info.st_mode
        return bits & need == need


def reader_of(directory: str | Path) -> Reader | None:
    """Whose rights outputs are read with: the job directory's owner when esap runs as root and
    the directory belongs to someone else (the site's jobs run as that user), else None (ours).
    Checked on the mode bits of every file and directory opened, as the kernel would for them;
    a process-wide seteuid would also change the rights of esap's other threads."""
    if os.geteuid() != 0:
        return None
    try:
        info = os.stat(directory)
    except OSError:
        return None
    if info.st_uid == 0:
        return None
    import pwd

    try:
        name = pwd.getpwuid(info.st_uid).pw_name
        gids = frozenset(os.getgrouplist(name, info.st_gid))
    except KeyError:
        gids = frozenset({info.st_gid})
    return Reader(info.st_uid, gids)


def _open_below(root_fd: int, relative: str, name: str, reader: Reader | None) -> int:
    """Open root/relative following no link at any component (and, for a reader, only where
    that user may search and read)."""
    parts = [p for p in relative.split(os.sep) if p not in ("", ".")]
    current = os.dup(root_fd)
    try:
        for index, part in enumerate(parts):
            if reader is not None and not reader.may(os.fstat(current), 1):
                raise OutsideJobDirectory(name, "is in a directory the job's owner cannot enter")
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
            if index < len(parts) - 1:
                flags |= os.O_DIRECTORY
            try:
                following = os.open(part, flags, dir_fd=current)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise OutsideJobDirectory(name, "changed into a symbolic link while it was copied") from None
                raise
            os.close(current)
            current = following
        if reader is not None and not reader.may(os.fstat(current), 4):
            raise OutsideJobDirectory(name, "is not readable by the job's owner")
        return current
    except BaseException:
        os.close(current)
        raise


def _open_entry(real_root: str, relative: str, name: str, reader: Reader | None) -> int:
    root_fd = os.open(real_root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return _open_below(root_fd, relative, name, reader)
    finally:
        os.close(root_fd)


def copy_out(root: str | Path, name: str, target: str | Path) -> None:
    """Copy `name` of the job's directory `root` to `target` (a file or a directory tree).

    OutsideJobDirectory when it leads out of the job's directory, is not a file or directory,
    or (esap as root) its owner could not read it; OSError when it cannot be read.
    """
    reader = reader_of(root)
    real_root = os.path.realpath(root)
    relative = resolve_inside(real_root, name)
    source_fd = _open_entry(real_root, relative, name, reader)
    try:
        if not stat.S_ISDIR(os.fstat(source_fd).st_mode):
            _copy_from(source_fd, name, Path(target), real_root, relative, reader, set())
            return
        # a directory is copied whole or not at all: into a private folder first
        destination = Path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent))
        try:
            _copy_from(source_fd, name, partial, real_root, relative, reader, set())
            if destination.is_dir() and not destination.is_symlink():
                shutil.copytree(partial, destination, dirs_exist_ok=True)
            else:
                os.replace(partial, destination)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
    finally:
        os.close(source_fd)


def _copy_from(source_fd: int, name: str, target: Path, real_root: str, relative: str,
               reader: Reader | None, seen: set[tuple[int, int]]) -> None:
    info = os.fstat(source_fd)
    if stat.S_ISREG(info.st_mode):
        _copy_file(source_fd, target, info.st_mode)
    elif stat.S_ISDIR(info.st_mode):
        if (info.st_dev, info.st_ino) in seen:  # a link to a directory that holds it: copy it once
            return
        seen.add((info.st_dev, info.st_ino))
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(os.listdir(source_fd)):
            child_name = f"{name.rstrip('/')}/{entry}"
            child_relative = resolve_inside(real_root, os.path.join(relative, entry))
            child_fd = _open_entry(real_root, child_relative, child_name, reader)
            try:
                _copy_from(child_fd, child_name, target / entry, real_root, child_relative, reader, seen)
            finally:
                os.close(child_fd)
    else:
        raise OutsideJobDirectory(name, "is not a regular file or directory (a FIFO, socket or device)")


def _copy_file(source_fd: int, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW,
                         stat.S_IMODE(mode) | 0o600)
    try:
        os.lseek(source_fd, 0, os.SEEK_SET)
        while True:
            chunk = os.read(source_fd, _CHUNK)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(descriptor, view):]
    finally:
        os.close(descriptor)
    os.chmod(partial, stat.S_IMODE(mode))
    os.replace(partial, target)


def links_leaving(root: str | Path, allowed: Sequence[str] = ()) -> list[str]:
    """Symbolic links under `root` (none followed) whose target lies outside it and outside every
    `allowed` path (e.g. a CWL job's staged inputs): the names, relative to root."""
    real_root = os.path.realpath(root)
    keep = [os.path.realpath(path) for path in allowed if path]
    leaving = []
    for folder, directories, names in os.walk(real_root):
        for name in directories + names:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            target = os.path.realpath(path)
            if any(target == place or target.startswith(place.rstrip(os.sep) + os.sep)
                   for place in (real_root, *keep)):
                continue
            leaving.append(os.path.relpath(path, real_root))
    return sorted(leaving)
