"""Running esap-cwltool / cwltool in a subprocess and reading what the state store recorded."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from esap_executors.sqlite_store import open_store
from esap_executors.store import JobRecord
from tests.support import EXAMPLE_SITES, ROOT, VENV_BIN

EXAMPLES = ROOT / "cwl" / "examples"
RUN_LINE = re.compile(r"esap run (r[0-9a-f]{11})")


def run_tool(
    tool: str, *args: str | Path, cwd: Path, sites: Path | None = EXAMPLE_SITES, timeout: float = 600,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)
    if sites is not None:
        full_env["ESAP_SITES"] = str(sites)
    full_env.update(env or {})
    return subprocess.run([str(VENV_BIN / tool), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=full_env, timeout=timeout, check=False)


def outputs_of(completed: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def run_id_of(stderr: str) -> str:
    found = RUN_LINE.search(stderr)
    assert found, f"no 'esap run' line in:\n{stderr[-2000:]}"
    return found.group(1)


def jobs_of_run(run_id: str) -> list[JobRecord]:
    return open_store().jobs_of_run(run_id)


def catalogue_with_images(
    target: Path, images: dict[str, dict[str, str]], runtimes: dict[str, str] | None = None
) -> Path:
    """examples/sites.yaml plus image-map entries (and runtimes) per site."""
    data = yaml.safe_load(EXAMPLE_SITES.read_text())
    for site, entries in images.items():
        block = data[site].setdefault("container", {})
        block.setdefault("images", {}).update(entries)
        if runtimes and site in runtimes:
            block["runtime"] = runtimes[site]
    target.write_text(yaml.safe_dump(data))
    return target
