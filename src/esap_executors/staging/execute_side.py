"""The submit side of `staging: {fetch: execute}`: what a job needs to fetch its own inputs.

`write_fetch_directory` makes a private directory (0700) beside the job holding the fetch
program (staging/job_fetch.py), its manifest, the CA bundles and, per storage rule, a read-only
token in a 0600 file: the token never appears in argv, the environment or the job's
description; the job removes it once its inputs are fetched, and `forget_tokens` removes the
submit side's copy when the job ends. `fetch_command` is the job script's line that runs it.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from shlex import quote

from .job_fetch import FAILED_EXIT as FETCH_FAILED_EXIT

FETCH_DIR = ".esap-fetch"
PROGRAM = "esap-fetch.py"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FetchItem:
    url: str
    target: str  # the path where the job expects the input (a placeholder, or a link to one)
    kind: str  # File | Directory


def write_fetch_directory(directory: Path, items: Sequence[FetchItem], cache: str,
                          cache_bytes: int | None = None) -> Path:
    from ..auth.storage import read_access_for

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700, parents=True)
    groups: dict[tuple[str | None, str | None], dict[str, object]] = {}
    for item in items:
        access = read_access_for(item.url)
        prefix = access.rule.prefix if access.rule else None
        key = (prefix, access.token)
        group = groups.get(key)
        if group is None:
            index = len(groups)
            group = groups[key] = {"prefix": prefix, "token": None, "ca": None, "items": []}
            if access.token:
                group["token"] = f"token-{index}"
                _write_private(directory / f"token-{index}", access.token)
            bundle = (access.rule.ca_bundle if access.rule else None) or os.environ.get("REQUESTS_CA_BUNDLE") \
                or os.environ.get("SSL_CERT_FILE")
            if bundle:
                group["ca"] = f"ca-{index}.pem"
                shutil.copyfile(bundle, directory / f"ca-{index}.pem")
        group_items = group["items"]
        assert isinstance(group_items, list)
        group_items.append({"url": item.url, "target": item.target, "class": item.kind})
    shutil.copyfile(Path(__file__).with_name("job_fetch.py"), directory / PROGRAM)
    manifest = {"cache": cache, "cache_bytes": cache_bytes, "groups": list(groups.values())}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return directory


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def fetch_command(python: str, directory: str | None) -> str:
    """The job script's line; `directory` None: the fetch directory came with the job into its
    scratch directory ($scratch, set by the transfer prologue)."""
    where = f'"$scratch"/{FETCH_DIR}' if directory is None else quote(directory)
    return f"{quote(python)} {where}/{PROGRAM} {where}/{MANIFEST} || exit {FETCH_FAILED_EXIT}"


def forget_tokens(directory: Path) -> None:
    for token in directory.glob("token-*"):
        token.unlink(missing_ok=True)


def fetch_failure(stderr_file: Path) -> str:
    """The fetch's own line from the job's error file (what a user needs), or where to look."""
    from ..auth.redact import redact

    try:
        with stderr_file.open(errors="replace") as handle:
            lines = [line.strip() for line in handle if line.startswith("esap-fetch: ")]
    except OSError:
        lines = []
    return redact(lines[-1]) if lines else f"see {stderr_file}"
