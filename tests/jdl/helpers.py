"""Shared helpers of the JDL tests: JDL files, catalogues, running `esap`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from tests.support import EXAMPLE_SITES, ROOT, esap

EXAMPLES = ROOT / "examples" / "jdl"
SIMPLE = EXAMPLES / "simple.jdl"


def write_jdl(folder: Path, text: str, name: str = "job.jdl") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def overlay_catalogue(folder: Path, attributes: dict[str, dict[str, Any]], keep: list[str] | None = None,
                      name: str = "sites.yaml") -> Path:
    """examples/sites.yaml restricted to `keep` (default: the sites given attributes), with extra attributes."""
    sites = yaml.safe_load(EXAMPLE_SITES.read_text())
    chosen = keep if keep is not None else list(attributes)
    overlay = {}
    for site in chosen:
        settings = dict(sites[site])
        settings["attributes"] = {**settings.get("attributes", {}), **attributes.get(site, {})}
        overlay[site] = settings
    path = folder / name
    path.write_text(yaml.safe_dump(overlay, sort_keys=False))
    return path


PBS = {"GlueCEInfoLRMSType": "PBS", "GlueCEInfoTotalCPUs": 4}


def run(*args: str, cwd: Path, sites: Path | None = EXAMPLE_SITES, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return esap(*args, cwd=cwd, sites=sites, env=env, timeout=timeout)


def run_json(*args: str, cwd: Path, sites: Path | None = EXAMPLE_SITES,
             env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    result = run(*args, "--json", cwd=cwd, sites=sites, env=env)
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def nothing_submitted(cwd: Path) -> bool:
    status = esap("status", "--json", cwd=cwd)
    return status.returncode == 0 and json.loads(status.stdout) == []


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
