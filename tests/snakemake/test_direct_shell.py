"""Plain shell rules run their formatted command in the scheduler job without starting a Snakemake
there (issue 21): each job keeps its own log, exit code and Snakemake's retries; rules that need
the remote Snakemake (here a `run:` block) still start it, and `--esap-direct-shell no` restores
one Snakemake per job."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors.states import JobState

from ..support import require_service
from .helpers import SLURM_SITE, executor_args, explain, latest_run_records, snakemake, write_workflow

MIXED = """
rule all:
    input: expand("out/{i}.txt", i=range(3)), "py.txt"

rule work:
    output: "out/{i}.txt"
    log: "logs/work/{i}.log"
    threads: 2
    shell: "echo $OMP_NUM_THREADS {wildcards.i} > {output}; echo note {wildcards.i} > {log}; echo to-stderr >&2"

rule python:
    output: "py.txt"
    run:
        with open(output[0], "w") as handle:
            handle.write("ran in Python\\n")
"""

FLAKY = """
rule all:
    input: "second.txt"

rule flaky:
    output: "second.txt"
    retries: 1
    shell: "if [ -e first ]; then echo second > {output}; else touch first; echo first fails >&2; exit 4; fi"
"""

# A remote Snakemake writes this into every job's log; a direct run writes its own line instead.
SNAKEMAKE_START = "Building DAG of jobs"
DIRECT = "its shell command, run without a Snakemake start"


@pytest.mark.slurm
def test_shell_rules_run_without_a_snakemake_start_and_keep_their_logs(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "mixed", MIXED)
    result = snakemake(workdir, *executor_args(SLURM_SITE))
    assert result.returncode == 0, explain(result)
    # the rule's threads reach the command as Snakemake's shell() sets them; {log} directories exist
    assert sorted((workdir / "out" / f"{i}.txt").read_text() for i in range(3)) == ["2 0\n", "2 1\n", "2 2\n"]
    assert (workdir / "logs" / "work" / "1.log").read_text() == "note 1\n"
    assert (workdir / "py.txt").read_text() == "ran in Python\n"
    records = {r.key: r for r in latest_run_records()}
    work = [r for r in records.values() if r.name == "work"]
    assert len(work) == 3 and all(r.state is JobState.COMPLETED for r in work)
    for record in work:
        log = Path(record.stderr or "").read_text()
        assert DIRECT in log and "rule work" in log and "to-stderr" in log, log
        assert SNAKEMAKE_START not in log, log
    [python] = [r for r in records.values() if r.name == "python"]
    assert SNAKEMAKE_START in Path(python.stderr or "").read_text()  # a `run:` block needs Snakemake


@pytest.mark.slurm
def test_direct_shell_no_starts_a_snakemake_per_job(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "mixed", MIXED)
    result = snakemake(workdir, *executor_args(SLURM_SITE), "--esap-direct-shell", "no")
    assert result.returncode == 0, explain(result)
    work = [r for r in latest_run_records() if r.name == "work"]
    assert len(work) == 3
    assert all(SNAKEMAKE_START in Path(r.stderr or "").read_text() for r in work)


@pytest.mark.slurm
def test_a_direct_job_reports_its_own_exit_code_and_snakemake_retries_it(tmp_path: Path, state_dir: Path) -> None:
    require_service("slurm")
    workdir = write_workflow(tmp_path / "flaky", FLAKY)
    result = snakemake(workdir, *executor_args(SLURM_SITE))
    assert result.returncode == 0, explain(result)
    assert (workdir / "second.txt").read_text() == "second\n"
    first, second = sorted(latest_run_records(), key=lambda r: r.key)
    # Snakemake's retry is a new scheduler job (attempt 2 in its key), each with its own log
    assert (first.state, first.exit_code, first.cause) == (JobState.FAILED, 4, "EXIT_CODE"), first
    assert second.state is JobState.COMPLETED
    assert first.stderr != second.stderr
    assert "first fails" in Path(first.stderr or "").read_text()
    output = result.stdout + result.stderr
    assert "failed: EXIT_CODE, exit code 4" in output, explain(result)


def test_bad_direct_shell_value_is_one_line_and_exit_2(tmp_path: Path, state_dir: Path) -> None:
    workdir = write_workflow(tmp_path / "bad", MIXED)
    result = snakemake(workdir, *executor_args("local"), "--esap-direct-shell", "maybe")
    assert result.returncode == 2, explain(result)
    assert "--esap-direct-shell" in result.stderr and "maybe" in result.stderr
    assert not (workdir / "out").exists()
