"""esap-cwltool keeps the CWL schemas it loads at start in the user's cache directory."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tests.cwl.helpers import run_tool

TOOL = """cwlVersion: v1.2
class: CommandLineTool
baseCommand: [echo, cached]
stdout: said.txt
inputs: []
outputs:
  said: {type: stdout}
"""


def _run(tmp_path: Path, cache: Path, name: str) -> str:
    work = tmp_path / name
    work.mkdir()
    (work / "tool.cwl").write_text(TOOL)
    completed = run_tool("esap-cwltool", "--site", "local", "--outdir", work / "out", "tool.cwl", cwd=work,
                         env={"XDG_CACHE_HOME": str(cache)})
    assert completed.returncode == 0, completed.stderr[-2000:]
    said = json.loads(completed.stdout)["said"]["path"]
    return Path(said).read_text()


def test_schemas_are_cached_privately_reused_and_a_broken_entry_is_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert _run(tmp_path, cache, "first") == "cached\n"
    folder = cache / "esap" / "cwl-schemas"
    entries = sorted(folder.glob("*.pickle"))
    assert len(entries) == 2, entries  # the document's version (v1.2) and the v1.0 every Process needs
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(e.stat().st_mode) == 0o600 for e in entries)
    written = {e: e.stat().st_mtime_ns for e in entries}

    assert _run(tmp_path, cache, "second") == "cached\n"
    assert {e: e.stat().st_mtime_ns for e in entries} == written, "a later start reads the entries, never rewrites"

    for entry in entries:
        entry.write_bytes(b"not a pickle")
    entries[0].chmod(0o666)  # writable by others: never read
    assert _run(tmp_path, cache, "third") == "cached\n"
    assert entries[1].read_bytes() != b"not a pickle", "a broken entry is replaced by a good one"
