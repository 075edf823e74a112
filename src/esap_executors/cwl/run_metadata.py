"""What esap-cwltool records about its run for the RO-Crate: workflow file, input and output files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


def cwl_run_metadata(workflow: str, job_order: Any, outputs: Any) -> dict[str, object]:
    import cwltool

    path = _local_path(workflow)
    metadata: dict[str, object] = {
        "engine": {"name": "esap-cwltool (cwltool)", "version": getattr(cwltool, "__version__", "")},
        "inputs": list(_files(job_order)),
        "outputs": list(_files(outputs)),
    }
    if path is not None:
        metadata["workflow"] = {"path": str(path), "language": "cwl", "name": path.name}
    return metadata


def _files(value: Any, name: str | None = None) -> Iterator[dict[str, str]]:
    """Every File and Directory (with secondary files) in a CWL object, named by its top-level key."""
    if isinstance(value, dict):
        if value.get("class") in ("File", "Directory"):
            path = _local_path(str(value.get("path") or value.get("location") or ""))
            if path is not None:
                yield {"path": str(path), "name": name or path.name}
            for secondary in value.get("secondaryFiles") or []:
                yield from _files(secondary, name)
            return
        for key, item in value.items():
            if not str(key).startswith("cwl:") and key != "id":
                yield from _files(item, name or str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _files(item, name)


def _local_path(location: str) -> Path | None:
    if location.startswith("file://"):
        return Path(unquote(urlsplit(location).path))
    if "://" in location or not location:
        return None
    return Path(location).resolve()
