"""SLURM tests: the real cluster of scripts/services/slurm.sh, through both access paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.store import Store
from tests.support import EXAMPLE_SITES, ROOT, require_service

SITES = ("slurm-local", "slurm-rest")
SLURM_SH = ROOT / "scripts" / "services" / "slurm.sh"
BUILT_SIF = Path("/var/lib/containers-ci/busybox.sif")  # built by scripts/services/containers.sh
SIF = Path("/var/tmp/esap-images/busybox.sif")  # where examples/sites.yaml maps `busybox`


@pytest.fixture(scope="session")
def slurm() -> None:
    require_service("slurm")


@pytest.fixture(scope="session")
def catalogue(slurm: None) -> Catalogue:
    return Catalogue.load(EXAMPLE_SITES)


@pytest.fixture
def new_run(catalogue: Catalogue, state_dir: Path) -> Iterator[object]:
    """Run factory: a fresh run (unique key) on a private store; closed after the test."""
    runs: list[Run] = []

    def make(key: str | None = None, store: Store | None = None) -> Run:
        run = Run.open(key or f"slurm-test-{uuid.uuid4().hex}", catalogue=catalogue, store=store or Store())
        runs.append(run)
        return run

    yield make
    for run in runs:
        live = [j for j, r in run.snapshot().items() if not r.state.is_final and r.native_id]
        if live:
            run.cancel(live)
        run.close()


def sacct_count(run_id: str) -> int:
    """Scheduler jobs (array tasks count one each) carrying the run's name."""
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", f"--name=esap-{run_id}", "-S", "now-1hour", "-o", "JobID"],
        capture_output=True, text=True, check=True,
    ).stdout
    from esap_executors.backends.slurm.records import expand_array_id

    return sum(len(expand_array_id(line.strip())) for line in out.splitlines() if line.strip())


def apptainer_ready() -> str | None:
    """None when apptainer can run the test image here, else why not."""
    if not shutil.which("apptainer"):
        return "apptainer is not installed (scripts/services/containers.sh start)"
    if not SIF.exists():
        if not BUILT_SIF.exists():
            return f"no test image: {BUILT_SIF} is built by scripts/services/containers.sh"
        SIF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(BUILT_SIF, SIF)
        os.chmod(SIF, 0o644)
    probe = subprocess.run(["apptainer", "exec", str(SIF), "true"], capture_output=True, text=True,
                           timeout=60, check=False)
    if probe.returncode != 0:
        return f"apptainer cannot run {SIF}: {probe.stderr.strip()[-300:]}"
    return None


def shell(command: str, **spec: object) -> object:
    from esap_executors.job import make_spec

    return make_spec(["/bin/bash", "-c", command], **spec)  # type: ignore[arg-type]


__all__ = ["SITES", "SLURM_SH", "JobRequest", "sacct_count", "apptainer_ready", "shell"]
