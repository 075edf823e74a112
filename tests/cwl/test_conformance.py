"""The `required` tag of the CWL v1.2 conformance suite through `esap-cwltool --executor esap`
on every backend passes exactly the tests stock cwltool passes on the same machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cwl.conformance import SuiteResult, run_suite
from tests.support import EXAMPLE_SITES, VENV_BIN, require_conformance_suite, require_service

# htcondor-transfer: the same pool without a shared filesystem (HTCondor file transfer)
SITES = {"local": None, "slurm-local": "slurm", "htcondor-local": "htcondor", "htcondor-transfer": "htcondor"}


@pytest.fixture(scope="module")
def suite() -> Path:
    return require_conformance_suite()


@pytest.fixture(scope="module")
def stock(suite: Path, tmp_path_factory: pytest.TempPathFactory) -> SuiteResult:
    """Stock cwltool's pass set, measured in this session on this machine."""
    junit = tmp_path_factory.mktemp("stock") / "junit.xml"
    result = run_suite(suite, str(VENV_BIN / "cwltool"), ["--no-container"], junit, jobs=2)
    assert result.passed, f"stock cwltool passed nothing:\n{result.log[-3000:]}"
    return result


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("site", list(SITES))
def test_required_tag_passes_exactly_what_stock_cwltool_passes(
    site: str, suite: Path, stock: SuiteResult, tmp_path: Path
) -> None:
    service = SITES[site]
    if service:
        require_service(service)
    result = run_suite(
        suite,
        str(VENV_BIN / "esap-cwltool"),
        ["--executor", "esap", "--site", site, "--no-container"],
        tmp_path / "junit.xml",
        jobs=2 if site == "local" else 6,  # scheduler latency, not CPU, bounds the remote sites
        env={"ESAP_SITES": str(EXAMPLE_SITES)},
    )
    lost = sorted(stock.passed - result.passed)
    gained = sorted(result.passed - stock.passed)
    assert not lost and not gained, (
        f"on {site}: {result.summary()} vs stock {stock.summary()}; "
        f"fail only here: {lost}; pass only here: {gained}\n{result.log[-4000:]}"
    )
