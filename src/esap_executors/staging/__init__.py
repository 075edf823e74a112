"""Staging: inputs in, outputs out, for every front and backend; local paths and storage URLs.

The core's part (this module): `check_stage_in`, `stage_in`, `stage_out` move a job's declared
files between local paths and its working directory, and storage URLs through the layer below
(registered for https://, http://, davs://, dav://).

The storage layer, for fronts (CWL, Snakemake, JDL, `esap stage`) — a small API:

    from esap_executors.staging.remote import fetch, fetch_many, upload, stat, listdir, TransferFailed
    from esap_executors.staging.cache import SiteCache, default_cache

    fetch(url, dest, checksum="adler32:0a1b2c3d", cache=SiteCache(dir)) -> Transferred
        download to `dest`: atomic (temporary name, then rename), retried with back-off on 5xx,
        time-outs and dropped connections, adler32 computed while streaming and compared with
        the server's RFC 3230 Digest and the expected checksum; with a cache, one download per
        URL+ETag per cache directory (a site's), however many jobs ask at once.
    upload(path, url, checksum=None) -> Transferred
        PUT under a hidden temporary name in the destination collection, then MOVE; collections
        are created; the stored size/adler32 are checked against what was sent.
    fetch_many([(url, dest), ...], parallel=8, cache=None) -> [Transferred]
    stat(url) -> RemoteInfo(size, etag, checksums)      HEAD with Want-Digest (before submission)
    listdir(url) -> [RemoteInfo]                        WebDAV PROPFIND, depth 1

Errors, one line each: BadInput (404: the URL does not exist, exit 2), AuthError (401/403 or
a token visibly without the scope, exit 3), Unreachable (still failing after the retries,
exit 3), TransferFailed / ChecksumMismatch (exit 1). Tokens come from `auth.storage`
(auth.yaml's `storage:` rules: URL prefix -> audience and scopes). Memory per transfer is
about one chunk (`remote.CHUNK_SIZE`, 4 MiB): files are streamed, never held whole.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..confined import OutsideJobDirectory, copy_out
from ..errors import BadInput
from ..faultpoints import reached
from ..formats.urls import scheme_of
from ..job import JobSpec

STORAGE_SCHEMES = ("https", "http", "davs", "dav")


def _fetch_url(url: str, target: Path) -> None:
    from .cache import default_cache

    default_cache().fetch(url, target)


def _upload_url(source: Path, url: str) -> None:
    from .remote import upload

    upload(source, url)


# scheme -> fetcher(source URL, destination path): storage URLs through the layer; fronts may add more
URL_FETCHERS: dict[str, Callable[[str, Path], None]] = {s: _fetch_url for s in STORAGE_SCHEMES}
# scheme -> uploader(local path, destination URL)
URL_UPLOADERS: dict[str, Callable[[Path, str], None]] = {s: _upload_url for s in STORAGE_SCHEMES}


def check_stage_in(spec: JobSpec) -> None:
    """Before anything is recorded or sent: every local source exists, every scheme is known, every
    storage URL answers a HEAD (missing: BadInput; refused: AuthError) and every storage destination
    is one the token may write (by its scopes)."""
    for entry in spec.stage_in:
        scheme = scheme_of(entry.source)
        if scheme is None:
            if not Path(entry.source).exists():
                raise BadInput(f"input {entry.source!r} does not exist", field="stage_in")
        elif scheme not in URL_FETCHERS:
            raise BadInput(f"{entry.source!r}: protocol {scheme}:// not supported", field="stage_in")
        elif scheme in STORAGE_SCHEMES:
            _check_url(entry.source)
    for out in spec.stage_out:
        if scheme_of(out.dest) in STORAGE_SCHEMES:
            from .remote import check_writable

            check_writable(out.dest)


_CHECKED: dict[str, float] = {}  # storage URL -> when a HEAD found it (a run's many jobs share inputs)
CHECK_VALID = 300.0


def _check_url(url: str) -> None:
    import time

    from .remote import TransferFailed, stat

    if time.monotonic() - _CHECKED.get(url, -CHECK_VALID) < CHECK_VALID:
        return
    try:
        stat(url)
    except BadInput as exc:
        raise BadInput(exc.detail, field="stage_in") from None
    except TransferFailed:  # a server that answers no HEAD: the transfer itself will tell
        pass
    _CHECKED[url] = time.monotonic()


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
    """Copy declared outputs to their destinations; returns the names that were missing, and
    those refused because they lead out of the job's directory (with why)."""
    missing: list[str] = []
    root = Path(workdir)
    for index, out in enumerate(spec.stage_out):
        if index:
            reached("stage-out")  # ESAP_FAULT_KILL_AT: outputs staged in part
        source = root / out.source
        if not os.path.lexists(source):
            if not out.optional:
                missing.append(out.source)
            continue
        scheme = scheme_of(out.dest)
        try:
            if scheme is None:
                target = Path(out.dest)
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_out(root, out.source, target)
            elif scheme in URL_UPLOADERS:
                upload_confined(root, out.source, out.dest, URL_UPLOADERS[scheme])
            else:
                raise BadInput(f"{out.dest!r}: protocol {scheme}:// not supported", field="stage_out")
        except OutsideJobDirectory as exc:
            missing.append(f"{out.source} ({exc.why})")
    return missing


def upload_confined(root: Path, name: str, dest: str, uploader: Callable[[Path, str], None]) -> None:
    """Upload `name` of the job's directory through a private copy made by copy_out (no link out)."""
    with tempfile.TemporaryDirectory(prefix="esap-upload-") as private:
        copy = Path(private) / Path(name).name
        copy_out(root, name, copy)
        uploader(copy, dest)


def copy_path(source: Path, target: Path) -> None:
    if source.resolve() == target.resolve():
        return
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
    else:
        shutil.copy2(source, target)
        os.chmod(target, os.stat(source).st_mode & 0o777)
