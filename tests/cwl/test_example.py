"""The example workflow (scatter, GPU-hinted step, containerised step) end to end on SLURM and HTCondor."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.states import JobState
from tests.cwl.helpers import EXAMPLES, catalogue_with_images, jobs_of_run, outputs_of, run_id_of, run_tool
from tests.htcondor.conftest import pool_settings
from tests.htcondor.test_containers import CHROOT_REASON
from tests.support import ROOT, esap, require_service

WORDS = ["ALPHA", "BETA", "GAMMA", "DELTA"]
STEP_NAMES = ["count", "shout", "shout_2", "shout_3", "shout_4", "stamp"]
EXAMPLE_IMAGE = "localhost/esap-example:latest"


@pytest.fixture(scope="module")
def example_sif() -> Iterator[Path]:
    """The example's image, built here from the local busybox image (podman), then as a SIF (apptainer)."""
    require_service("containers")
    images = subprocess.run(["bash", str(ROOT / "scripts/services/containers.sh"), "images"],
                            capture_output=True, text=True, timeout=900, check=False)
    assert images.returncode == 0, images.stderr[-2000:]
    podman = ["podman"]
    build = subprocess.run([*podman, "build", "-q", "-t", EXAMPLE_IMAGE, "-f", str(EXAMPLES / "Containerfile"),
                            str(EXAMPLES)], capture_output=True, text=True, timeout=600, check=False)
    assert build.returncode == 0, build.stderr
    # the apptainer wrapper of these machines sees /tmp: build the SIF there
    workdir = Path(tempfile.mkdtemp(prefix="esap-cwl-image-", dir="/tmp"))
    workdir.chmod(0o755)
    rootfs = workdir / "rootfs"
    rootfs.mkdir()
    container = subprocess.run([*podman, "create", EXAMPLE_IMAGE, "sh"], capture_output=True, text=True,
                               check=True).stdout.strip()
    try:
        export = subprocess.Popen([*podman, "export", container], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-C", str(rootfs), "-xf", "-"], stdin=export.stdout, check=True)
        assert export.wait() == 0
    finally:
        subprocess.run([*podman, "rm", container], capture_output=True, check=False)
    sif = workdir / "esap-example.sif"
    built = subprocess.run(["apptainer", "build", "--force", str(sif), str(rootfs)], cwd=workdir,
                           capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stderr[-2000:]
    sif.chmod(0o644)
    yield sif
    shutil.rmtree(workdir, ignore_errors=True)


def check_where_steps_ran(stderr: str, site: str) -> None:
    run_id = run_id_of(stderr)
    jobs = jobs_of_run(run_id)
    assert sorted(j.name for j in jobs) == STEP_NAMES
    assert {(j.site, j.state, j.exit_code) for j in jobs} == {(site, JobState.COMPLETED, 0)}
    listed = json.loads(esap("status", "--json", "--limit", "200").stdout)
    shown = {entry["name"]: entry for entry in listed if entry["run"] == run_id}
    assert sorted(shown) == STEP_NAMES
    assert {entry["site"] for entry in shown.values()} == {site}
    assert all(entry["native_id"] for entry in shown.values())


def check_summary(outputs: dict[str, object], stamp: str) -> None:
    shouted = outputs["shouted"]
    assert isinstance(shouted, list)
    assert [Path(f["path"]).read_text().strip() for f in shouted] == WORDS
    stamped = outputs["stamped"]
    assert isinstance(stamped, dict)
    assert Path(stamped["path"]).read_text().splitlines() == [*WORDS, "device: cpu", stamp]


def test_example_runs_end_to_end_on_slurm(tmp_path: Path, example_sif: Path) -> None:
    require_service("slurm")
    sites = catalogue_with_images(tmp_path / "sites.yaml", {"slurm-local": {"esap-example": str(example_sif)}})
    completed = run_tool("esap-cwltool", "--enable-ext", "--site", "slurm-local", EXAMPLES / "pipeline.cwl",
                         EXAMPLES / "inputs.yml", cwd=tmp_path, sites=sites)
    check_summary(outputs_of(completed), "stamp: esap-example image")
    assert "site slurm-local has no GPUs: the GPU hint is dropped" in completed.stderr
    check_where_steps_ran(completed.stderr, "slurm-local")
    shout = [j for j in jobs_of_run(run_id_of(completed.stderr)) if j.name.startswith("shout")]
    assert len({(j.native_id or "").split("_")[0] for j in shout}) == 1, "the scatter was not one submission"


@pytest.mark.parametrize("site", ["htcondor-local", "htcondor-transfer"])  # shared filesystem, file transfer
def test_example_runs_end_to_end_on_htcondor(tmp_path: Path, site: str) -> None:
    require_service("htcondor")
    completed = run_tool("esap-cwltool", "--enable-ext", "--no-container", "--site", site,
                         EXAMPLES / "pipeline.cwl", EXAMPLES / "inputs.yml", cwd=tmp_path)
    check_summary(outputs_of(completed), "stamp: none (no container)")
    check_where_steps_ran(completed.stderr, site)


def test_example_container_step_on_htcondor(tmp_path: Path, example_sif: Path) -> None:
    require_service("htcondor")
    if pool_settings().get("HTC_MODE") == "chroot":
        pytest.skip(CHROOT_REASON)
    sites = catalogue_with_images(tmp_path / "sites.yaml", {"htcondor-local": {"esap-example": str(example_sif)}},
                                  runtimes={"htcondor-local": "apptainer"})
    completed = run_tool("esap-cwltool", "--enable-ext", "--site", "htcondor-local", EXAMPLES / "pipeline.cwl",
                         EXAMPLES / "inputs.yml", cwd=tmp_path, sites=sites)
    check_summary(outputs_of(completed), "stamp: esap-example image")
