"""The tools of a whole catalogue written to a folder: <out>/<entry id>.cwl plus index.yaml (what was
published, what was skipped and why). The folder is written whole or not at all."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .cwl_tool import Unrunnable, dump, tool_for
from .entries import Entry

OWNED = ("ida", "batch", "ossr", "index.yaml")  # what publish replaces in the output folder


def publish(entries: list[Entry], out: Path) -> dict[str, Any]:
    index: dict[str, Any] = {"published": {}, "skipped": {}}
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".publish-", dir=out))
    try:
        for entry in sorted(entries, key=lambda e: e.id):
            try:
                tool = tool_for(entry)
            except Unrunnable as exc:
                index["skipped"][entry.id] = exc.detail
                continue
            target = staging / f"{entry.id}.cwl"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(dump(tool, entry.id))
            index["published"][entry.id] = f"{entry.id}.cwl"
        (staging / "index.yaml").write_text(
            "# written by `esap catalogue publish`: the catalogue's entries as CWL tools, and those skipped\n"
            + yaml.safe_dump(index, sort_keys=True, width=120))
        for name in OWNED:
            old = out / name
            if old.is_dir():
                shutil.rmtree(old)
            elif old.exists():
                old.unlink()
        for item in staging.iterdir():
            item.rename(out / item.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return index
