"""Workflows a user runs with `snakemake --executor esap` on the real SLURM cluster (the pool runs
Snakemake's own test workflows in test_snakemake_bases)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esap_executors.states import JobState

from ..slurm.conftest import CLUSTERS, SELECTED, require_cluster
from ..support import EXAMPLE_SITES, require_service
from .helpers import (
    SLURM_SITE,
    executor_args,
    explain,
    latest_run_records,
    snakemake,
    write_workflow,
)

FANOUT_50 = """
SAMPLES = range(24)

rule all:
    input: "total.txt", "report.txt"

rule generate:
    output: "gen/{sample}.txt"
    shell: "echo {wildcards.sample} > {output}"

rule square:
    input: "gen/{sample}.txt"
    output: "sq/{sample}.txt"
    shell: "n=$(cat {input}); echo $((n * n)) > {output}"

rule total:
    input: expand("sq/{sample}.txt", sample=SAMPLES)
    output: "total.txt"
    shell: "cat {input} | awk '{{s += $1}} END {{print s}}' > {output}"

rule report:
    input: "total.txt"
    output: "report.txt"
    shell: "echo sum=$(cat {input}) > {output}"
"""

FAILING = """
rule all:
    input: "never.txt"

rule broken:
    output: "never.txt"
    log: "logs/broken.log"
    shell: "echo 'about to fail' >&2; exit 3"
"""

SLEEPING = """
rule all:
    input: expand("slept/{i}.txt", i=range(3))

rule sleeper:
    output: "slept/{i}.txt"
    shell: "sleep 300; touch {output}"
"""

GROUPED = """
rule all:
    input: "grouped/b.txt", "elsewhere.txt"

rule a:
    output: "grouped/a.txt"
    group: "pair"
    # matchmaking on the site's attributes (two sites reach this cluster: CLI and REST)
    resources:
        esap_requirements='other.GlueCEUniqueID == "127.0.0.1:6817/slurm-debug"',
        esap_partition="debug"
    shell: "hostname > {output}"

rule b:
    input: "grouped/a.txt"
    output: "grouped/b.txt"
    group: "pair"
    shell: "cat {input} > {output}; echo b >> {output}"

rule c:
    output: "elsewhere.txt"
    resources: esap_site="slurm-rest"
    shell: "echo c > {output}"
"""


@pytest.mark.slurm
@pytest.mark.parametrize("version", SELECTED)  # every Slurm version ESAP_TEST_SLURM selects
def test_fifty_jobs_with_dependencies_and_wildcards(tmp_path: Path, state_dir: Path, version: str) -> None:
    cluster = CLUSTERS[version]
    require_cluster(cluster)
    site = cluster.sites[0]
    workdir = write_workflow(tmp_path / "fanout", FANOUT_50)
    result = snakemake(workdir, *executor_args(site, jobs=50))
    assert result.returncode == 0, explain(result)
    assert (workdir / "total.txt").read_text().strip() == str(sum(n * n for n in range(24)))
    assert (workdir / "report.txt").read_text().strip() == "sum=4324"
    records = latest_run_records()
    assert len(records) == 50
    assert {r.site for r in records} == {site}
    assert all(r.state is JobState.COMPLETED and r.native_id for r in records)
    assert {r.name for r in records} == {"generate", "square", "total", "report"}


@pytest.mark.slurm
def test_failing_rule_reports_rule_reason_and_log(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "failing", FAILING)
    result = snakemake(workdir, *executor_args(SLURM_SITE))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Error in rule broken" in output, explain(result)
    [record] = latest_run_records()
    assert record.state is JobState.FAILED
    # a plain shell rule runs without a Snakemake start: the scheduler job's code is the command's
    assert record.exit_code == 3
    # the job ended by itself with a non-zero code: its cause and code, as `esap status` names them
    assert record.cause == "EXIT_CODE"
    assert "failed: EXIT_CODE, exit code 3" in output, explain(result)
    assert record.stderr in output  # the log path is named
    assert "about to fail" in Path(record.stderr).read_text()


@pytest.mark.slurm
def test_ctrl_c_cancels_every_scheduler_job(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "sleeping", SLEEPING)
    # PYTHONFAULTHANDLER: should Snakemake not end after Ctrl-C, SIGABRT makes it print where
    # each of its threads is (seen once in a loaded CI rehearsal, never reproduced since)
    env = dict(os.environ, ESAP_SITES=str(EXAMPLE_SITES), PYTHONFAULTHANDLER="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "snakemake", *executor_args(SLURM_SITE)], cwd=workdir, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        records = []
        while time.monotonic() < deadline:
            records = latest_run_records()
            if len(records) == 3 and all(r.native_id for r in records):
                break
            time.sleep(0.5)
        assert len(records) == 3, "the three jobs were not submitted"
        process.send_signal(signal.SIGINT)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            stuck, _ = process.communicate(timeout=30)
            pytest.fail(f"Snakemake did not end within 120 s of Ctrl-C; its threads:\n{stuck[-6000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0, output
    native_ids = [r.native_id or "" for r in records]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        queued = subprocess.run(["squeue", "-h", "-o", "%i", "-j", ",".join(native_ids)],
                                capture_output=True, text=True, check=False).stdout.split()
        if not queued:
            break
        time.sleep(1)
    assert not queued, f"scheduler jobs left after Ctrl-C: {queued}\n{output}"
    assert not list((workdir / "slept").glob("*.txt"))


@pytest.mark.slurm
def test_group_job_honours_text_resources(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "grouped", GROUPED)
    # the default site is local: only the rules' resources send the jobs to SLURM
    result = snakemake(workdir, *executor_args("local"))
    assert result.returncode == 0, explain(result)
    assert (workdir / "grouped" / "b.txt").read_text().splitlines()[-1] == "b"
    assert (workdir / "elsewhere.txt").read_text() == "c\n"
    records = {r.name: r for r in latest_run_records()}
    group = next(r for name, r in records.items() if name.startswith("pair"))
    assert group.site == SLURM_SITE  # chosen by esap_requirements
    assert group.spec.partition == "debug"
    assert records["c"].site == "slurm-rest"  # esap_site


OVER_ASKING = """
rule all:
    input: "slept.txt", "used.txt"

rule oversized:
    output: "slept.txt"
    threads: 2
    resources: mem_mb=900
    shell: "sleep 2; echo done > {output}"

rule fitting:
    output: "used.txt"
    resources: mem_mb=150
    shell: "python3 -c \\"block = bytearray(b'x') * (60 * 1024 * 1024); import time; time.sleep(2)\\" && touch {output}"
"""


@pytest.mark.slurm
def test_usage_report_names_the_rules_that_asked_too_much(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "usage", OVER_ASKING)
    result = snakemake(workdir, *executor_args(SLURM_SITE), "--esap-usage-report", "usage.csv")
    assert result.returncode == 0, explain(result)
    with open(workdir / "usage.csv", newline="") as report:
        rows = {row["name"]: row for row in csv.DictReader(report)}
    assert set(rows) == {"oversized", "fitting"}, rows  # `all` runs in the submitting Snakemake
    oversized, fitting = rows["oversized"], rows["fitting"]
    assert (oversized["cores"], oversized["memory_mib"]) == ("2", "859")  # 900 MB
    assert float(oversized["wall_s"]) >= 2 and float(oversized["cpu_efficiency"]) < 0.5
    assert float(oversized["memory_efficiency"]) < 0.5
    assert fitting["memory_mib"] == "144" and float(fitting["memory_efficiency"]) >= 0.5, fitting
    output = result.stdout + result.stderr
    assert "used less than half of the cores or memory they asked for: oversized (see usage.csv)" in output


MPI_RULE = """
rule ranks:
    output: "ranks.txt"
    resources: tasks=3
    shell: "srun sh -c 'echo $SLURM_PROCID' > {output}"
"""


@pytest.mark.slurm
def test_tasks_resource_runs_mpi_ranks(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "mpi", MPI_RULE)
    result = snakemake(workdir, *executor_args(SLURM_SITE))
    assert result.returncode == 0, explain(result)
    assert sorted((workdir / "ranks.txt").read_text().split()) == ["0", "1", "2"]
    [record] = latest_run_records()
    assert (record.spec.tasks, record.spec.cores) == (3, 3)
