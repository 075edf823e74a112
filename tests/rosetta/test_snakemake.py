"""Snakemake with the esap executor on the Rosetta sites: each job runs in the site's
Snakemake image (Debian's python3 with Snakemake from PyPI, built and pushed by
scripts/services/rosetta.sh) with the workflow's sources and the job's inputs uploaded to its
folder on Rosetta's storage, and its outputs brought back; a rule with its own `container:` image
runs in that image instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from tests.snakemake.helpers import executor_args, explain, latest_run_records, snakemake, write_workflow

from .conftest import run_tasks

pytestmark = pytest.mark.rosetta

WORKFLOW = """
configfile: "config.yaml"

rule all:
    input: expand("results/{sample}.count", sample=config["samples"]), "results/summary.txt"

rule count:
    input: "data/{sample}.txt"
    output: "results/{sample}.count"
    log: "logs/{sample}.log"
    script: "scripts/count.py"

rule summary:
    input: expand("results/{sample}.count", sample=config["samples"])
    output: "results/summary.txt"
    shell: "cat {input} > {output} && python3 -c 'import snakemake; print(snakemake.__version__)' >> {output}"
"""

SCRIPT = """
import sys
with open(snakemake.input[0]) as handle:
    words = handle.read().split()
with open(snakemake.log[0], "w") as log:
    print(f"counted in python {sys.version_info[0]}", file=log)
with open(snakemake.output[0], "w") as out:
    print(snakemake.wildcards.sample, len(words), file=out)
"""


@pytest.mark.parametrize("site", ["rosetta-slurm", "rosetta-standalone"])
def test_snakemake_workflow_runs_in_the_snakemake_image(client: RosettaClient, state_dir: Path, tmp_path: Path,
                                                        site: str) -> None:
    workdir = write_workflow(tmp_path / "wf", WORKFLOW)
    (workdir / "config.yaml").write_text("samples: [a, b]\n")
    (workdir / "scripts").mkdir()
    (workdir / "scripts" / "count.py").write_text(SCRIPT)
    (workdir / "data").mkdir()
    (workdir / "data" / "a.txt").write_text("one two three\n")
    (workdir / "data" / "b.txt").write_text("four five\n")
    result = snakemake(workdir, *executor_args(site), timeout=900)
    assert result.returncode == 0, explain(result)
    assert (workdir / "results" / "a.count").read_text() == "a 3\n"
    assert (workdir / "results" / "b.count").read_text() == "b 2\n"
    summary = (workdir / "results" / "summary.txt").read_text().splitlines()
    assert summary[:2] == ["a 3", "b 2"] and summary[2].startswith("9.")  # Snakemake of the image
    assert (workdir / "logs" / "a.log").read_text() == "counted in python 3\n"
    records = latest_run_records()
    assert len(records) == 3 and {r.site for r in records} == {site}
    assert all(r.state.value == "completed" for r in records)
    assert run_tasks(client, records[0].run_id) == []


RULE_IMAGE = "127.0.0.1:5010/esap-snakemake:rule"  # esap-snakemake:ci plus /esap-rule-image (rosetta.sh)

IMAGES_WORKFLOW = f"""
rule all:
    input: "results/in-rule-image.txt", "results/in-site-image.txt"

rule in_rule_image:
    output: "results/in-rule-image.txt"
    container: "docker://{RULE_IMAGE}"
    shell: "cat /esap-rule-image > {{output}}"

rule in_site_image:
    output: "results/in-site-image.txt"
    shell: "if test -e /esap-rule-image; then echo rule image; else echo site image; fi > {{output}}"
"""


# with --sdm apptainer (Snakemake's switch for `container:`) Snakemake also pulls the image on
# this side (over plain HTTP from the local registry); the job in the image deploys none again
@pytest.mark.parametrize("deployment", [(), ("--sdm", "apptainer")], ids=["plain", "sdm-apptainer"])
def test_rule_container_image_runs_the_rule_on_rosetta_slurm(client: RosettaClient, state_dir: Path,
                                                             tmp_path: Path, deployment: tuple[str, ...]) -> None:
    workdir = write_workflow(tmp_path / "wf", IMAGES_WORKFLOW)
    result = snakemake(workdir, *executor_args("rosetta-slurm"), *deployment, env={"APPTAINER_NOHTTPS": "1"},
                       timeout=900)
    assert result.returncode == 0, explain(result)
    # a file only the rule's image has; the other rule ran in the site's Snakemake image
    assert (workdir / "results" / "in-rule-image.txt").read_text() == "esap-snakemake-rule\n"
    assert (workdir / "results" / "in-site-image.txt").read_text() == "site image\n"
    records = latest_run_records()
    assert {r.site for r in records} == {"rosetta-slurm"} and all(r.state.value == "completed" for r in records)
    assert run_tasks(client, records[0].run_id) == []
    tags = [c.image_tag for c in client.containers() if c.name == "esap-step"]
    assert any(tag.startswith("esap-snakemake-rule-") for tag in tags), tags  # registered as a step image
