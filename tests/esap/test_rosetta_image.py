"""`esap catalogue cwl --rosetta-site SITE`: the tool's DockerRequirement is the image of the
software the real Rosetta of scripts/services/rosetta.sh registers (its runner, pushed to the
local registry by rosetta.sh), as `registry/image_name:image_tag` (esap.md §8)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import requests
import yaml

from tests.esap.test_cwl import STAR_COUNTS, validate
from tests.support import EXAMPLE_SITES, ROSETTA_PASSWORD, esap, require_service

pytestmark = pytest.mark.rosetta

RUNNER_IMAGE = "127.0.0.1:5010/esap-runner:ci"  # rosetta.sh: registry 127.0.0.1:$RS_REGISTRY_PORT, tag ci
MANIFESTS = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module")
def rosetta() -> None:
    require_service("rosetta")


def assert_one_line_nothing_written(result_stderr: str, folder: Path) -> None:
    assert len(result_stderr.strip().splitlines()) == 1, result_stderr
    assert list(folder.iterdir()) == []
    assert ROSETTA_PASSWORD.read_text().strip() not in result_stderr


def test_a_catalogue_entry_runs_in_the_rosetta_software_image(rosetta: None, tmp_path: Path,
                                                              cli_env: dict[str, str]) -> None:
    target = tmp_path / "supernovae.cwl"
    result = esap("catalogue", "cwl", "ossr/6340441", "--rosetta-site", "rosetta-slurm",
                  "--rosetta-software", "esap-runner", "-o", str(target), env=cli_env)
    assert result.returncode == 0, result.stderr
    validate(target)
    tool = yaml.safe_load(target.read_text())
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": RUNNER_IMAGE}
    assert tool["label"] == "supernovae"
    assert tool["inputs"]["command"]["type"] == "string[]"
    # the reference names an image the registry really holds
    registry, _, rest = RUNNER_IMAGE.partition("/")
    name, _, tag = rest.partition(":")
    manifest = requests.get(f"http://{registry}/v2/{name}/manifests/{tag}", headers={"Accept": MANIFESTS}, timeout=30)
    assert manifest.status_code == 200


def test_the_software_named_like_the_entry_is_found_without_naming_it(rosetta: None, tmp_path: Path) -> None:
    codemeta = json.loads((STAR_COUNTS / "codemeta.json").read_text())
    codemeta["name"] = "ESAP-Runner"  # Rosetta's software is esap-runner: names match ignoring case
    source = tmp_path / "codemeta.json"
    source.write_text(json.dumps(codemeta))
    result = esap("catalogue", "cwl", "--codemeta", str(source), "--rosetta-site", "rosetta-standalone")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["hints"]["DockerRequirement"] == {"dockerPull": RUNNER_IMAGE}


def test_an_unknown_software_names_what_rosetta_offers(rosetta: None, tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    result = esap("catalogue", "cwl", "ossr/6340441", "--rosetta-site", "rosetta-slurm",
                  "-o", str(out / "tool.cwl"), env=cli_env)
    assert result.returncode == 2, result.stderr
    prefix = "site rosetta-slurm has no software 'supernovae' (it offers: "
    assert prefix in result.stderr, result.stderr
    offered = result.stderr.split(prefix, 1)[1].split(")", 1)[0].split(", ")
    # what the service script registers; steps with their own image may add more
    assert {"esap-broken", "esap-runner"} <= set(offered) and offered == sorted(offered)
    assert_one_line_nothing_written(result.stderr, out)


def test_an_unknown_tag_names_the_tags(rosetta: None, tmp_path: Path) -> None:
    result = esap("catalogue", "cwl", "--codemeta", str(STAR_COUNTS / "codemeta.json"), "--rosetta-site",
                  "rosetta-slurm", "--rosetta-software", "esap-runner", "--rosetta-tag", "v9",
                  "-o", str(tmp_path / "tool.cwl"))
    assert result.returncode == 2, result.stderr
    assert "software 'esap-runner' on site rosetta-slurm has no tag 'v9' (its tags: ci)" in result.stderr
    assert_one_line_nothing_written(result.stderr, tmp_path)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_rosetta_down_is_exit_3_and_writes_nothing(tmp_path: Path) -> None:
    sites = yaml.safe_load(EXAMPLE_SITES.read_text())
    site = sites["rosetta-slurm"]
    site["options"]["url"] = f"http://127.0.0.1:{_closed_port()}"
    site["credentials"]["rosetta_login"] = {"username": "esap", "password": {"file": str(tmp_path / "password")}}
    (tmp_path / "password").write_text("not-the-real-one\n")
    (tmp_path / "password").chmod(0o600)
    catalogue = tmp_path / "sites.yaml"
    catalogue.write_text(yaml.safe_dump({"rosetta-down": site}))
    out = tmp_path / "out"
    out.mkdir()
    result = esap("catalogue", "cwl", "--codemeta", str(STAR_COUNTS / "codemeta.json"), "--rosetta-site",
                  "rosetta-down", "-o", str(out / "tool.cwl"), sites=catalogue)
    assert result.returncode == 3, result.stderr
    assert "unreachable" in result.stderr
    assert "not-the-real-one" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(("arguments", "message"), [
    (["--rosetta-site", "local"], "site local (local) registers no software images"),
    (["--rosetta-site", "rosetta-slurm", "--image", "busybox"], "give --image or --rosetta-site, not both"),
    (["--rosetta-software", "esap-runner"], "--rosetta-software and --rosetta-tag need --rosetta-site SITE"),
    (["--rosetta-site", "no-such-site"], "unknown site 'no-such-site'"),
])
def test_bad_options_are_one_line(tmp_path: Path, arguments: list[str], message: str) -> None:
    result = esap("catalogue", "cwl", "--codemeta", str(STAR_COUNTS / "codemeta.json"), *arguments,
                  "-o", str(tmp_path / "tool.cwl"))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert list(tmp_path.iterdir()) == []
