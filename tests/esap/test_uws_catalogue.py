"""A UWS job's workflow given as a software-catalogue entry: the worker's parameters, the CWL tool it
writes from its catalogue (the real gateway, the OSSR at the Zenodo stand-in), and that tool run by
the command line the worker starts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from esap_executors.errors import BadInput
from esap_executors.esap import uws_run
from esap_executors.esap.uws_parameters import binding, parse, to_parameters
from tests.cwl.helpers import catalogue_with_images
from tests.support import esap, require_service

ENTRY = "ossr/6340441"


@pytest.fixture
def worker_env(cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """The worker's catalogue configuration, as esap.sh gives it to the Celery worker."""
    for key, value in cli_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv(uws_run.WORKDIR_ENV, str(tmp_path / "uws"))
    return cli_env


def _cwl_request(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return [("type", "esap-executors"), ("front", "cwl"), *pairs]


def test_the_worker_writes_the_entrys_tool_as_esap_catalogue_cwl_does(worker_env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    request = parse(_cwl_request(("workflow", f"esap-catalogue:{ENTRY}"), ("image", "busybox")))
    written = uws_run.materialise(request.workflow, tmp_path)
    assert written.name == "ossr-6340441.cwl"
    expected = esap("catalogue", "cwl", ENTRY, "--image", "busybox", env=worker_env)
    assert expected.returncode == 0, expected.stderr
    assert written.read_text() == expected.stdout
    tool = yaml.safe_load(written.read_text())
    assert tool["class"] == "CommandLineTool"
    assert tool["hints"]["DockerRequirement"] == {"dockerPull": "busybox"}


def test_the_entrys_tool_runs_in_its_image_through_the_workers_front(worker_env: dict[str, str], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    require_service("containers")
    request = parse(_cwl_request(("workflow", f"esap-catalogue:{ENTRY}"), ("image", "busybox"),
                                 ("inputs", "job.yml"),
                                 ("inputs_content", yaml.safe_dump({"command": ["readlink", "-f", "/bin/sh"]})),
                                 ("site", "local")))
    directory = uws_run.job_directory("1-catalogue")
    for source in (request.workflow, request.inputs):
        assert source is not None
        uws_run.materialise(source, directory.inputs)
    sites = catalogue_with_images(tmp_path / "sites.yaml", {"local": {"busybox": "localhost/busybox:ci"}})
    monkeypatch.setenv("ESAP_SITES", str(sites))
    front = uws_run.start_front(uws_run.front_argv(request, directory, f"test-uws-catalogue-{tmp_path.name}"),
                                directory, None)
    assert front.wait(timeout=600) == 0, directory.stderr.read_text()[-3000:]
    outputs = json.loads(directory.stdout.read_text())
    # busybox's /bin/sh is busybox itself; this machine's is dash: the entry's command ran in the image
    assert Path(outputs["output"]["path"]).read_text().strip() == "/bin/busybox"
    results = uws_run.outputs(request, directory)
    assert [r["key"] for r in results] == ["output"]  # what the worker reports as the job's results


def test_an_unknown_entry_is_one_line_naming_it(worker_env: dict[str, str], tmp_path: Path) -> None:
    request = parse(_cwl_request(("workflow", "esap-catalogue:ossr/1")))
    with pytest.raises(BadInput) as caught:
        uws_run.materialise(request.workflow, tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("workflow: unknown entry ossr/1")
    assert not list(tmp_path.iterdir())  # no tool written


def test_an_entry_with_nothing_to_run_asks_for_an_image(worker_env: dict[str, str], tmp_path: Path) -> None:
    request = parse(_cwl_request(("workflow", f"esap-catalogue:{ENTRY}")))
    with pytest.raises(BadInput) as caught:
        uws_run.materialise(request.workflow, tmp_path)
    assert str(caught.value).startswith("workflow: ossr/6340441 (supernovae) has no notebook, command line or "
                                        "container image")
    assert "--image IMAGE" in str(caught.value)


@pytest.mark.parametrize(("pairs", "expected"), [
    ([("front", "snakemake"), ("workflow", f"esap-catalogue:{ENTRY}")],
     "workflow: a catalogue entry is a CWL tool: front 'snakemake' cannot run esap-catalogue:ossr/6340441"),
    ([("front", "cwl"), ("workflow", "esap-catalogue:ossr")], "workflow: 'ossr' is not a catalogue entry"),
    ([("front", "cwl"), ("workflow", "esap-catalogue:ossr/1/../x")], "workflow: 'ossr/1/../x' is not a catalogue"),
    ([("front", "cwl"), ("workflow", "https://example.org/tool.cwl"), ("image", "busybox")],
     "image: only with esap-catalogue:ENTRY as the workflow"),
])
def test_bad_catalogue_parameters_name_the_parameter(pairs: list[tuple[str, str]], expected: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse(pairs)
    assert str(caught.value).startswith(expected)


def test_the_entry_and_its_image_are_what_the_sealed_token_is_bound_to() -> None:
    request = parse(_cwl_request(("workflow", f"esap-catalogue:{ENTRY}"), ("image", "busybox")))
    parameters = to_parameters(request)
    assert {"key": "workflow", "value": f"esap-catalogue:{ENTRY}"} in parameters
    assert {"key": "image", "value": "busybox"} in parameters
    assert parse((p["key"], p["value"]) for p in parameters) == request
    other_image = parse(_cwl_request(("workflow", f"esap-catalogue:{ENTRY}"), ("image", "alpine")))
    assert binding(other_image) != binding(request)


@pytest.mark.parametrize(("args", "expected"), [
    (["--front", "snakemake", "--catalogue-entry", ENTRY],
     "--catalogue-entry: a catalogue entry is a CWL tool: give --front cwl, not snakemake"),
    (["--front", "cwl", "--image", "busybox", "tool.cwl"], "--image: only with --catalogue-entry ENTRY"),
    (["--front", "cwl", "--catalogue-entry", "ossr"], "--catalogue-entry: 'ossr' is not a catalogue entry"),
])
def test_submit_refuses_a_bad_catalogue_entry_before_anything_is_sent(args: list[str], expected: str) -> None:
    done = esap("uws", "submit", "--gateway", "http://127.0.0.1:9/esap-api/", *args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert expected in done.stderr
