"""Input and output sandboxes: local files, file://, http:// and https:// (verification on)."""

from __future__ import annotations

import hashlib
import posixpath
import shlex
import shutil
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadInput, Unreachable
from ..formats.urls import scheme_of
from ..job import JobSpec, StageIn
from ..staging import URL_FETCHERS, URL_UPLOADERS, copy_path

if TYPE_CHECKING:
    import requests

INPUT_SCHEMES = ("file", "http", "https")
OUTPUT_SCHEMES = ("file", "http", "https")
TIMEOUT = (15, 300)  # connect, read (seconds)
# where a job without a shared filesystem gathers its output sandbox for the file transfer back
COLLECT_DIR = ".esap-output-sandbox"


@dataclass(frozen=True)
class OutputFile:
    name: str  # relative to the job's working directory
    dest: str | None = None  # a URI; None: the output directory


def check_relative_name(name: str) -> str | None:
    """Why an output name is refused, or None."""
    if not name or name.startswith("/"):
        return "is an absolute path; names are relative to the job's working directory"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "contains '..'; names must stay inside the job's working directory"
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
        raise ValueError(f"{entry!r}: protocol {scheme}:// not supported (use https://, http://, file:// "
                         "or a local file)")
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
        return f"{uri!r}: protocol {scheme}:// not supported (use file://, https:// or http://)"
    if scheme == "file" and not urllib.parse.urlparse(uri).path.startswith("/"):
        return f"{uri!r}: file:// URLs name an absolute path (file:///path)"
    return None


# --- transfers ----------------------------------------------------------------------------
def fetch_url(url: str, target: Path) -> None:
    """Download with certificate verification (REQUESTS_CA_BUNDLE / SSL_CERT_FILE honoured)."""
    scheme = scheme_of(url)
    if scheme == "file":
        copy_path(Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)), target)
        return
    import requests  # only when a URL is fetched: it is slow to import

    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            response.raise_for_status()
            partial = target.with_name(target.name + ".part")
            with partial.open("wb") as out:
                for chunk in response.iter_content(chunk_size=1 << 16):
                    out.write(chunk)
            partial.replace(target)
    except requests.exceptions.SSLError as exc:
        raise Unreachable(f"{url}: TLS certificate verification failed ({_short(exc)}); "
                          "set REQUESTS_CA_BUNDLE to the CA bundle that signs this server") from None
    except requests.RequestException as exc:
        raise Unreachable(f"{url}: download failed: {_short(exc)}") from None


def upload_file(source: Path, uri: str) -> None:
    """Copy (file://) or PUT (http, https, WebDAV: missing collections are created)."""
    scheme = scheme_of(uri)
    if scheme == "file":
        target = Path(urllib.parse.unquote(urllib.parse.urlparse(uri).path))
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_path(source, target)
        return
    import requests

    try:
        response = _put(source, uri)
        if response.status_code == 409:  # WebDAV: the parent collection does not exist
            _make_collections(uri)
            response = _put(source, uri)
        response.raise_for_status()
    except requests.exceptions.SSLError as exc:
        raise Unreachable(f"{uri}: TLS certificate verification failed ({_short(exc)})") from None
    except requests.RequestException as exc:
        raise Unreachable(f"{uri}: upload failed: {_short(exc)}") from None


def _put(source: Path, uri: str) -> requests.Response:
    import requests

    with source.open("rb") as data:
        return requests.put(uri, data=data, timeout=TIMEOUT)


def _make_collections(uri: str) -> None:
    parsed = urllib.parse.urlparse(uri)
    import requests

    parts = [p for p in parsed.path.split("/") if p][:-1]
    for depth in range(1, len(parts) + 1):
        path = "/" + "/".join(parts[:depth]) + "/"
        requests.request("MKCOL", parsed._replace(path=path).geturl(), timeout=TIMEOUT)


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."


def _fetch_for_staging(url: str, target: Path) -> None:
    fetch_url(url, target)


def register_transfers() -> None:
    """Let the core's staging move http(s)/file URLs too (sites staging on their own)."""
    for scheme in INPUT_SCHEMES:
        URL_FETCHERS.setdefault(scheme, _fetch_for_staging)
    for scheme in OUTPUT_SCHEMES:
        URL_UPLOADERS.setdefault(scheme, upload_file)


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
        elif scheme in ("http", "https"):
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
    """The job, then a copy of the declared outputs that exist into COLLECT_DIR."""
    body = spec.script if spec.script else shlex.join(spec.argv)
    quoted = " ".join(shlex.quote(n) for n in names)
    return (
        "#!/bin/sh\n(\n" + body.rstrip("\n") + "\n)\nstatus=$?\n"
        f"mkdir -p {COLLECT_DIR}\n"
        f"for f in {quoted}; do\n"
        f'  if [ -e "$f" ]; then mkdir -p "{COLLECT_DIR}/$(dirname -- "$f")" && cp -pR -- "$f" "{COLLECT_DIR}/$f"; fi\n'
        "done\nexit $status\n"
    )


# --- output retrieval ------------------------------------------------------------------------
@dataclass
class Retrieval:
    retrieved: list[str]
    missing: list[str]
    failed: list[str]  # "name (why)"


def retrieve(workdir: Path, outputs: Sequence[OutputFile], output_dir: Path) -> Retrieval:
    """Bring the output sandbox back; a missing file is reported, the others still come back."""
    result = Retrieval([], [], [])
    for out in outputs:
        source = workdir / COLLECT_DIR / out.name
        if not source.exists():
            source = workdir / out.name
        if not source.exists():
            result.missing.append(out.name)
            continue
        try:
            if out.dest is None:
                target = output_dir / out.name
                target.parent.mkdir(parents=True, exist_ok=True)
                copy_path(source, target)
                result.retrieved.append(str(target))
            else:
                upload_file(source, out.dest)
                result.retrieved.append(out.dest)
        except (OSError, Unreachable, BadInput) as exc:
            result.failed.append(f"{out.name} ({exc})")
    return result


def copy_present(workdir: Path, names: Sequence[str], output_dir: Path) -> list[str]:
    """Perusal: copy the files that exist now (a snapshot of a running job's output)."""
    copied = []
    for name in names:
        source = workdir / name
        if source.is_file():
            target = output_dir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".part")
            try:
                shutil.copyfile(source, partial)
                partial.replace(target)  # a reader never sees half a copy
                copied.append(name)
            except OSError:
                continue
    return copied
