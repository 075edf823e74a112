"""Input and output sandboxes: local files, file://, and storage URLs (https://, http://, davs://, dav://).

Storage URLs go through the staging layer (staging/remote.py: tokens per URL prefix, checksums,
retries, atomic writes; inputs through the site's download cache).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shlex
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..confined import OutsideJobDirectory, copy_out
from ..errors import BadInput, EsapError
from ..formats.urls import scheme_of
from ..job import JobSpec, StageIn
from ..staging import URL_FETCHERS, URL_UPLOADERS, copy_path, upload_confined
from ..textfiles import read_user_text

INPUT_SCHEMES = ("file", "http", "https", "davs", "dav")
OUTPUT_SCHEMES = ("file", "http", "https", "davs", "dav")
# where a job without a shared filesystem gathers its output sandbox for the file transfer back
COLLECT_DIR = ".esap-output-sandbox"
REFUSED_LIST = ".esap-refused"  # in COLLECT_DIR: outputs not collected, one name a line


@dataclass(frozen=True)
class OutputFile:
    name: str  # relative to the job's working directory
    dest: str | None = None  # a URI; None: the output directory


def check_relative_name(name: str) -> str | None:
    """Why an output name is refused, or None."""
    if not name.strip():
        return "is empty; name a file of the job's working directory"
    if name.startswith("/"):
        return "is an absolute path; names are relative to the job's working directory"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains control characters"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "contains '..'; names must stay inside the job's working directory"
    if all(part in ("", ".") for part in parts):
        return "names the job's working directory itself; name the files to bring back"
    return None


def input_entry(entry: str, base_uri: str | None, directory: Path) -> tuple[str, str]:
    """(source, name in the working directory) of one InputSandbox entry; raises ValueError."""
    if scheme_of(entry) is None and base_uri and not entry.startswith("/"):
        entry = base_uri.rstrip("/") + "/" + entry
    scheme = scheme_of(entry)
    if scheme is None:
        path = (directory / entry).resolve()
        if not path.exists():
            raise ValueError(f"{entry!r} does not exist (looked for {path})")
        return str(path), path.name
    if scheme not in INPUT_SCHEMES:
        raise ValueError(f"{entry!r}: protocol {scheme}:// not supported (use https://, davs://, http://, "
                         "dav://, file:// or a local file)")
    parsed = urllib.parse.urlparse(entry)
    name = posixpath.basename(urllib.parse.unquote(parsed.path).rstrip("/"))
    if not name or name in (".", ".."):
        raise ValueError(f"{entry!r} names no file")
    if scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        if parsed.netloc not in ("", "localhost") or not path.is_absolute():
            raise ValueError(f"{entry!r}: file:// URLs name an absolute path on this machine (file:///path)")
        if not path.exists():
            raise ValueError(f"{entry!r} does not exist")
        return str(path), path.name
    return entry, name


def check_output_uri(uri: str) -> str | None:
    scheme = scheme_of(uri)
    if scheme is None:
        return f"{uri!r} is not a URI (file:///path, https://host/path)"
    if scheme not in OUTPUT_SCHEMES:
        return f"{uri!r}: protocol {scheme}:// not supported (use file://, https://, davs://, http:// or dav://)"
    if scheme == "file" and not urllib.parse.urlparse(uri).path.startswith("/"):
        return f"{uri!r}: file:// URLs name an absolute path (file:///path)"
    return None


# --- transfers ----------------------------------------------------------------------------
def fetch_url(url: str, target: Path) -> None:
    """A file:// copy, or a storage URL through the site's download cache (one download per URL+ETag)."""
    if scheme_of(url) == "file":
        copy_path(Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)), target)
        return
    from ..staging.cache import default_cache

    default_cache().fetch(url, target)


def upload_file(source: Path, uri: str) -> None:
    """Copy (file://) or upload through the staging layer (PUT under a temporary name, then MOVE)."""
    if scheme_of(uri) == "file":
        target = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_path(source, target)
        return
    from ..staging.remote import upload

    upload(source, uri)


def check_destinations(outputs: Sequence[OutputFile]) -> None:
    """Before submission: a storage destination whose token visibly lacks the write scope is refused."""
    from ..staging.remote import check_writable

    for out in outputs:
        if out.dest and scheme_of(out.dest) not in (None, "file"):
            check_writable(out.dest)


def register_transfers() -> None:
    """Let the core's staging move file:// URLs too (storage URLs it moves through the layer)."""
    URL_FETCHERS.setdefault("file", fetch_url)
    URL_UPLOADERS.setdefault("file", upload_file)


def prefetch(stage_in: Sequence[StageIn], cache: Path, *, snapshot_local: bool = False) -> tuple[StageIn, ...]:
    """Download URL inputs once (before anything is submitted) and stage the local copies.

    With `snapshot_local` (sites without a shared filesystem) local files are copied too, as the
    grid uploads the sandbox at submission: the transfer then reads a copy the job's owner can
    read, not the user's own (possibly private) folder.
    """
    result = []
    for entry in stage_in:
        scheme = scheme_of(entry.source)
        if snapshot_local and scheme in (None, "file"):
            source = Path(urllib.parse.unquote(urllib.parse.urlparse(entry.source).path)) if scheme else \
                Path(entry.source)
            target = cache / f"{hashlib.sha256(str(source).encode()).hexdigest()[:16]}.input"
            if not target.exists():
                cache.mkdir(parents=True, exist_ok=True)
                copy_path(source, target)
            result.append(StageIn(source=str(target), dest=entry.dest))
        elif scheme in ("http", "https", "davs", "dav"):
            # named unlike its destination: a site's file transfer then copies it next to the job
            # (readable by the job's owner) instead of reading it from this private cache
            target = cache / f"{hashlib.sha256(entry.source.encode()).hexdigest()[:16]}.download"
            if not target.exists():
                cache.mkdir(parents=True, exist_ok=True)
                fetch_url(entry.source, target)
            result.append(StageIn(source=str(target), dest=entry.dest))
        else:
            result.append(entry)
    return tuple(result)


def collecting_script(spec: JobSpec, names: Sequence[str]) -> str:
    """The job, then a copy of the declared outputs that exist into COLLECT_DIR.

    An output that is, or holds, a symbolic link leading out of the job's directory is not
    copied (the file transfer back would carry what it points to): its name goes to
    COLLECT_DIR/REFUSED_LIST, and retrieval reports it.
    """
    body = spec.script if spec.script else shlex.join(spec.argv)
    quoted = " ".join(shlex.quote(n) for n in names)
    return (
        "#!/bin/sh\n(\n" + body.rstrip("\n") + "\n)\nstatus=$?\n"
        f"mkdir -p {COLLECT_DIR}\n"
        'top=$(pwd -P)\n'
        'inside() { p=$(readlink -f -- "$1") || return 1; case "$p" in "$top"/*) return 0;; esac; return 1; }\n'
        f"for f in {quoted}; do\n"
        '  [ -e "$f" ] || [ -L "$f" ] || continue\n'
        '  if ! inside "$f" || { [ -d "$f" ] && find "$f" -type l | while IFS= read -r l; do inside "$l" || echo out; '
        'done | grep -q out; }; then\n'
        f'    printf "%s\\n" "$f" >> {COLLECT_DIR}/{REFUSED_LIST}; continue\n'
        "  fi\n"
        f'  mkdir -p "{COLLECT_DIR}/$(dirname -- "$f")" && cp -pR -- "$f" "{COLLECT_DIR}/$f"\n'
        "done\nexit $status\n"
    )


def refused_on_the_worker(workdir: Path) -> set[str]:
    """The outputs the collecting script refused (links out of the job's directory)."""
    try:
        text = read_user_text(workdir / COLLECT_DIR / REFUSED_LIST)
    except BadInput:
        return set()
    return {line for line in text.splitlines() if line}


# --- output retrieval ------------------------------------------------------------------------
@dataclass
class Retrieval:
    retrieved: list[str]
    missing: list[str]
    failed: list[str]  # "name (why)"


def retrieve(workdir: Path, outputs: Sequence[OutputFile], output_dir: Path) -> Retrieval:
    """Bring the output sandbox back; a missing file is reported, the others still come back."""
    result = Retrieval([], [], [])
    refused = refused_on_the_worker(workdir)
    for out in outputs:
        if out.name in refused:
            result.failed.append(f"{out.name} (is or holds a symbolic link that points outside the job's directory; "
                                 "not copied)")
            continue
        # what a site without a shared filesystem brought back, else the job's own file; both are
        # read inside the job's directory only (confined.copy_out: no link out of it is followed)
        name = f"{COLLECT_DIR}/{out.name}"
        if not os.path.lexists(workdir / name):
            name = out.name
        if not os.path.lexists(workdir / name):
            result.missing.append(out.name)
            continue
        try:
            if out.dest is None:
                target = output_dir / out.name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_out(workdir, name, target)
                result.retrieved.append(str(target))
            else:
                upload_confined(workdir, name, out.dest, upload_file)
                result.retrieved.append(out.dest)
        except OutsideJobDirectory as exc:
            inner = "" if exc.name in (out.name, name) else f"{exc.name.removeprefix(COLLECT_DIR + '/')} "
            result.failed.append(f"{out.name} ({inner}{exc.why}; not copied)")
        except (OSError, EsapError) as exc:
            result.failed.append(f"{out.name} ({exc})")
    return result


def copy_present(workdir: Path, names: Sequence[str], output_dir: Path) -> list[str]:
    """Perusal: copy the files that exist now (a snapshot of a running job's output)."""
    copied = []
    for name in names:
        source = workdir / name
        if source.is_file():
            target = output_dir / name
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_out(workdir, name, target)  # through a .part file: a reader never sees half a copy
                copied.append(name)
            except (OSError, OutsideJobDirectory):
                continue
    return copied
