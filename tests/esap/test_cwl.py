"""Entries as CWL tools: what each kind becomes, cwltool --validate on every one, and bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import VENV_BIN, esap

DATA = Path(__file__).parent / "data"
STAR_COUNTS = DATA / "star-counts"


def validate(tool: Path) -> None:
    checked = subprocess.run([str(VENV_BIN / "cwltool"), "--validate", str(tool)], capture_output=True, text=True,
                             timeout=300, check=False)
    assert checked.returncode == 0, checked.stderr[-2000:]
    assert "Warning" not in checked.stderr, checked.stderr[-2000:]


def test_every_published_tool_is_valid_cwl(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "tools"
    result = esap("catalogue", "publish", "--out", str(out), env=cli_env)
    assert result.returncode == 0, result.stderr
    index = yaml.safe_load((out / "index.yaml").read_text())
    assert set(index["published"]) == {"ida/csic-iaa-hcg-16-workflow", "ida/cds-mocpy", "ida/astron-vo-apertif",
                                       "ida/apertif-visualization", "ida/zooniverse-muon-hunters",
                                       "ida/cta-gammapy-example", "ossr/7024021"}
    assert "desktop application" in index["skipped"]["ida/topcat"]
    assert "without an image" in index["skipped"]["batch/concordia"]
    assert "skipped ida/topcat" in result.stderr
    for relative in index["published"].values():
        validate(out / relative)
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.cwl")) == sorted(index["published"].values())


def test_a_notebook_entry_becomes_a_papermill_tool(tmp_path: Path, cli_env: dict[str, str]) -> None:
    target = tmp_path / "gammapy.cwl"
    result = esap("catalogue", "cwl", "ida/cta-gammapy-example", "-o", str(target), env=cli_env)
    assert result.returncode == 0, result.stderr
    tool = yaml.safe_load(target.read_text())
    assert tool["baseCommand"] == ["papermill"]
    assert tool["inputs"]["notebook"]["default"]["location"] == (
        "https://git.astron.nl/astron-sdc/escape-wp5/workflows/cta-example/-/raw/master/"
        "gammapy-tutorials/notebooks-0.18.2/cta.ipynb")
    assert tool["outputs"]["executed_notebook"]["outputBinding"]["glob"] == "executed.ipynb"
    assert tool["s:codeRepository"] == "https://git.astron.nl/astron-sdc/escape-wp5/workflows/cta-example"
    assert tool["s:version"] == "master"
    assert {"package": "papermill"} in tool["hints"]["SoftwareRequirement"]["packages"]


def test_ossr_metadata_reaches_the_tool(cli_env: dict[str, str]) -> None:
    result = esap("catalogue", "cwl", "ossr/7024021", env=cli_env)
    assert result.returncode == 0, result.stderr
    tool = yaml.safe_load(result.stdout)
    assert tool["label"] == "Pipeline for HCG-16 Project"
    assert tool["s:identifier"] == "https://doi.org/10.5281/zenodo.7024021"
    assert tool["s:license"] == "https://spdx.org/licenses/MIT"
    assert tool["s:version"] == "1.2.1"
    assert {"s:name": "Michael Jones", "s:identifier": "https://orcid.org/0000-0002-5434-4904"} in tool["s:author"]
    assert tool["s:runtimePlatform"] == ["Python", "Docker"]
    assert "jupyter-notebook" in tool["s:keywords"]


def test_a_software_with_an_image_becomes_a_container_tool(cli_env: dict[str, str]) -> None:
    result = esap("catalogue", "cwl", "ossr/6340441", "--image", "busybox", env=cli_env)
    assert result.returncode == 0, result.stderr
    tool = yaml.safe_load(result.stdout)
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": "busybox"}
    assert tool["hints"]["SoftwareRequirement"] == {"packages": [
        {"package": "supernovae", "version": ["v0.3.3"], "specs": ["https://doi.org/10.5281/zenodo.6340441"]}]}
    assert tool["inputs"]["command"]["type"] == "string[]"


def test_an_authors_codemeta_with_its_notebook(tmp_path: Path) -> None:
    target = tmp_path / "star-counts.cwl"
    result = esap("catalogue", "cwl", "--codemeta", str(STAR_COUNTS / "codemeta.json"),
                  "--notebook", str(STAR_COUNTS / "star_counts.ipynb"), "-o", str(target))
    assert result.returncode == 0, result.stderr
    validate(target)
    tool = yaml.safe_load(target.read_text())
    assert tool["hints"]["ResourceRequirement"] == {"coresMin": 1, "ramMin": 512}  # 1 core, 512 MB
    assert {name: spec.get("default") for name, spec in tool["inputs"].items() if name not in
            ("notebook", "parameters_file")} == {"stars": 100, "seed": 7, "field": "test-field", "bright_only": "False"}
    assert tool["inputs"]["stars"]["type"] == "int" and tool["inputs"]["field"]["type"] == "string"


@pytest.mark.parametrize(("arguments", "code", "message"), [
    (["ida/topcat"], 2, "ida/topcat (TOPCAT) is a desktop application: no command line to publish"),
    (["batch/concordia"], 2, "batch container entry without an image"),
    (["ossr/4923992"], 2, "has no codemeta.json in its Zenodo record"),
    (["ossr/6340441"], 2, "nothing to run"),
    (["ida/no-such-entry"], 2, "unknown entry ida/no-such-entry"),
    (["--codemeta", str(DATA / "codemeta_not_valid.json")], 2,
     "invalid codemeta: required keys missing: softwareVersion, datePublished, maintainer, readme"),
    (["--codemeta", str(DATA / "missing.json")], 2, "cannot read"),
    (["--codemeta", str(STAR_COUNTS / "codemeta.json"), "--notebook", str(DATA / "missing.ipynb")], 2,
     "no such notebook"),
    (["ida/topcat", "--codemeta", str(STAR_COUNTS / "codemeta.json")], 2,
     "give one of ENTRY, --codemeta FILE, --batch-workflow FILE"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, cli_env: dict[str, str], arguments: list[str],
                                                   code: int, message: str) -> None:
    target = tmp_path / "tool.cwl"
    result = esap("catalogue", "cwl", *arguments, "-o", str(target), env=cli_env)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_a_notebook_without_repository_needs_its_notebook(tmp_path: Path) -> None:
    codemeta = json.loads((STAR_COUNTS / "codemeta.json").read_text())
    del codemeta["codeRepository"]
    source = tmp_path / "codemeta.json"
    source.write_text(json.dumps(codemeta))
    target = tmp_path / "tool.cwl"
    refused = esap("catalogue", "cwl", "--codemeta", str(source), "-o", str(target))
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("esap: error: ENTRY: codemeta/star-counts (star-counts) is a notebook entry "
                                      "without a repository (give its notebook with --notebook FILE)")
    assert not target.exists()
    given = esap("catalogue", "cwl", "--codemeta", str(source), "--notebook", str(STAR_COUNTS / "star_counts.ipynb"),
                 "-o", str(target))
    assert given.returncode == 0, given.stderr
    validate(target)


def test_a_batch_workflow_description_runs_in_its_singularity_image(tmp_path: Path) -> None:
    description = {"uuid": "7b0c5a6e-2f1d-4c1b-9a57-0d4f1b2b8e11", "type": "batch", "title": "CONCORDIA",
                   "description": "Containerized Corsika on DIRAC", "workflow": "",
                   "Parameters": {"singularity_image": "docker://busybox", "cputime": "3600",
                                  "output_file_name": "corsika.out", "job_name": "concordia",
                                  "group_name": "cta_user", "dirac_SE": "CC-IN2P3-Disk", "dirac_path": "/cta/user"}}
    source = tmp_path / "concordia.json"
    source.write_text(json.dumps(description))
    target = tmp_path / "concordia.cwl"
    result = esap("catalogue", "cwl", "--batch-workflow", str(source), "-o", str(target))
    assert result.returncode == 0, result.stderr
    validate(target)
    tool = yaml.safe_load(target.read_text())
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": "busybox"}
    assert tool["label"] == "CONCORDIA"
    del description["Parameters"]["singularity_image"]
    source.write_text(json.dumps(description))
    target.unlink()
    refused = esap("catalogue", "cwl", "--batch-workflow", str(source), "-o", str(target))
    assert refused.returncode == 2
    assert refused.stderr.strip() == (f"esap: error: {source}: Parameters.singularity_image: missing: "
                                      "the container the workflow runs in")
    assert not target.exists()


def test_esap_down_writes_nothing(tmp_path: Path, cli_env: dict[str, str]) -> None:
    target = tmp_path / "tool.cwl"
    result = esap("catalogue", "cwl", "ida/cds-mocpy", "-o", str(target),
                  env={**cli_env, "ESAP_GATEWAY_URL": "http://127.0.0.1:9/"})
    assert result.returncode == 3 and "unreachable" in result.stderr
    assert not target.exists()
