"""`esap catalogue list/show` against the real ESAP gateway, whose OSSR harvest reads the Zenodo stand-in."""

from __future__ import annotations

import json
import socket

import requests

from tests.esap.conftest import GATEWAY
from tests.esap.zenodo_standin import ZenodoStandIn
from tests.support import esap

IDA_FIXTURES = {"ida/csic-iaa-hcg-16-workflow", "ida/cds-mocpy", "ida/astron-vo-apertif",
                "ida/apertif-visualization", "ida/zooniverse-muon-hunters", "ida/cta-gammapy-example", "ida/topcat"}
BATCH_FIXTURES = {"batch/cta-monte-carlo-generation", "batch/concordia"}
OSSR_RECORDS = {"ossr/7024021", "ossr/6340441", "ossr/5524913", "ossr/8146211", "ossr/4923992"}


def listed(result: object) -> dict[str, dict[str, object]]:
    assert getattr(result, "returncode", None) == 0, getattr(result, "stderr", "")
    return {entry["id"]: entry for entry in json.loads(result.stdout)}  # type: ignore[attr-defined]


def test_esap_software_is_the_gateway_fixtures_plus_its_ossr_harvest(cli_env: dict[str, str]) -> None:
    entries = listed(esap("catalogue", "list", "--source", "esap", "--json", env=cli_env))
    # the IDA search harvests the OSSR for jupyter-notebook records: only the HCG-16 record carries it
    assert set(entries) == IDA_FIXTURES | BATCH_FIXTURES | {"ossr/7024021"}
    assert entries["ida/topcat"]["kind"] == "desktop"
    assert entries["ida/astron-vo-apertif"]["filepath"] == "PyVO.ipynb"
    assert entries["batch/concordia"]["kind"] == "container"
    assert entries["batch/concordia"]["repository"] is None  # the fixture's url is the string "None"
    harvested = entries["ossr/7024021"]  # ESAP's `workflow: notebook` (not workflowtype) normalised
    assert harvested["kind"] == "notebook"
    assert harvested["repository"] == "https://github.com/AMIGA-IAA/hcg-16.git"


def test_keyword_is_filtered_here_because_the_gateway_ignores_it(cli_env: dict[str, str]) -> None:
    raw = requests.get(GATEWAY + "ida/workflows/search", params={"keyword": "gammapy"}, timeout=60).json()
    assert raw["count"] == 0 and len(raw["results"]) == 8  # ESAP's quirks: keyword ignored, count 0
    entries = listed(esap("catalogue", "list", "--source", "esap", "--keyword", "gammapy", "--json", env=cli_env))
    assert set(entries) == {"ida/cta-gammapy-example"}
    text = esap("catalogue", "list", "--keyword", "galaxies", env=cli_env)
    assert text.returncode == 0, text.stderr
    assert [line.split()[0] for line in text.stdout.splitlines()[1:]] == ["ossr/7024021"]


def test_both_sources_merge_the_ossr_read_directly(cli_env: dict[str, str]) -> None:
    entries = listed(esap("catalogue", "list", "--json", env=cli_env))
    assert set(entries) == IDA_FIXTURES | BATCH_FIXTURES | OSSR_RECORDS
    hcg = entries["ossr/7024021"]  # read directly: the record's codemeta.json, with ORCIDs and the DOI
    assert hcg["has_codemeta"] and hcg["identifier"] == "https://doi.org/10.5281/zenodo.7024021"
    assert {"name": "Michael Jones", "orcid": "https://orcid.org/0000-0002-5434-4904"} in hcg["authors"]
    assert entries["ossr/4923992"]["has_codemeta"] is False


def test_an_esap_500_falls_back_to_the_ossr_and_says_so(zenodo: ZenodoStandIn, cli_env: dict[str, str]) -> None:
    zenodo.down = True  # the gateway's harvest fails: ESAP answers 500 for the whole IDA search
    with ZenodoStandIn() as direct:  # the OSSR the client reads is up
        result = esap("catalogue", "list", "--source", "esap", "--json", env={**cli_env, "ESAP_OSSR_URL": direct.api})
    entries = listed(result)
    assert "answered 500" in result.stderr and "the OSSR was read directly instead" in result.stderr
    assert set(entries) == BATCH_FIXTURES | OSSR_RECORDS  # ESAP's own IDA entries are lost with the 500


def test_an_esap_500_with_the_ossr_down_too_is_one_line_exit_3(zenodo: ZenodoStandIn,
                                                               cli_env: dict[str, str]) -> None:
    zenodo.down = True
    result = esap("catalogue", "list", "--source", "esap", env=cli_env)
    assert result.returncode == 3
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "answered 500" in result.stderr and "the OSSR is unreachable too" in result.stderr


def test_esap_down_is_one_line_exit_3(cli_env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = esap("catalogue", "list", "--source", "esap", env={**cli_env, "ESAP_GATEWAY_URL": f"http://127.0.0.1:{closed}"})
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"esap: error: ESAP ida software unreachable at http://127.0.0.1:{closed}/esap-api/ida/workflows/search: "
        "ConnectionError"]


def test_show_finds_entries_by_exact_id(cli_env: dict[str, str]) -> None:
    shown = esap("catalogue", "show", "ida/cta-gammapy-example", env=cli_env)
    assert shown.returncode == 0, shown.stderr
    entry = json.loads(shown.stdout)
    assert entry["ref"] == "master" and entry["filepath"] == "gammapy-tutorials/notebooks-0.18.2/cta.ipynb"
    for unknown in ("ida/cta-gammapy", "ida/CTA-gammapy-example", "ossr/999", "gammapy"):
        result = esap("catalogue", "show", unknown, env=cli_env)
        assert result.returncode == 2, (unknown, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "unknown entry" in result.stderr
