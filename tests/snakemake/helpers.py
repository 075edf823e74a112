"""Running Snakemake with the esap executor in a subprocess, as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from esap_executors.sqlite_store import open_store
from esap_executors.store import JobRecord

from ..support import EXAMPLE_SITES

SLURM_SITE = "slurm-local"
HTCONDOR_SITE = "htcondor-local"


def snakemake(workdir: Path, *args: str, env: Mapping[str, str] | None = None,
              python: str = sys.executable, timeout: float = 600,
              shared: bool = False) -> subprocess.CompletedProcess[str]:
    """`python -m snakemake ARGS` in `workdir`; `shared` lets the pool's job user write there."""
    full_env = dict(os.environ)
    full_env.setdefault("ESAP_SITES", str(EXAMPLE_SITES))
    full_env.update(env or {})
    return subprocess.run(
        [python, "-m", "snakemake", *args], cwd=workdir, env=full_env, capture_output=True,
        text=True, timeout=timeout, check=False, preexec_fn=(lambda: os.umask(0)) if shared else None,
    )


def executor_args(site: str, jobs: int = 10) -> list[str]:
    return ["--executor", "esap", "--esap-site", site, "--jobs", str(jobs), "--latency-wait", "30"]


def write_workflow(workdir: Path, snakefile: str) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Snakefile").write_text(snakefile)
    return workdir


@contextmanager
def shared_directory(prefix: str) -> Iterator[Path]:
    """A directory the HTCondor job user (not root) can write: jobs run in the workflow dir."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o777)
    old = os.umask(0)
    try:
        yield path
    finally:
        os.umask(old)
        shutil.rmtree(path, ignore_errors=True)


def latest_run_records(front: str = "snakemake") -> list[JobRecord]:
    """The jobs of the newest run of this front in the test's state store."""
    store = open_store()
    for run_id, _key, run_front, _created in store.latest_runs():
        if run_front == front:
            return store.jobs_of_run(run_id)
    return []


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-12000:]}"
