"""slurmrestd on every Slurm version: the newest API version the server describes is used, and
what esap sends is what that server's own OpenAPI document allows; every resource a job can ask
for (scratch space included, which v0.0.38 cannot express) reaches the controller."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from typing import Any

import jsonschema
import pytest
import requests

from esap_executors.errors import BadInput

from .conftest import Cluster, JobRequest, cluster_of, shell

pytestmark = pytest.mark.slurm

FULL = dict(cores=2, memory="200M", gpus=1, walltime="3m", scratch="100M", account="cta", qos="debug",
            partition="short")


def server_document(cluster: Cluster, url: str) -> dict[str, Any]:
    token = subprocess.run([cluster.command("scontrol"), "token", "username=root", "lifespan=300"],
                           capture_output=True, text=True, check=True).stdout.strip().removeprefix("SLURM_JWT=")
    response = requests.get(f"{url}/openapi/v3", headers={"X-SLURM-USER-NAME": "root", "X-SLURM-USER-TOKEN": token},
                            timeout=60)
    response.raise_for_status()
    return dict(response.json())


def submit_schema(document: Mapping[str, Any], path: str) -> dict[str, Any]:
    operation = document["paths"][path]["post"]
    schema = dict(operation["requestBody"]["content"]["application/json"]["schema"])
    schema["components"] = document["components"]  # "#/components/schemas/..." resolve from here
    return schema


def unknown_fields(value: Any, schema: Mapping[str, Any], document: Mapping[str, Any], where: str) -> list[str]:
    """Keys the schema does not describe (slurmrestd's schemas do not forbid them themselves)."""
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, item in value.items():
            if key not in schema["properties"]:
                found.append(f"{where}.{key}")
            else:
                found += unknown_fields(item, schema["properties"][key], document, f"{where}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return [found for i, item in enumerate(value)
                for found in unknown_fields(item, schema["items"], document, f"{where}[{i}]")]
    return []


def rest_site(cluster: Cluster) -> str:
    return cluster.sites[1]


def test_newest_api_version_and_bodies_match_the_servers_schema(new_run, cluster: Cluster,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    site = rest_site(cluster)
    run = new_run()
    backend = run.backend(site)
    url = str(backend.options["url"])
    document = server_document(cluster, url)
    versions = sorted(tuple(int(n) for n in m.groups()) for p in document["paths"]
                      if (m := re.fullmatch(r"/slurm/v(\d+)\.(\d+)\.(\d+)/job/submit/?", p)))
    newest = ".".join(map(str, versions[-1]))
    assert backend.cluster().extra["api"] == f"v{newest}"

    sent: list[tuple[str, Any]] = []
    original = requests.Session.request

    def recording(self: requests.Session, method: str, url: str, **kwargs: Any) -> requests.Response:
        if method == "POST" and "/job/submit" in url:
            sent.append((url.split("://", 1)[1].split("/", 1)[1], kwargs.get("json")))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(requests.Session, "request", recording)
    values = dict(FULL)
    if versions[-1] <= (0, 0, 38):  # v0.0.38 has no field for a job's scratch space: refused, nothing sent
        with pytest.raises(BadInput, match="tmp disk"):
            run.submit([JobRequest("scratch", shell("true", **values), site=site)])
        assert sent == []
        del values["scratch"]
    records = run.submit([JobRequest("single", shell("true", **{**values, "cores": 4}), site=site)]
                         + [JobRequest(f"array-{i}", shell("true", **values), site=site) for i in range(2)])
    assert len(sent) == 2  # one single job, one array
    for path, body in sent:
        assert path == f"slurm/v{newest}/job/submit"
        schema = submit_schema(document, "/" + path)
        jsonschema.validate(body, schema)
        assert unknown_fields(body, schema, document, "body") == []
    final = run.wait(timeout=180)
    assert {final[r.job_id].state.value for r in records} == {"completed"}, final


def test_every_resource_reaches_the_controller(new_run, site: str) -> None:
    cluster = cluster_of(site)
    run = new_run()
    values = dict(FULL)
    if site == "slurm-rest":  # Slurm 22.05's v0.0.38: no scratch (checked above)
        del values["scratch"]
    (record,) = run.submit([JobRequest("full", shell('echo "gpus=$CUDA_VISIBLE_DEVICES"', **values), site=site)])
    final = run.wait(timeout=180)[record.job_id]
    assert final.state.value == "completed", final
    shown = subprocess.run([cluster.command("scontrol"), "--oneliner", "show", "job", final.native_id],
                           capture_output=True, text=True, check=True).stdout
    fields = dict(word.split("=", 1) for word in shown.split() if "=" in word)
    assert fields["Partition"] == "short" and fields["Account"] == "cta" and fields["QOS"] == "debug", fields
    assert fields["TimeLimit"] == "00:03:00", fields
    assert fields["NumCPUs"] == "2", fields
    assert "gpu" in fields.get("TresPerJob", fields.get("TresPerNode", "")), fields
    if "scratch" in values:
        assert fields["MinTmpDiskNode"] == "100M", fields


def test_rest_status_comes_from_the_controller_not_accounting(new_run, cluster: Cluster) -> None:
    """Issue 18: on the REST path a run's states come from slurmctld (the jobs' states on Slurm
    24.05+, the array's own job on 22.05), never from slurmdbd's job list, which lags the
    controller. Counted per endpoint by the backend's own request counter."""
    site = rest_site(cluster)
    run = new_run()
    records = run.submit([JobRequest(f"j{i}", shell("sleep 1"), site=site) for i in range(4)])
    final = run.wait(timeout=300)
    assert {final[r.job_id].state.value for r in records} == {"completed"}, final
    asked = run.backend(site).access.requests  # type: ignore[attr-defined]
    controller = {e: n for e, n in asked.items()
                  if e.startswith("GET /slurm/") and ("/jobs/state" in e or e.endswith("/job/{id}"))}
    accounting = {e: n for e, n in asked.items() if e.startswith("GET /slurmdb/") and e.endswith("/jobs")}
    assert controller, dict(asked)
    assert not accounting, dict(asked)
    expected = "/job/{id}" if cluster.version == "host" else "/jobs/state/"
    assert all(expected in e for e in controller), dict(asked)
