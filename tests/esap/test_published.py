"""cwl/esap is what `esap catalogue publish --out cwl/esap` writes today from the gateway's fixtures
and the recorded OSSR records: a change to either, or to the mapping, without re-publishing fails here."""

from __future__ import annotations

from pathlib import Path

from tests.esap.zenodo_standin import ZenodoStandIn
from tests.support import ROOT, esap

PUBLISHED = ROOT / "cwl" / "esap"


def files_of(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_cwl_esap_is_not_stale(tmp_path: Path, cli_env: dict[str, str]) -> None:
    fresh = tmp_path / "esap"
    result = esap("catalogue", "publish", "--out", str(fresh), env=cli_env)
    assert result.returncode == 0, result.stderr
    shipped = files_of(PUBLISHED)
    assert set(shipped) == set(files_of(fresh)), "cwl/esap is stale: run esap catalogue publish --out cwl/esap"
    stale = [name for name, text in files_of(fresh).items() if shipped[name] != text]
    assert not stale, f"cwl/esap is stale ({', '.join(stale)}): run esap catalogue publish --out cwl/esap"


def test_publish_refuses_a_partial_esap_catalogue(tmp_path: Path, cli_env: dict[str, str],
                                                  zenodo: ZenodoStandIn) -> None:
    out = tmp_path / "esap"
    zenodo.down = True  # ESAP's IDA search answers 500; the OSSR read directly answers
    with ZenodoStandIn() as direct:
        result = esap("catalogue", "publish", "--out", str(out), env={**cli_env, "ESAP_OSSR_URL": direct.api})
    assert result.returncode == 3
    assert "nothing published" in result.stderr
    assert not out.exists()
