"""Policy-bearing copies of the example sites, written to a test's directory."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from tests.support import EXAMPLE_SITES

POLICY: dict[str, Any] = {
    "require_token": True,
    "issuer": "http://127.0.0.1:9400/",
    "audience": "urn:ci:api",
    "groups": {
        "/escape/cta": {"account": "cta", "accounting_group": "group_cta", "max_cores": 1,
                        "max_walltime": "10m"},
        "/escape/lofar": {"account": "lofar", "accounting_group": "group_lofar"},
    },
    "subjects": {"bob": {"account": "esap"}},
}


def policy_sites(directory: Path, work_root: Path | None = None) -> Path:
    """<dir>/sites.yaml: `<site>-policy` for local, the Slurm clusters' CLI sites and htcondor-local.

    htcondor-local-policy authenticates with its IDTOKEN only.
    """
    examples = yaml.safe_load(EXAMPLE_SITES.read_text()) or {}
    sites: dict[str, Any] = {}
    for name in ("local", "slurm-local", "slurm-2411", "slurm-2605", "htcondor-local"):
        if name not in examples:
            continue
        block = copy.deepcopy(examples[name])
        block["policy"] = copy.deepcopy(POLICY)
        if name == "htcondor-local":  # the schedd must accept the IDTOKEN alone, no FS fallback
            block["credentials"] = {**block.get("credentials", {}), "htcondor_auth": ["IDTOKENS"]}
        if work_root is not None and name != "htcondor-local":
            block["work_root"] = str(work_root / name)
        sites[f"{name}-policy"] = block
    path = directory / "sites.yaml"
    path.write_text(yaml.safe_dump(sites, sort_keys=False))
    return path
