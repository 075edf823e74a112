"""Stage-in and stage-out on a shared filesystem (local paths; fronts may add URL schemes)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import BadInput
from .formats.urls import scheme_of
from .job import JobSpec

# scheme -> fetcher(source URL, destination path); the JDL front registers http(s) and file.
URL_FETCHERS: dict[str, Callable[[str, Path], None]] = {}
# scheme -> uploader(local path, destination URL)
URL_UPLOADERS: dict[str, Callable[[Path, str], None]] = {}


def check_stage_in(spec: JobSpec) -> None:
    """Before anything is recorded or sent: every local source exists, every scheme is known."""
    for entry in spec.stage_in:
        scheme = scheme_of(entry.source)
        if scheme is None:
            if not Path(entry.source).exists():
                raise BadInput(f"input {entry.source!r} does not exist", field="stage_in")
        elif scheme not in URL_FETCHERS:
            raise BadInput(f"{entry.source!r}: protocol {scheme}:// not supported", field="stage_in")


def stage_in(spec: JobSpec, workdir: str | Path) -> None:
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    for entry in spec.stage_in:
        target = root / entry.dest
        target.parent.mkdir(parents=True, exist_ok=True)
        scheme = scheme_of(entry.source)
        if scheme is None:
            copy_path(Path(entry.source), target)
        else:
            URL_FETCHERS[scheme](entry.source, target)


def stage_out(spec: JobSpec, workdir: str | Path) -> list[str]:
    """Copy declared outputs to their destinations; returns the names that were missing."""
    missing: list[str] = []
    root = Path(workdir)
    for out in spec.stage_out:
        source = root / out.source
        if not source.exists():
            if not out.optional:
                missing.append(out.source)
            continue
        scheme = scheme_of(out.dest)
        if scheme is None:
            target = Path(out.dest)
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_path(source, target)
        elif scheme in URL_UPLOADERS:
            URL_UPLOADERS[scheme](source, out.dest)
        else:
            raise BadInput(f"{out.dest!r}: protocol {scheme}:// not supported", field="stage_out")
    return missing


def copy_path(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        return
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    else:
        shutil.copy2(source, target)
        os.chmod(target, os.stat(source).st_mode & 0o777)
