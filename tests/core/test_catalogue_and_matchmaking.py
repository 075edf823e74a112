from __future__ import annotations

import json
from pathlib import Path

from tests.support import esap

SITES = """\
small:
  backend: local
  options: {max_cores: 1}
  attributes:
    GlueCEInfoLRMSType: PBS
    GlueCEInfoTotalCPUs: 1
    GlueHostMainMemoryRAMSize: 2048
big:
  backend: local
  options: {max_cores: 2}
  attributes:
    GlueCEInfoLRMSType: PBS
    GlueCEInfoTotalCPUs: 64
    GlueHostMainMemoryRAMSize: 65536
other:
  backend: local
  attributes:
    GlueCEInfoLRMSType: LSF
    GlueCEInfoTotalCPUs: 128
    GlueHostMainMemoryRAMSize: 1024
"""


def test_requirements_and_rank_choose_and_explain(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(SITES)
    result = esap("match", "--requirements", 'other.GlueCEInfoLRMSType == "PBS" && other.GlueCEInfoTotalCPUs > 1',
                  "--rank", "other.GlueHostMainMemoryRAMSize", "--json", sites=sites)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [m["site"] for m in data["matched"]] == ["big"]
    assert data["rejected"]["small"] == ["other.GlueCEInfoTotalCPUs > 1 (GlueCEInfoTotalCPUs = 1)"]
    assert data["rejected"]["other"] == ['other.GlueCEInfoLRMSType == "PBS" (GlueCEInfoLRMSType = "LSF")']

    ranked = esap("match", "--requirements", "other.GlueCEInfoTotalCPUs >= 1",
                  "--rank", "other.GlueCEInfoTotalCPUs", "--json", sites=sites)
    assert [m["site"] for m in json.loads(ranked.stdout)["matched"]] == ["other", "big", "local", "small"]


def test_no_matching_site_is_bad_input_and_nothing_runs(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(SITES)
    marker = tmp_path / "ran"
    result = esap("run", "--requirements", "other.GlueCEInfoTotalCPUs > 1000", "--", "touch", str(marker),
                  sites=sites)
    assert result.returncode == 2
    assert "no site satisfies Requirements" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_catalogue_errors_name_file_line_and_field(tmp_path: Path) -> None:
    cases = {
        "local:\n  backend: local\n  shard_filesystem: true\n": (":3:", "local.shard_filesystem"),
        "a:\n  backend: pbs\n": (":2:", "unknown backend 'pbs'"),
        "a:\n  backend: local\n  limits:\n    max_walltime: forever\n": (":4:", "a.limits.max_walltime"),
        "a:\n  backend: local\n  options:\n    max_cores: many\n": (":4:", "a.options.max_cores"),
        "a: [1, 2\n": (":", "invalid YAML"),
    }
    for text, (line, words) in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(text)
        result = esap("sites", sites=path)
        assert result.returncode == 2, text
        assert str(path) + line in result.stderr and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_site_and_bad_resources_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    for args, words in (
        (["--site", "nowhere"], "unknown site 'nowhere'"),
        (["--cores", "-1"], "cores"),
        (["--mem", "2X"], "memory"),
        (["--walltime", "soon"], "walltime"),
    ):
        result = esap("run", *args, "--", "touch", str(marker))
        assert result.returncode == 2 and words in result.stderr, result.stderr
    assert not marker.exists()


def test_walltime_over_the_site_limit_is_refused(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("local:\n  backend: local\n  limits: {max_walltime: 1h}\n")
    result = esap("run", "--walltime", "2h", "--", "true", sites=sites)
    assert result.returncode == 2 and "walltime" in result.stderr and "limit" in result.stderr
