"""The example of the design meeting, verbatim: no site publishes PBS, then sites that do run it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests.slurm.conftest import CLUSTERS, HOST_SELECTED, SELECTED, cluster_of, require_cluster
from tests.support import IN_CI, require_service

from .helpers import EXAMPLES, PBS, SIMPLE, nothing_submitted, overlay_catalogue, run

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "jdl.md"


def test_the_example_is_the_reference_verbatim() -> None:
    if not REFERENCE.exists():
        message = f"{REFERENCE} not found (the project's ../shared is absent in this clone)"
        if IN_CI:
            pytest.fail(message + " — CI=true has ../shared beside the clone")
        pytest.skip(message)
    block = REFERENCE.read_text().split("```\n", 2)[1]
    assert SIMPLE.read_text() == block


def test_no_site_satisfies_requirements_on_the_default_catalogue(tmp_path: Path, state_dir: Path) -> None:
    result = run("run", str(SIMPLE), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    first = result.stderr.splitlines()[0]
    assert f"{SIMPLE}:6:" in first
    assert 'no site satisfies Requirements = other.GlueCEInfoLRMSType == "PBS" && other.GlueCEInfoTotalCPUs > 1' \
        in first
    # per site, the term that failed with the values the site publishes
    assert 'local: fails other.GlueCEInfoLRMSType == "PBS" (GlueCEInfoLRMSType = "local")' in result.stderr
    assert 'slurm-local: fails other.GlueCEInfoLRMSType == "PBS" (GlueCEInfoLRMSType = "SLURM")' in result.stderr
    assert 'htcondor-local: fails other.GlueCEInfoLRMSType == "PBS" (GlueCEInfoLRMSType = "Condor")' \
        in result.stderr
    assert nothing_submitted(tmp_path)


def test_too_few_cpus_is_shown_with_the_published_value(tmp_path: Path, state_dir: Path) -> None:
    sites = overlay_catalogue(tmp_path, {"local": {"GlueCEInfoLRMSType": "PBS", "GlueCEInfoTotalCPUs": 1}})
    result = run("submit", str(SIMPLE), cwd=tmp_path, sites=sites)
    assert result.returncode == 2
    assert "local: fails other.GlueCEInfoTotalCPUs > 1 (GlueCEInfoTotalCPUs = 1)" in result.stderr
    assert nothing_submitted(tmp_path)


OTHER_SITES = [("local", None), ("htcondor-local", "htcondor")] if HOST_SELECTED else []
SITES = [*[(CLUSTERS[v].sites[0], "slurm") for v in SELECTED], *OTHER_SITES]  # each selected Slurm version


@pytest.mark.parametrize(("site", "service"), SITES, ids=[s for s, _ in SITES])
def test_runs_where_a_site_publishes_pbs(site: str, service: str | None, tmp_path: Path, state_dir: Path) -> None:
    if service == "slurm":
        require_cluster(cluster_of(site))
    elif service:
        require_service(service)
    sites = overlay_catalogue(tmp_path, {site: PBS})
    result = run("run", str(SIMPLE), "--json", cwd=tmp_path, sites=sites, timeout=400)
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert job["site"] == site and job["state"] == "completed"
    folder = Path(job["output_dir"])
    assert folder == tmp_path / "esap-output" / job["id"]
    assert (folder / "simple.out").read_text().strip() == socket.getfqdn() or \
        (folder / "simple.out").read_text().strip().split(".")[0] == socket.gethostname().split(".")[0]
    assert (folder / "simple.err").exists()
    assert job["missing"] == ["image.png"]
    assert not (folder / "image.png").exists()


def test_human_report_names_the_missing_output(tmp_path: Path, state_dir: Path) -> None:
    result = run("run", str(SIMPLE), cwd=tmp_path, sites=EXAMPLES / "pbs-site.yaml")
    assert result.returncode == 0, result.stderr
    assert "missing: image.png" in result.stdout
    assert "simple.out, simple.err" in result.stdout
