"""Reading the text files a user hands us (configs, JDL, token files) without hanging or
exhausting memory: only regular files, a size ceiling, UTF-8 without NUL bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import BadInput

CONFIG_MAX_BYTES = 256 << 10  # sites.yaml, auth.yaml, a JDL file: far above any real one
TOKEN_MAX_BYTES = 64 << 10  # a JWT of a few kB; 64 KiB leaves room for large group claims


def read_user_text(path: str | Path, *, max_bytes: int = CONFIG_MAX_BYTES, field: str | None = None,
                   what: str = "") -> str:
    """The file's text; BadInput naming the file for anything but a regular UTF-8 text file."""
    source = str(path)

    def refuse(message: str, line: int | None = None) -> BadInput:
        return BadInput(message, source=source, line=line, field=field)

    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat below refuses it
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise refuse(f"cannot read{' the ' + what if what else ''}: {exc.strerror}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"not a regular file ({_kind(info.st_mode)}); only regular files are read")
        if info.st_size > max_bytes:
            raise refuse(f"too large ({info.st_size} bytes; at most {max_bytes} are read)")
        with os.fdopen(os.dup(descriptor), "rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise refuse(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise refuse(f"too large (over {max_bytes} bytes)")
    nul = data.find(b"\0")
    if nul >= 0:
        raise refuse("contains a NUL byte: not a text file", data.count(b"\n", 0, nul) + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise refuse(f"not UTF-8 text (byte {exc.start + 1} cannot be decoded)", line) from None


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"
