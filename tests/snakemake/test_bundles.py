"""Many small jobs on a small pool: esap packs jobs of one rule into fewer scheduler jobs (bundles),
and Snakemake still sees, logs and reports every job on its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from esap_executors.states import JobState
from esap_executors.store import JobRecord

from ..support import EXAMPLE_SITES, require_service
from .helpers import HTCONDOR_SITE, executor_args, explain, latest_run_records, shared_directory, snakemake

FANOUT = """
rule all:
    input: expand("out/{{i}}.txt", i=range({count}))

rule work:
    output: "out/{{i}}.txt"
    shell: "{command}"
"""
# the HTCondor job that ran the Snakemake job, from its job ad: "ClusterId.ProcId"
WRITES_JOB_ID = (
    "echo {wildcards.i} $(grep -E '^(ClusterId|ProcId) ' $_CONDOR_JOB_AD | sort | awk '{{print $3}}' | paste -sd.)"
    " > {output}"
)
FAILS_ON_FIVE = "if [ {wildcards.i} = 5 ]; then echo five refuses >&2; exit 3; fi; echo {wildcards.i} > {output}"


def run_fanout(workdir: Path, count: int, command: str,
               *extra: str) -> tuple[subprocess.CompletedProcess[str], list[JobRecord]]:
    (workdir / "Snakefile").write_text(FANOUT.format(count=count, command=command))
    result = snakemake(workdir, *executor_args(HTCONDOR_SITE, jobs=count), *extra, shared=True,
                       env={"ESAP_SITES": str(pool_of_four(workdir))})
    return result, latest_run_records()


def pool_of_four(workdir: Path) -> Path:
    """The example catalogue, stating the pool's size (scripts/services/htcondor.sh: 4 CPUs) so
    that the bundles do not depend on the collector answering in time on a loaded machine."""
    catalogue = yaml.safe_load(EXAMPLE_SITES.read_text())
    catalogue[HTCONDOR_SITE].setdefault("attributes", {})["GlueCEInfoTotalCPUs"] = 4
    path = workdir / "sites.yaml"
    path.write_text(yaml.safe_dump(catalogue))
    return path


@pytest.mark.htcondor
def test_jobs_beyond_the_pools_slots_share_scheduler_jobs(state_dir: Path) -> None:
    require_service("htcondor")
    with shared_directory("esap-smk-bundle-") as workdir:
        result, records = run_fanout(workdir, 12, WRITES_JOB_ID)
        assert result.returncode == 0, explain(result)
        outputs = sorted((workdir / "out").glob("*.txt"))
        assert len(outputs) == 12, explain(result)
        # 12 jobs of one rule on a pool of 4 slots: 4 scheduler jobs of 3 Snakemake jobs each
        work = [r for r in records if r.name.startswith("work")]
        assert len(work) == 4, ([(r.name, r.state) for r in records], explain(result))
        assert all(r.name == "work (bundle of 3)" and r.state is JobState.COMPLETED for r in work), explain(result)
        assert len({r.native_id for r in work}) == 4
        # each scheduler job ran three of them
        ran_in = [p.read_text().split()[1] for p in outputs]
        assert {ran_in.count(r.native_id or "") for r in work} == {3}, ran_in
        # and each job kept its own log, its shell command run without a Snakemake start
        logs = sorted((workdir / ".snakemake" / "esap_logs" / "work").glob("i=*.err"))
        assert len(logs) == 12
        assert all("rule work, jobid" in log.read_text() for log in logs)
        assert not any("Building DAG of jobs" in log.read_text() for log in logs)


@pytest.mark.htcondor
def test_bundles_of_jobs_that_need_snakemake_start_it_once(state_dir: Path) -> None:
    require_service("htcondor")
    with shared_directory("esap-smk-bundle-smk-") as workdir:
        result, records = run_fanout(workdir, 8, WRITES_JOB_ID, "--esap-direct-shell", "no")
        assert result.returncode == 0, explain(result)
        assert len(list((workdir / "out").glob("*.txt"))) == 8
        work = [r for r in records if r.name.startswith("work")]
        assert len(work) == 4 and all(r.name == "work (bundle of 2)" for r in work), explain(result)
        logs = sorted((workdir / ".snakemake" / "esap_logs" / "work").glob("i=*.err"))
        assert len(logs) == 8 and all("rule work:" in log.read_text() for log in logs)


@pytest.mark.htcondor
def test_a_failing_job_in_a_bundle_is_reported_alone(state_dir: Path) -> None:
    require_service("htcondor")
    with shared_directory("esap-smk-bundle-fail-") as workdir:
        result, records = run_fanout(workdir, 8, FAILS_ON_FIVE, "--keep-going")
        output = result.stdout + result.stderr
        assert result.returncode != 0, output
        done = sorted(int(p.stem) for p in (workdir / "out").glob("*.txt"))
        assert done == [0, 1, 2, 3, 4, 6, 7], explain(result)
        assert output.count("Error in rule work") == 1, output
        failed_log = next((workdir / ".snakemake" / "esap_logs" / "work").glob("i=5.*.err"))
        assert f"exit code 3. Log: {failed_log}" in output, output  # the command's own code
        assert "five refuses" in failed_log.read_text()
        bundles = [r for r in records if r.name.startswith("work")]
        assert [r.state for r in bundles].count(JobState.FAILED) == 1


@pytest.mark.htcondor
def test_max_bundle_one_keeps_one_scheduler_job_per_job(state_dir: Path) -> None:
    require_service("htcondor")
    with shared_directory("esap-smk-nobundle-") as workdir:
        result, records = run_fanout(workdir, 6, WRITES_JOB_ID, "--esap-max-bundle", "1")
        assert result.returncode == 0, explain(result)
        work = [r for r in records if r.name == "work"]
        assert len(work) == 6 and all(r.state is JobState.COMPLETED for r in work)
