"""SLURM tests: the real clusters of scripts/services/slurm.sh, through both access paths.

Tests that take the `cluster` or `site` fixture run on every Slurm version selected by
$ESAP_TEST_SLURM (comma list of host, 24.11, 26.05; default: all three). Tests marked
`slurm_host` need the host's own cluster (its SLURM_CONF, apptainer, a controller restart)
and are left out when `host` is not selected. scripts/test.sh runs the versions as parallel
pytest processes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.store import Store
from tests.support import EXAMPLE_SITES, IN_CI, ROOT, require_service


@dataclass(frozen=True)
class Cluster:
    """One Slurm cluster of scripts/services/slurm.sh and its two sites (CLI, REST)."""

    version: str  # "host": the host's own packages (22.05 on Debian 12)
    sites: tuple[str, str]
    commands: str | None  # the directory of its client commands; None: those on PATH

    def command(self, name: str) -> str:
        return os.path.join(self.commands, name) if self.commands else name


CLUSTERS = {
    "host": Cluster("host", ("slurm-local", "slurm-rest"), None),
    "24.11": Cluster("24.11", ("slurm-2411", "slurm-2411-rest"), "/var/lib/slurm-ci-2411/bin"),
    "26.05": Cluster("26.05", ("slurm-2605", "slurm-2605-rest"), "/var/lib/slurm-ci-2605/bin"),
}
SELECTED = [v.strip() for v in os.environ.get("ESAP_TEST_SLURM", ",".join(CLUSTERS)).split(",") if v.strip()]
if unknown := set(SELECTED) - set(CLUSTERS):
    raise pytest.UsageError(f"ESAP_TEST_SLURM names unknown Slurm versions {sorted(unknown)} (known: {list(CLUSTERS)})")
HOST_SELECTED = "host" in SELECTED  # the run that also takes the cases on other services
SITES = CLUSTERS["host"].sites  # tests marked slurm_host
SLURM_SH = ROOT / "scripts" / "services" / "slurm.sh"
_UP: dict[str, str | None] = {}


def require_cluster(cluster: Cluster) -> None:
    """Skip (CI=true: fail) when this version's cluster does not answer."""
    if cluster.version == "host":
        require_service("slurm")
        return
    if cluster.version not in _UP:
        try:
            probe = subprocess.run([cluster.command("sinfo"), "-h", "-o", "%T"], capture_output=True, text=True,
                                   timeout=30, check=False)
            _UP[cluster.version] = None if probe.returncode == 0 and probe.stdout.strip() else (
                probe.stderr.strip()[-200:] or "sinfo printed nothing")
        except (OSError, subprocess.SubprocessError) as exc:
            _UP[cluster.version] = str(exc)
    why = _UP[cluster.version]
    if why is not None:
        message = (f"the Slurm {cluster.version} cluster is not running ({why}); start it with: "
                   f"bash scripts/services/slurm.sh start {cluster.version}")
        if IN_CI:
            pytest.fail(message + " — CI=true does not allow skipping a service the project starts")
        pytest.skip(message)


def cluster_of(site: str) -> Cluster:
    return next(c for c in CLUSTERS.values() if site in c.sites)


def _version_needed(item: pytest.Item) -> str | None:
    """The Slurm version a test needs: `slurm_host`, `slurm_version("26.05")`, or a bare
    `slurm_version` on a test parametrized by `version`."""
    if item.get_closest_marker("slurm_host"):
        return "host"
    marker = item.get_closest_marker("slurm_version")
    if marker is None:
        return None
    if marker.args:
        return str(marker.args[0])
    callspec = getattr(item, "callspec", None)
    return str(callspec.params["version"]) if callspec else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests for a Slurm version that ESAP_TEST_SLURM leaves out are deselected, not skipped."""
    left_out = [item for item in items if _version_needed(item) not in (None, *SELECTED)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item not in left_out]


@pytest.fixture(scope="session", params=SELECTED)
def cluster(request: pytest.FixtureRequest) -> Cluster:
    """Each selected Slurm version's cluster, up (the test runs once per version)."""
    chosen = CLUSTERS[request.param]
    require_cluster(chosen)
    return chosen


@pytest.fixture(params=[site for version in SELECTED for site in CLUSTERS[version].sites])
def site(request: pytest.FixtureRequest) -> str:
    """Each site of each selected version's cluster, up."""
    require_cluster(cluster_of(request.param))
    return str(request.param)
BUILT_SIF = Path("/var/lib/containers-ci/busybox.sif")  # built by scripts/services/containers.sh
SIF = Path("/var/tmp/esap-images/busybox.sif")  # where examples/sites.yaml maps `busybox`


@pytest.fixture(scope="session")
def slurm() -> None:
    require_service("slurm")


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue.load(EXAMPLE_SITES)


@pytest.fixture
def new_run(catalogue: Catalogue, state_dir: Path) -> Iterator[object]:
    """Run factory: a fresh run (unique key) on a private store; closed after the test."""
    runs: list[Run] = []

    def make(key: str | None = None, store: Store | None = None) -> Run:
        run = Run.open(key or f"slurm-test-{uuid.uuid4().hex}", catalogue=catalogue, store=store or open_store())
        runs.append(run)
        return run

    yield make
    for run in runs:
        live = [j for j, r in run.snapshot().items() if not r.state.is_final and r.native_id]
        if live:
            run.cancel(live)
        run.close()


def sacct_count(run_id: str, cluster: Cluster = CLUSTERS["host"]) -> int:
    """Scheduler jobs (array tasks count one each) carrying the run's name."""
    out = subprocess.run(
        [cluster.command("sacct"), "-n", "-X", "-P", f"--name=esap-{run_id}", "-S", "now-1hour", "-o", "JobID"],
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


__all__ = ["CLUSTERS", "SITES", "SLURM_SH", "Cluster", "JobRequest", "cluster_of", "sacct_count", "apptainer_ready",
           "shell"]
