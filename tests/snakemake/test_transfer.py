"""Snakemake on a site without a shared filesystem (HTCondor file transfer): the workflow's sources
and the job's inputs go with the job, its outputs and logs come back, and it runs in a scratch
directory this side never sees."""

from __future__ import annotations

from pathlib import Path

from esap_executors.states import JobState
from tests.snakemake.helpers import executor_args, latest_run_records, shared_directory, snakemake
from tests.support import require_service

SITE = "htcondor-transfer"
SNAKEFILE = """\
include: "rules/common.smk"

rule all:
    input: "results/upper.txt"

rule upper:
    input: "data/in.txt"
    output: "results/upper.txt", where="results/where.txt"
    log: "logs/upper.log"
    shell: "tr a-z A-Z < {input} > {output[0]} && pwd > {output.where} && echo {MESSAGE} > {log}"
"""


def test_files_travel_with_the_job(tmp_path: Path) -> None:
    require_service("htcondor")
    with shared_directory("esap-smk-transfer-") as workdir:
        (workdir / "Snakefile").write_text(SNAKEFILE)
        (workdir / "rules").mkdir()
        (workdir / "rules" / "common.smk").write_text('MESSAGE = "from an include"\n')
        (workdir / "data").mkdir()
        (workdir / "data" / "in.txt").write_text("payload\n")
        completed = snakemake(workdir, *executor_args(SITE), shared=True)
        assert completed.returncode == 0, completed.stderr[-3000:]

        assert (workdir / "results" / "upper.txt").read_text() == "PAYLOAD\n"
        assert (workdir / "logs" / "upper.log").read_text() == "from an include\n"
        where = (workdir / "results" / "where.txt").read_text().strip()
        assert Path(where).is_absolute() and not where.startswith(str(workdir)), where
        [job] = latest_run_records()
        assert (job.site, job.state) == (SITE, JobState.COMPLETED)
        assert {entry.dest for entry in job.spec.stage_in} >= {"Snakefile", "rules/common.smk", "data/in.txt"}


def test_an_input_outside_the_workflow_directory_is_refused_before_submission(tmp_path: Path) -> None:
    require_service("htcondor")
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("x\n")
    with shared_directory("esap-smk-transfer-") as workdir:
        (workdir / "Snakefile").write_text(f'rule copy:\n    input: "{outside}"\n    output: "copy.txt"\n'
                                           '    shell: "cp {input} {output}"\n')
        completed = snakemake(workdir, *executor_args(SITE), shared=True)

    assert completed.returncode != 0
    assert f"{outside}: outside the workflow directory" in completed.stderr, completed.stderr[-3000:]
    assert latest_run_records() == []
