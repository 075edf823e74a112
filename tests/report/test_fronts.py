"""The report, the RO-Crate and the notice of real runs of every front on SLURM and HTCondor:
a 30-job Snakemake run and a CWL scatter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cwl.helpers import run_id_of, run_tool
from tests.snakemake.helpers import HTCONDOR_SITE, SLURM_SITE, explain, shared_directory, snakemake, write_workflow
from tests.support import esap, require_service

from .browser import open_report
from .conftest import NoticeServer
from .crate_validation import validate
from .test_crate import check_job_actions, check_outputs, graph, ids

SERVICE = {SLURM_SITE: "slurm", HTCONDOR_SITE: "htcondor"}
DATA = Path(__file__).resolve().parent.parent / "cwl" / "data"

# 24 + 4 + 1 + 1 jobs. (A job with more than 19 inputs fails on the HTCondor pool: Snakemake's remote
# executor writes their list to a file in the submitting user's private temporary directory.)
THIRTY_JOBS = """
SAMPLES = range(24)

rule all:
    input: "total.txt", "summary.txt"

rule square:
    output: "sq/{sample}.txt"
    shell: "echo $(({wildcards.sample} * {wildcards.sample})) > {output}"

rule partial:
    input: lambda w: [f"sq/{i}.txt" for i in range(int(w.part) * 6, int(w.part) * 6 + 6)]
    output: "part/{part}.txt"
    shell: "s=0; for f in {input}; do s=$((s + $(cat $f))); done; echo $s > {output}"

rule total:
    input: expand("part/{part}.txt", part=range(4))
    output: "total.txt"
    shell: "s=0; for f in {input}; do s=$((s + $(cat $f))); done; echo $s > {output}"

rule summary:
    input: "total.txt"
    output: "summary.txt"
    shell: "echo sum=$(cat {input}) > {output}"
"""


def check_report(run_id: str, html: Path, jobs: int, groups: set[str]) -> dict[str, object]:
    result = esap("report", run_id, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert len(report["jobs"]) == jobs
    for job in report["jobs"]:
        assert job["queued"] <= job["started"] <= job["ended"], job
        assert job["native_id"] and job["state"] == "completed" and job["exit_code"] in (0, None), job
    assert {j["group"] for j in report["jobs"]} == groups
    assert report["run"]["final"] and report["run"]["states"] == {"completed": jobs}
    page = open_report(html)
    assert page.console_errors == []
    assert page.bars == jobs and page.table_rows == jobs
    assert page.colours > 20, "the screenshot is blank"
    summary: dict[str, object] = report["run"]
    return summary


def check_crate(run_id: str, crate: Path, workflow: Path, outputs: list[Path]) -> None:
    result = esap("report", run_id, "--ro-crate", str(crate))
    assert result.returncode == 0, result.stderr
    assert validate(crate, "workflow-run-crate-0.5") == []
    entities = graph(crate)
    main = entities[entities["./"]["mainEntity"]["@id"]]
    assert "ComputationalWorkflow" in main["@type"]
    assert (crate / main["@id"]).read_bytes() == workflow.read_bytes()
    (run,) = [e for e in entities.values() if e["@id"].startswith("#run-")]
    assert ids(run["instrument"]) == [main["@id"]]
    check_outputs(crate, entities, outputs)
    check_job_actions(entities, json.loads(esap("report", run_id, "--json").stdout))


@pytest.mark.parametrize("site", [SLURM_SITE, HTCONDOR_SITE])
def test_a_30_job_snakemake_run_reports_and_notifies(site: str, notice_server: NoticeServer) -> None:
    require_service(SERVICE[site])
    with shared_directory("esap-report-smk-") as workdir:
        write_workflow(workdir, THIRTY_JOBS)
        html = workdir / "run.html"
        result = snakemake(workdir, "--executor", "esap", "--esap-site", site, "--jobs", "30",
                           "--latency-wait", "30", "--esap-max-bundle", "1", "--esap-report", str(html),
                           "--esap-notify", notice_server.url, shared=True)
        logs = "".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in workdir.glob(".snakemake/esap_logs/*/*.err"))
        assert result.returncode == 0, explain(result) + logs
        assert (workdir / "summary.txt").read_text().strip() == f"sum={sum(i * i for i in range(24))}"
        (notice,) = notice_server.received
        run_id = notice["run"]["run_id"]
        summary = check_report(run_id, html, 30, {"square", "partial", "total", "summary"})
        assert notice["outcome"] == "completed" and notice["run"]["states"] == summary["states"]
        assert notice["run"]["jobs"] == 30 and notice["failed_jobs"] == []
        outputs = [*workdir.glob("sq/*.txt"), *workdir.glob("part/*.txt"), workdir / "total.txt",
                   workdir / "summary.txt"]
        check_crate(run_id, workdir / "crate", workdir / "Snakefile", [p.resolve() for p in outputs])


@pytest.mark.parametrize("site", [SLURM_SITE, HTCONDOR_SITE])
def test_a_cwl_scatter_reports_and_notifies(site: str, tmp_path: Path, notice_server: NoticeServer) -> None:
    require_service(SERVICE[site])
    notice_server.unavailable_first = 1
    with shared_directory("esap-report-cwl-") as workdir:
        html = workdir / "run.html"
        result = run_tool("esap-cwltool", "--site", site, "--esap-report", html, "--esap-notify", notice_server.url,
                          "--outdir", workdir / "out", DATA / "scatter-wf.cwl", cwd=workdir)
        assert result.returncode == 0, result.stderr[-4000:]
        run_id = run_id_of(result.stderr)
        check_report(run_id, html, 4, {"say", "join"})
        assert len(notice_server.attempts) == 2  # one 503, then accepted
        (notice,) = notice_server.received
        assert notice["run"]["run_id"] == run_id and notice["outcome"] == "completed"
        assert "s3cret" not in result.stderr
        check_crate(run_id, workdir / "crate", DATA / "scatter-wf.cwl", [workdir / "out" / "joined.txt"])
