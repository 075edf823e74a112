"""`esap report RUN --ro-crate DIR`: a run as a Process / Workflow Run RO-Crate, checked by roc-validator."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from tests.support import esap, require_service

from .crate_validation import validate
from .test_report import run_local_jobs


def graph(crate: Path) -> dict[str, dict[str, Any]]:
    document = json.loads((crate / "ro-crate-metadata.json").read_text())
    return {entity["@id"]: entity for entity in document["@graph"]}


def ids(value: Any) -> list[str]:
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def check_job_actions(entities: dict[str, dict[str, Any]], report: dict[str, Any]) -> None:
    """Every job is an action with its site, scheduler id, times, status and exit code."""
    for job in report["jobs"]:
        action = entities[f"#job-{job['job_id']}"]
        assert action["@type"] == "CreateAction"
        assert entities[ids(action["location"])[0]]["name"] == job["site"]
        facts = {entities[i]["propertyID"]: entities[i]["value"] for i in ids(action["additionalProperty"])}
        assert facts["scheduler job id"] == job["native_id"] and facts["site"] == job["site"]
        if job["exit_code"] is not None:
            assert facts["exit code"] == job["exit_code"]
        assert action["endTime"] >= action["startTime"]
        status = "Completed" if job["state"] == "completed" else "Failed"
        assert ids(action["actionStatus"]) == [f"http://schema.org/{status}ActionStatus"]
        usage = {entities[i]["propertyID"]: entities[i] for i in ids(action.get("resourceUsage", []))}
        if job["wall_s"] is not None:
            assert usage["wallTime"]["value"] == job["wall_s"] and usage["wallTime"]["unitText"] == "s"


def check_outputs(crate: Path, entities: dict[str, dict[str, Any]], outputs: list[Path]) -> None:
    """Each output is in the crate (copied), listed as a result of the run, with its SHA-256."""
    (run,) = [e for e in entities.values() if e["@id"].startswith("#run-")]
    results = {entities[i]["alternateName"]: entities[i] for i in ids(run["result"])}
    assert sorted(results) == sorted(str(p) for p in outputs)
    for original in outputs:
        entity = results[str(original)]
        expected = hashlib.sha256(original.read_bytes()).hexdigest()
        assert entity["sha256"] == expected
        assert hashlib.sha256((crate / entity["@id"]).read_bytes()).hexdigest() == expected


def test_a_run_without_a_workflow_is_a_valid_process_run_crate(state_dir: Path, tmp_path: Path) -> None:
    run_id = run_local_jobs([0.3, 1], failing=1)
    crate = tmp_path / "crate"

    result = esap("report", run_id, "--ro-crate", str(crate))

    assert result.returncode == 0, result.stderr
    assert validate(crate, "process-run-crate-0.5") == []
    entities = graph(crate)
    assert ids(entities["./"]["conformsTo"]) == ["https://w3id.org/ro/wfrun/process/0.5"]
    check_job_actions(entities, json.loads(esap("report", run_id, "--json").stdout))
    failed = [e for e in entities.values() if e.get("actionStatus") == {"@id": "http://schema.org/FailedActionStatus"}]
    assert [e["error"] for e in failed if e["@id"].startswith("#job-")] == ["exit code 3"]

    # the validator does find a broken crate: the run's action without the tool it ran
    document = json.loads((crate / "ro-crate-metadata.json").read_text())
    for entity in document["@graph"]:
        entity.pop("instrument", None)
    (crate / "ro-crate-metadata.json").write_text(json.dumps(document))
    assert validate(crate, "process-run-crate-0.5") != []


def test_ro_crate_of_an_unknown_run_is_one_line_and_exit_2(state_dir: Path, tmp_path: Path) -> None:
    result = esap("report", "r0123456789a", "--ro-crate", str(tmp_path / "crate"))

    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert not (tmp_path / "crate").exists()


def test_a_container_job_names_its_image_as_the_site_ran_it(state_dir: Path, tmp_path: Path) -> None:
    require_service("containers")
    ran = esap("run", "--json", "--site", "local", "--container", "esap-test", "--", "true", cwd="/tmp")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run"]

    result = esap("report", run_id, "--ro-crate", str(tmp_path / "crate"))

    assert result.returncode == 0, result.stderr
    assert validate(tmp_path / "crate", "process-run-crate-0.5") == []
    entities = graph(tmp_path / "crate")
    (action,) = [e for e in entities.values() if e["@type"] == "CreateAction" and e["@id"].startswith("#job-")]
    image = entities[ids(action["containerImage"])[0]]
    # examples/sites.yaml maps esap-test to localhost/esap-test:latest on the local site
    assert (image["registry"], image["name"], image["tag"]) == ("localhost", "esap-test", "latest")
    assert ids(image["additionalType"]) == ["https://w3id.org/ro/terms/workflow-run#DockerImage"]


def test_a_jdl_run_lists_its_sandboxes_as_the_runs_inputs_and_outputs(state_dir: Path, tmp_path: Path) -> None:
    from esap_executors.submitter import run_id_for

    (tmp_path / "in.txt").write_text("3\n1\n2\n")
    jdl = tmp_path / "sort.jdl"
    jdl.write_text('Executable = "/usr/bin/sort"; StdInput = "in.txt"; InputSandbox = {"in.txt"};\n'
                   'StdOutput = "sorted.txt"; StdError = "sorted.txt"; OutputSandbox = {"sorted.txt"};\n')
    ran = esap("run", str(jdl), "--site", "local", "--run-id", "jdl-crate", "--output-dir", str(tmp_path / "out"),
               cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    run_id = run_id_for("jdl-crate")
    crate = tmp_path / "crate"

    result = esap("report", run_id, "--ro-crate", str(crate))

    assert result.returncode == 0, result.stderr
    assert validate(crate, "workflow-run-crate-0.5") == []
    entities = graph(crate)
    (run,) = [e for e in entities.values() if e["@id"].startswith("#run-")]
    (given,) = [entities[i] for i in ids(run["object"])]
    assert given["alternateName"] == str(tmp_path / "in.txt") and given["name"] == "in.txt"
    assert given["sha256"] == hashlib.sha256(b"3\n1\n2\n").hexdigest()
    check_outputs(crate, entities, [tmp_path / "out" / "sorted.txt"])
