"""Centre credentials from the site catalogue: a slurmrestd JWT from a file, an HTCondor IDTOKEN.

The scontrol-token path of slurm-rest is exercised by tests/slurm; the IDTOKEN-only job that
succeeds is tests/auth/test_policy.py::test_accounting_group_in_the_htcondor_job_ad.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric import rsa

from esap_executors.sqlite_store import open_store
from tests.slurm.conftest import CLUSTERS, SELECTED, require_cluster
from tests.support import EXAMPLE_SITES, esap, require_service

REST_SITES = [CLUSTERS[v].sites[1] for v in SELECTED]  # each selected Slurm version's slurmrestd site


def site_file(directory: Path, name: str, example: str, credentials: dict[str, Any]) -> Path:
    examples = yaml.safe_load(EXAMPLE_SITES.read_text())
    assert example in examples, f"examples/sites.yaml lacks {example}"
    block = copy.deepcopy(examples[example])
    block["credentials"] = credentials
    path = directory / "sites.yaml"
    path.write_text(yaml.safe_dump({name: block}, sort_keys=False))
    return path


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("rest_site", REST_SITES)
def test_slurmrestd_site_runs_a_job_with_a_jwt_file(rest_site: str, tmp_path: Path) -> None:
    cluster = next(c for c in CLUSTERS.values() if rest_site in c.sites)
    require_cluster(cluster)
    issued = subprocess.run([cluster.command("scontrol"), "token", "username=root", "lifespan=600"],
                            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    token = issued.removeprefix("SLURM_JWT=")
    token_file = private_file(tmp_path / "slurm.jwt", token + "\n")
    sites = site_file(tmp_path, "rest-jwt-file", rest_site,
                      {"slurm_jwt": {"file": str(token_file)}, "slurm_user": "root"})
    out = esap("run", "--site", "rest-jwt-file", "--", "echo", "through slurmrestd", sites=sites)
    assert out.returncode == 0, out.stderr
    assert "through slurmrestd" in out.stdout
    assert token not in out.stdout + out.stderr


@pytest.mark.parametrize("rest_site", REST_SITES)
def test_slurmrestd_refuses_a_forged_jwt(rest_site: str, tmp_path: Path) -> None:
    require_cluster(next(c for c in CLUSTERS.values() if rest_site in c.sites))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sun": "root", "exp": 4102444800, "iat": 1700000000}, key, algorithm="RS256")
    sites = site_file(tmp_path, "rest-forged", rest_site,
                      {"slurm_jwt": {"file": str(private_file(tmp_path / "forged.jwt", forged))},
                       "slurm_user": "root"})
    out = esap("submit", "--site", "rest-forged", "--", "true", sites=sites)
    assert out.returncode == 3, out.stderr
    assert forged not in out.stdout + out.stderr
    assert not [r for r in open_store().connect().execute("SELECT native_id FROM jobs").fetchall() if r[0]]


def test_htcondor_site_with_a_bad_idtoken_is_refused(tmp_path: Path) -> None:
    require_service("htcondor")
    bogus = private_file(tmp_path / "bogus-idtoken",
                         "eyJhbGciOiJIUzI1NiIsImtpZCI6IlBPT0wifQ.eyJzdWIiOiJub2JvZHkifQ.c2lnbmF0dXJl\n")
    sites = site_file(tmp_path, "htc-bad-token", "htcondor-local",
                      {"htcondor_idtoken": str(bogus), "htcondor_auth": ["IDTOKENS"]})
    out = esap("submit", "--site", "htc-bad-token", "--", "true", sites=sites)
    assert out.returncode == 3 and "IDTOKENS" in out.stderr, out.stderr
    assert "c2lnbmF0dXJl" not in out.stderr
    assert not [r for r in open_store().connect().execute("SELECT native_id FROM jobs").fetchall() if r[0]]

    missing = site_file(tmp_path, "htc-no-token", "htcondor-local",
                        {"htcondor_idtoken": str(tmp_path / "absent"), "htcondor_auth": ["IDTOKENS"]})
    out = esap("submit", "--site", "htc-no-token", "--", "true", sites=missing)
    assert out.returncode == 3 and "IDTOKEN file" in out.stderr and "does not exist" in out.stderr
