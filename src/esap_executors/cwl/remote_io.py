"""CWL inputs and outputs by storage URL (https://, davs://) through the staging layer.

Inputs: before cwltool builds the first job, every File and Directory of the job order whose
location is a storage URL is checked (HEAD, or PROPFIND for a Directory: a missing URL or a
refused token is named before anything is submitted) and fetched on this host through the
site cache, into the run's input directory; its location becomes the local copy, which the
steps then see like any local input (linked on a shared filesystem, transferred with the job
elsewhere). Outputs: `--esap-outputs-to URL` checks the token's write scope before the run and
uploads the final outputs afterwards (each file atomically, checksummed), under the URL by
their paths relative to the output directory.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import BadInput, EsapError
from ..formats.urls import scheme_of

STORAGE_SCHEMES = frozenset({"https", "http", "davs", "dav"})


def is_storage_url(location: object) -> bool:
    return isinstance(location, str) and scheme_of(location) in STORAGE_SCHEMES


def _file_objects(value: Any, name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(input name, File/Directory object) for every object in a job order value, outermost first."""
    if isinstance(value, dict):
        if value.get("class") in ("File", "Directory"):
            yield name, value
            for key in ("secondaryFiles", "listing"):
                for item in value.get(key) or []:
                    yield from _file_objects(item, name)
            return
        for key, item in value.items():
            yield from _file_objects(item, name if name else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _file_objects(item, name)


def remote_inputs(job_order: Any) -> list[tuple[str, dict[str, Any]]]:
    """The job order's File and Directory objects located by storage URL, with their input's name."""
    found = []
    for key, value in (job_order or {}).items():
        if str(key).startswith("cwl:") or key == "id":
            continue
        for name, obj in _file_objects(value, str(key)):
            if is_storage_url(obj.get("location")):
                found.append((name, obj))
    return found


def take_remote_defaults(inputs: list[Any], job_order: Any) -> None:
    """An input left to its `default` whose Files are located by storage URL takes a copy of it in
    the job order (cwltool fills defaults in later, past the point where they are fetched)."""
    if not isinstance(job_order, dict):
        return
    for declared in inputs:
        name = str(declared.get("id", "")).rsplit("#", 1)[-1].rsplit("/", 1)[-1]
        if name and job_order.get(name) is None and "default" in declared:
            if remote_inputs({name: declared["default"]}):
                job_order[name] = copy.deepcopy(declared["default"])


def check_inputs(job_order: Any, source: str | None = None) -> None:
    """Every storage URL of the inputs exists and may be read (before anything is submitted);
    a failure names the job order file and the input."""
    from ..staging.remote import listdir, stat

    for name, obj in remote_inputs(job_order):
        url = str(obj["location"])
        try:
            if obj.get("class") == "Directory":
                listdir(url)
            else:
                stat(url)
        except BadInput as exc:
            raise BadInput(exc.detail, source=source, field=name) from None
        except EsapError as exc:
            raise exc.with_prefix(f"{source + ': ' if source else ''}{name}: ") from None


def fetch_inputs(job_order: Any, into: Path, names: set[str] | None = None) -> int:
    """Fetch the storage inputs (those of the inputs `names`, default all) into `into` (the site
    cache first) and point the job order at the copies; the same URL is fetched once, for every
    object that names it. Returns how many objects were rewritten."""
    from ..staging.cache import default_cache

    cache = default_cache()
    found = remote_inputs(job_order)
    urls = {str(obj["location"]) for name, obj in found if names is None or name in names}
    done: dict[str, Path] = {}
    count = 0
    for _, obj in found:
        url = str(obj["location"])
        if url not in urls:
            continue
        local = done.get(url)
        if local is None:
            local = done[url] = _local_copy(url, obj, into)
            if obj.get("class") == "Directory":
                _fetch_tree(url, local, cache)
            else:
                cache.fetch(url, local)
        obj["location"] = local.as_uri()
        obj.pop("path", None)
        obj.pop("listing", None)  # listed again from the copy, with local locations
        count += 1
    return count


def defer_inputs(job_order: Any, into: Path) -> dict[str, tuple[str, str]]:
    """For a site whose jobs fetch their own inputs: placeholders instead of copies.

    A File becomes an empty file (its `size` the storage's), a Directory the tree of its
    listing with empty files, where fetch_inputs would have put the copy; the job order points
    at them, so cwltool builds command lines and listings as usual. Returns placeholder path ->
    (URL, File|Directory); a job fetches them (execute side) or fetch_deferred does (this host).
    """
    from ..staging.remote import stat

    placeholders: dict[str, tuple[str, str]] = {}
    done: dict[str, Path] = {}
    for _, obj in remote_inputs(job_order):
        url = str(obj["location"])
        local = done.get(url)
        if local is None:
            local = done[url] = _local_copy(url, obj, into)
            kind = "Directory" if obj.get("class") == "Directory" else "File"
            if kind == "Directory":
                _placeholder_tree(url, local)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_bytes(b"")
                size = stat(url).size
                if size is not None:
                    obj["size"] = size
            placeholders[str(local)] = (url, kind)
        obj["location"] = local.as_uri()
        obj.pop("path", None)
        obj.pop("listing", None)
    return placeholders


def _placeholder_tree(url: str, target: Path) -> None:
    from ..staging.remote import listdir

    target.mkdir(parents=True, exist_ok=True)
    for entry in listdir(url.rstrip("/") + "/"):
        name = urllib.parse.unquote(entry.url.rstrip("/").rsplit("/", 1)[-1])
        if entry.is_dir:
            _placeholder_tree(entry.url, target / name)
        else:
            (target / name).write_bytes(b"")


def fetch_deferred(placeholders: dict[str, tuple[str, str]], paths: list[str]) -> None:
    """A job on a site that fetches through this host: its placeholders become the copies (once)."""
    from ..staging.cache import default_cache

    cache = default_cache()
    for path in paths:
        found = placeholders.pop(path, None)
        if found is None:
            continue
        url, kind = found
        if kind == "Directory":
            shutil.rmtree(path, ignore_errors=True)
            _fetch_tree(url, Path(path), cache)
        else:
            cache.fetch(url, Path(path))


def _local_copy(url: str, obj: dict[str, Any], into: Path) -> Path:
    """A stable place per URL (a resumed run finds its inputs where they were), named as the
    object's basename so that the step sees the same name."""
    basename = obj.get("basename") or urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/")
                                                             .rsplit("/", 1)[-1]) or "input"
    if "/" in basename or basename in (".", ".."):
        raise BadInput(f"{url}: basename {basename!r} is not a file name", field="basename")
    return into / hashlib.sha256(url.encode()).hexdigest()[:16] / basename


def _fetch_tree(url: str, target: Path, cache: Any) -> None:
    from ..staging.remote import listdir

    target.mkdir(parents=True, exist_ok=True)
    for entry in listdir(url.rstrip("/") + "/"):
        name = urllib.parse.unquote(entry.url.rstrip("/").rsplit("/", 1)[-1])
        if entry.is_dir:
            _fetch_tree(entry.url, target / name, cache)
        else:
            cache.fetch(entry.url, target / name)


# --- outputs -------------------------------------------------------------------------------------
def check_destination(url: str) -> None:
    """--esap-outputs-to: a storage URL whose token visibly may write there (before the run)."""
    from ..staging.remote import check_writable

    if not is_storage_url(url):
        raise BadInput(f"{url!r} is not an https:// or davs:// URL", field="--esap-outputs-to")
    check_writable(url.rstrip("/") + "/")


def upload_outputs(outputs: Any, outdir: str, url: str) -> list[str]:
    """Upload every File of the final outputs (Directories file by file, their empty folders as
    collections) under `url`, by its path relative to `outdir`; returns the file URLs written."""
    from ..staging.remote import make_collection, upload

    base = url.rstrip("/") + "/"
    root = os.path.realpath(outdir)
    written: list[str] = []
    seen: set[str] = set()
    for path in _output_paths(outputs):
        real = os.path.realpath(path)
        relative = os.path.relpath(real, root) if real.startswith(root + os.sep) else os.path.basename(real)
        files = [real] if os.path.isfile(real) else [
            os.path.join(directory, name) for directory, _, names in os.walk(real) for name in sorted(names)]
        if not os.path.isfile(real):
            for directory, subdirectories, names in os.walk(real):
                if not subdirectories and not names:  # MKCOL makes its parents
                    part = os.path.normpath(os.path.join(relative, os.path.relpath(directory, real)))
                    make_collection(base + "/".join(urllib.parse.quote(p) for p in part.split(os.sep)) + "/")
        for local in files:
            part = relative if local == real else os.path.join(relative, os.path.relpath(local, real))
            if part in seen:
                continue
            seen.add(part)
            target = base + "/".join(urllib.parse.quote(p) for p in part.split(os.sep))
            upload(local, target)
            written.append(target)
    return written


def _output_paths(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if value.get("class") in ("File", "Directory"):
            path = value.get("path") or _path_of(value.get("location"))
            if path:
                yield str(path)
            for item in value.get("secondaryFiles") or []:
                yield from _output_paths(item)
            return
        for item in value.values():
            yield from _output_paths(item)
    elif isinstance(value, list):
        for item in value:
            yield from _output_paths(item)


def _path_of(location: object) -> str | None:
    if isinstance(location, str) and location.startswith("file://"):
        return urllib.parse.unquote(urllib.parse.urlsplit(location).path)
    return None
