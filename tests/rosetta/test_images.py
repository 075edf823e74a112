"""Steps that name their own image on the Rosetta sites: the image (here esap-test, pushed to
the local registry by scripts/services/rosetta.sh, whose root holds /esap-test) runs the step
with the esap runner added, registered once as a tag of the Rosetta software `esap-step`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from tests.support import EXAMPLE_SITES, VENV_BIN, esap

from .conftest import run_tasks

pytestmark = pytest.mark.rosetta

DATA = Path(__file__).parent / "data"
REGISTRY_IMAGE = "127.0.0.1:5010/esap-test:ci"


def _run_id(stderr: str) -> str:
    match = re.search(r"submitted (r[0-9a-f]+)\.", stderr)
    assert match, stderr
    return match.group(1)


@pytest.mark.parametrize(("site", "image"), [("rosetta-slurm", "esap-test"), ("rosetta-standalone", REGISTRY_IMAGE)])
def test_step_runs_in_its_own_image(client: RosettaClient, state_dir: Path, tmp_path: Path, site: str,
                                    image: str) -> None:
    result = esap("run", "--site", site, "--container", image, "--", "sh", "-c", "cat /esap-test; exit 4",
                  cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == "esap-test"  # a file only that image has
    assert "failed (" in result.stderr and "exit code 4" in result.stderr
    assert run_tasks(client, _run_id(result.stderr)) == []
    tags = [c.image_tag for c in client.containers() if c.name == "esap-step"]
    assert any(tag.startswith("esap-test-ci-") for tag in tags), tags
    assert len(tags) == len(set(tags))  # registered once, whatever the number of runs


def test_unknown_image_exit_2_nothing_started(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    before = {t.uuid for t in client.tasks("")}
    result = esap("run", "--site", "rosetta-slurm", "--container", "127.0.0.1:5010/no-such-image:ci", "--", "true",
                  cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "the step's image '127.0.0.1:5010/no-such-image:ci' cannot be pulled" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {t.uuid for t in client.tasks("")} <= before


def test_cwl_scatter_and_a_step_in_its_own_image_same_as_slurm_local(rosetta: None, state_dir: Path,
                                                                     tmp_path: Path) -> None:
    # slurm-local runs images from its image map (SIF files): the same image, built from the registry
    sif = tmp_path / "esap-test.sif"
    built = subprocess.run(["apptainer", "build", "--force", str(sif), f"docker://{REGISTRY_IMAGE}"],
                           env=dict(os.environ, APPTAINER_NOHTTPS="1"), capture_output=True, text=True,
                           timeout=300, check=False)
    assert built.returncode == 0, built.stderr
    text = EXAMPLE_SITES.read_text()
    anchor = "      busybox: /var/tmp/esap-images/busybox.sif\n"
    assert anchor in text
    sites = tmp_path / "sites.yaml"
    sites.write_text(text.replace(anchor, anchor + f"      esap-test: {sif}\n", 1))
    results = {}
    for site in ("slurm-local", "rosetta-slurm"):
        run_dir = tmp_path / site
        run_dir.mkdir()
        done = subprocess.run(
            [str(VENV_BIN / "esap-cwltool"), "--site", site, DATA / "scatter-image-wf.cwl", "--words", "alpha",
             "--words", "beta", "--words", "gamma"],
            cwd=run_dir, env=dict(os.environ, ESAP_SITES=str(sites)), capture_output=True, text=True,
            timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        results[site] = Path(json.loads(done.stdout)["joined"]["path"]).read_text()
    assert results["rosetta-slurm"] == results["slurm-local"] == "esap-test\nalpha\nbeta\ngamma\n"
