"""A rule in a container through Snakemake's own deployment (`--software-deployment-method
apptainer`), with an image built here from a local root filesystem (nothing is pulled)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ..support import require_service
from .helpers import SLURM_SITE, executor_args, explain, latest_run_records, snakemake, write_workflow

ROOTFS = Path(os.environ.get("CT_DIR", "/var/lib/containers-ci")) / "busybox-rootfs"

CONTAINED = """
shell.executable("/bin/sh")

rule all:
    input: "inside.txt"

rule inside:
    output: "inside.txt"
    container: "{image}"
    shell: "cat /esap-marker > {{output}}"
"""


@pytest.mark.slurm
def test_rule_in_locally_built_apptainer_image(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    require_service("containers")
    if not shutil.which("apptainer") or not ROOTFS.is_dir():
        pytest.fail(f"apptainer and {ROOTFS} are set up by scripts/services/containers.sh")
    sandbox = tmp_path / "rootfs"
    shutil.copytree(ROOTFS, sandbox, symlinks=True)
    (sandbox / "esap-marker").write_text("built here\n")
    image = tmp_path / "marked.sif"
    built = subprocess.run(["apptainer", "build", "--force", str(image), str(sandbox)],
                           capture_output=True, text=True, timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    workdir = write_workflow(tmp_path / "contained", CONTAINED.format(image=image))
    result = snakemake(workdir, *executor_args(SLURM_SITE),
                       "--software-deployment-method", "apptainer")
    assert result.returncode == 0, explain(result)
    assert (workdir / "inside.txt").read_text() == "built here\n"
    [record] = latest_run_records()
    assert record.site == SLURM_SITE
