"""Stable keys: the same workflow, inputs and directories give the same run and job keys on a rerun,
so a restarted executor reattaches to its jobs instead of submitting them again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from ..store import Store

# File and Directory fields that identify the data; path, dirname, size, ... are derived.
_IDENTIFYING = ("class", "location", "basename", "contents", "listing", "secondaryFiles", "format", "writable")


def canonical(value: Any) -> Any:
    """The JSON-able part of a CWL value that identifies it (random `_:` ids dropped)."""
    if isinstance(value, Mapping):
        if value.get("class") in ("File", "Directory"):
            kept = {}
            for name in _IDENTIFYING:
                if name not in value:
                    continue
                item = value[name]
                if name == "location" and isinstance(item, str) and item.startswith("_:"):
                    continue
                kept[name] = canonical(item)
            return kept
        return {str(k): canonical(v) for k, v in value.items() if not str(k).startswith("_:")}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def digest(*parts: Any) -> str:
    text = json.dumps([canonical(p) for p in parts], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def document_digest(uri: str) -> str:
    """Hash of the workflow file's bytes (the id of a loaded process is its file URI)."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        try:
            with open(url2pathname(parsed.path), "rb") as handle:
                return hashlib.sha256(handle.read()).hexdigest()
        except OSError:
            pass
    return hashlib.sha256(uri.split("#", 1)[0].encode()).hexdigest()


def run_base_key(tool_id: str, job_order: Any, outdir: str | None) -> str:
    """Workflow + inputs + working directory + output directory."""
    return "cwl:" + digest(
        tool_id.split("#", 1)[0], document_digest(tool_id), job_order, os.getcwd(), os.path.abspath(outdir or ".")
    )[:32]


def current_generation(store: Store, base_key: str) -> int:
    """A generation ends when the executor finishes (its directories are gone); a killed one is resumed."""
    return store.cwl_generation(base_key)


def end_generation(store: Store, base_key: str, generation: int) -> None:
    store.end_cwl_generation(base_key, generation)
