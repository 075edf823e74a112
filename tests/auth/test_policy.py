"""Site policy before submission: groups admitted, billing applied, limits, audit; and its parsing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from esap_executors.auth.config import AuthConfig
from esap_executors.auth.policy import authorize
from esap_executors.errors import PolicyDenied
from esap_executors.job import make_spec
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from tests.slurm.conftest import CLUSTERS, HOST_SELECTED, SELECTED, Cluster, cluster_of, require_cluster
from tests.support import esap, require_service

from .conftest import ISSUER, client, login
from .sites_for_tests import policy_sites

SERVICE = {"htcondor-local-policy": "htcondor", "local-policy": None}
SLURM_POLICY_SITES = [f"{CLUSTERS[v].sites[0]}-policy" for v in SELECTED]  # each selected Slurm version


@pytest.fixture
def sites(tmp_path: Path) -> Path:
    return policy_sites(tmp_path, work_root=tmp_path / "work")


def jobs_in_store() -> int:
    return int(open_store().connect().execute("SELECT count(*) FROM jobs").fetchone()[0])


def need(site: str, sites: Path) -> None:
    if site in SERVICE:
        if SERVICE[site]:
            require_service(SERVICE[site])
    else:
        require_cluster(cluster_of(site.removesuffix("-policy")))
    if site not in Catalogue.load(sites).sites:
        pytest.fail(f"{site} is missing: examples/sites.yaml lacks {site.removesuffix('-policy')}")


@pytest.mark.parametrize("site", [*SLURM_POLICY_SITES, *(["htcondor-local-policy"] if HOST_SELECTED else [])])
def test_user_outside_the_groups_is_denied_before_submission(site: str, sites: Path) -> None:
    need(site, sites)
    login("carol")  # groups: /guests
    out = esap("submit", "--site", site, "--", "true", sites=sites)
    assert out.returncode == 3, out.stderr
    assert f"site {site}: policy {sites}:" in out.stderr
    assert "admits only groups [/escape/cta, /escape/lofar]" in out.stderr
    assert "carol is in groups [/guests]" in out.stderr
    assert jobs_in_store() == 0
    decisions = open_store().policy_decisions()
    assert [(d["site"], d["subject"], d["groups"], d["allowed"]) for d in decisions] == [
        (site, "carol", ["/guests"], False)]


def test_the_jdl_front_is_held_to_the_same_policy(sites: Path, tmp_path: Path) -> None:
    jdl = tmp_path / "job.jdl"
    jdl.write_text('[\n  Executable = "/bin/echo";\n  Arguments = "hello";\n  StdOutput = "out.txt";\n'
                   '  OutputSandbox = {"out.txt"};\n]\n')
    login("carol")
    out = esap("submit", "--site", "local-policy", str(jdl), sites=sites, cwd=tmp_path)
    assert out.returncode == 3, out.stderr
    assert "admits only groups" in out.stderr and "carol is in groups [/guests]" in out.stderr
    assert jobs_in_store() == 0


@pytest.mark.parametrize("site", SLURM_POLICY_SITES)
def test_billed_account_reaches_slurm(site: str, sites: Path) -> None:
    need(site, sites)
    login("alice")  # /escape/cta -> account cta
    out = esap("run", "--site", site, "--json", "--", "sh", "-c", "echo $SLURM_JOB_ACCOUNT", sites=sites)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert Path(record["stdout"]).read_text().strip() == "cta"
    assert sacct_account(record["native_id"], cluster_of(site.removesuffix("-policy"))) == "cta"
    decision = open_store().policy_decisions()[-1]
    assert decision["allowed"] and decision["subject"] == "alice"
    assert "group /escape/cta" in decision["rule"] and "account=cta" in decision["rule"]

    too_big = esap("submit", "--site", site, "--cores", "2", "--", "true", sites=sites)
    assert too_big.returncode == 3
    assert "2 cores > max_cores 1 exceeds policy" in too_big.stderr and "(group /escape/cta)" in too_big.stderr


def sacct_account(native_id: str, cluster: Cluster) -> str:
    deadline = time.monotonic() + 60
    while True:  # slurmdbd learns of a job a moment after it ends
        out = subprocess.run([cluster.command("sacct"), "-n", "-X", "-P", "-j", native_id, "-o", "account"],
                             capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        if out or time.monotonic() > deadline:
            return out
        time.sleep(1)


def test_accounting_group_in_the_htcondor_job_ad(sites: Path) -> None:
    need("htcondor-local-policy", sites)
    login("alice")
    out = esap("run", "--site", "htcondor-local-policy", "--json", "--", "sh", "-c",
               'grep -E "^(AcctGroup|AccountingGroup) " "$_CONDOR_JOB_AD"', sites=sites)
    assert out.returncode == 0, out.stderr
    ad = Path(json.loads(out.stdout)["stdout"]).read_text()
    assert 'AcctGroup = "group_cta"' in ad
    assert 'AccountingGroup = "group_cta.' in ad


def test_failed_refresh_submits_nothing(sites: Path) -> None:
    first = login("alice", client_id="ci-short")
    assert first.refresh_token
    client("ci-short").revoke(first.refresh_token)
    time.sleep(max(0.0, first.expires_at - time.time()) + 1.5)
    out = esap("submit", "--site", "local-policy", "--", "true", sites=sites,
               env={"ESAP_OIDC_CLIENT_ID": "ci-short"})
    assert out.returncode == 3
    assert "refresh was refused" in out.stderr and "run esap login" in out.stderr
    assert first.refresh_token not in out.stderr and first.access_token not in out.stderr
    assert jobs_in_store() == 0
    assert open_store().policy_decisions()[-1]["allowed"] is False


def test_no_token_means_no_submission_on_a_policy_site(sites: Path) -> None:
    out = esap("submit", "--site", "local-policy", "--", "true", sites=sites)
    assert out.returncode == 3 and "no platform token: run esap login" in out.stderr
    assert jobs_in_store() == 0


def test_site_without_policy_needs_no_token(sites: Path) -> None:
    out = esap("run", "--site", "local", "--", "echo", "hi", sites=sites)
    assert out.returncode == 0, out.stderr
    assert open_store().policy_decisions() == []


def test_billing_by_group_then_subject_in_process(sites: Path) -> None:
    site = Catalogue.load(sites).get("local-policy")
    store = open_store()
    login("bob")  # /escape/lofar -> account lofar; the subject mapping bills bob to esap
    spec = make_spec(["true"])
    admitted = authorize(site, [spec, spec], run_id="r-policy", store=store)
    assert [(s.account, s.accounting_group) for s in admitted] == [("esap", "group_lofar")] * 2
    login("alice")
    admitted = authorize(site, [spec], run_id="r-policy", store=store)
    assert (admitted[0].account, admitted[0].walltime_s) == ("cta", 600)  # group max walltime applied
    assert [d["allowed"] for d in store.policy_decisions("r-policy")] == [True, True]
    assert AuthConfig(issuer=ISSUER).issuer == ISSUER


def test_policy_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "s:\n"
        "  backend: local\n"
        "  policy:\n"
        "    groups:\n"
        "      /escape/cta:\n"
        "        acount: cta\n"
    )
    out = esap("sites", sites=bad)
    assert out.returncode == 2
    assert f"{bad}:6: s.policy.groups./escape/cta.acount: unknown key" in out.stderr
    bad.write_text("s:\n  backend: local\n  policy:\n    groups:\n      /a: {max_cores: many}\n")
    out = esap("sites", sites=bad)
    assert out.returncode == 2 and f"{bad}:5:" in out.stderr and "max_cores" in out.stderr
    bad.write_text("s:\n  backend: local\n  credentials:\n    slurm_jwt: {env: A, file: b}\n")
    out = esap("sites", sites=bad)
    assert out.returncode == 2 and f"{bad}:4: s.credentials.slurm_jwt: give exactly one" in out.stderr
    bad.write_text("s:\n  backend: local\n  policy:\n    issuer: http://iam.example.org/\n")
    out = esap("sites", sites=bad)
    assert out.returncode == 2 and "refused except on loopback" in out.stderr


def test_jdl_virtual_organisation_limits_the_groups_that_count(sites: Path) -> None:
    site = Catalogue.load(sites).get("local-policy")
    store = open_store()
    login("alice")  # /escape and /escape/cta
    admitted = authorize(site, [make_spec(["true"], labels={"vo": "escape"})], run_id="r-vo", store=store)
    assert admitted[0].account == "cta"
    with pytest.raises(PolicyDenied, match="VirtualOrganisation is lofar-vo"):
        authorize(site, [make_spec(["true"], labels={"vo": "lofar-vo"})], run_id="r-vo", store=store)
    assert [d["allowed"] for d in store.policy_decisions("r-vo")] == [True, False]
