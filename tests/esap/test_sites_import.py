"""`esap sites import --esap URL`: the gateway's facilities against the registered backends."""

from __future__ import annotations

from pathlib import Path

import yaml

from esap_executors.backends import BACKEND_MODULES
from tests.support import EXAMPLE_SITES, esap


def test_import_prints_what_the_backends_can_serve_and_why_not(tmp_path: Path, gateway: str) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(EXAMPLE_SITES.read_text())
    before = sites.stat().st_mtime_ns
    result = esap("sites", "import", "--esap", gateway, sites=sites)
    assert result.returncode == 0, result.stderr
    comments = [line for line in result.stdout.splitlines() if line.startswith("#")]
    assert ("#   CTADIRAC (batch, DIRAC): not supported: DIRAC jobs need the DIRAC client and an x509 proxy "
            "(ESAP's Celery batch worker); esap-executors has no DIRAC backend") in comments
    for binder in ("MyBinder", "JIVE BinderHub", "SKAO BinderHub", "Rosetta @ INAF OATS"):
        assert f"#   {binder} (ida, jupyterhub): not a batch site: an interactive JupyterHub/BinderHub, " \
               "where notebooks are launched by URL" in comments
    printed = yaml.safe_load(result.stdout) or {}
    if "rosetta" in BACKEND_MODULES:  # the registry decides, not this project's assumptions
        assert printed["rosetta-inaf-oats"]["backend"] == "rosetta"
    else:
        assert printed == {}
        assert ("#   Rosetta @ INAF OATS (batch, rosetta): not yet supported: no 'rosetta' backend is registered "
                "in this esap-executors") in comments
    assert sites.stat().st_mtime_ns == before  # printed, never written into the user's catalogue


def test_import_needs_a_gateway(tmp_path: Path) -> None:
    result = esap("sites", "import", env={"ESAP_GATEWAY_URL": ""})
    assert result.returncode == 2
    assert result.stderr.strip() == "esap: error: --esap: give --esap URL (or set ESAP_GATEWAY_URL)"
    down = esap("sites", "import", "--esap", "http://127.0.0.1:9/")
    assert down.returncode == 3 and len(down.stderr.strip().splitlines()) == 1
