"""Snakemake on the local site: the `esap_retry` resource retries a job killed for its memory with
more memory, while Snakemake's own retries and attempt-dependent resources keep working."""

from __future__ import annotations

from pathlib import Path

from esap_executors.states import JobState

from .helpers import executor_args, explain, latest_run_records, snakemake, write_workflow

# The job is Snakemake itself (about 100 MiB) running the rule's shell: 400 MiB more is over 300.
HUNGRY = """
rule all:
    input: "fed.txt"

rule hungry:
    output: "fed.txt"
    resources:
        mem_mb=300,
        esap_retry="OUT_OF_MEMORY:memory=x2,up_to=1G;max=2"
    shell: "python3 -c \\"import time; b = bytearray(b'x') * (400 << 20); time.sleep(3)\\"; echo fed > {output}"
"""

ATTEMPTS = """
rule all:
    input: "second.txt"

rule flaky:
    output: "second.txt"
    retries: 1
    resources:
        mem_mb=lambda wildcards, attempt: 100 * attempt,
        esap_retry="OUT_OF_MEMORY:memory=x2"
    shell: "if [ -e first ]; then echo {resources.mem_mb} > {output}; else touch first; exit 3; fi"
"""


def test_a_rule_killed_for_memory_is_retried_with_doubled_memory(tmp_path: Path, state_dir: Path) -> None:
    workdir = write_workflow(tmp_path / "hungry", HUNGRY)
    result = snakemake(workdir, *executor_args("local"))
    assert result.returncode == 0, explain(result)
    assert (workdir / "fed.txt").read_text() == "fed\n"
    first, second = sorted(latest_run_records(), key=lambda r: r.attempt)
    assert (first.state, first.cause, first.spec.memory_mib) == (JobState.FAILED, "OUT_OF_MEMORY", 287)
    assert (second.state, second.spec.memory_mib) == (JobState.COMPLETED, 574)
    assert second.retry_note == "after OUT_OF_MEMORY: memory 287 MiB -> 574 MiB"


def test_snakemake_retries_and_attempt_resources_still_work(tmp_path: Path, state_dir: Path) -> None:
    """Exit code 3 has no esap rule: Snakemake retries it itself, with its second attempt's resources,
    and esap adds no retry. The rule is a plain shell rule (run without a Snakemake start in the
    job): Snakemake's retry is a second scheduler job that asks for the second attempt's memory."""
    workdir = write_workflow(tmp_path / "attempts", ATTEMPTS)
    result = snakemake(workdir, *executor_args("local"))
    assert result.returncode == 0, explain(result)
    assert (workdir / "second.txt").read_text() == "200\n"
    first, second = sorted(latest_run_records(), key=lambda r: r.key)
    assert (first.state, first.exit_code, first.cause, first.retry_note) == (JobState.FAILED, 3, "EXIT_CODE", None)
    assert (second.state, second.cause, second.retry_note) == (JobState.COMPLETED, None, None)
    assert (first.spec.memory_mib, second.spec.memory_mib) == (96, 191)  # 100 and 200 MB, rounded up to MiB


MODEST = """
rule all:
    input: "modest.txt"

rule modest:
    output: "modest.txt"
    resources: mem_mb=1000, runtime=60
    shell: "python3 -c \\"import time; b = bytearray(b'x') * (20 << 20); time.sleep(2)\\"; echo ok > {output}"
"""


def test_a_second_run_with_right_size_asks_for_less_and_completes(tmp_path: Path, state_dir: Path) -> None:
    workdir = write_workflow(tmp_path / "modest", MODEST)
    first = snakemake(workdir, *executor_args("local"))
    assert first.returncode == 0, explain(first)
    (workdir / "modest.txt").unlink()
    second = snakemake(workdir, *executor_args("local"), "--esap-right-size", "yes")
    assert second.returncode == 0, explain(second)
    [before] = [r for r in latest_run_records() if r.state is JobState.COMPLETED]
    from esap_executors.sqlite_store import open_store

    runs = [run_id for run_id, _key, front, _created in open_store().latest_runs() if front == "snakemake"]
    [earlier] = open_store().jobs_of_run(runs[1])
    assert earlier.spec.memory_mib == 954 and before.spec.memory_mib is not None
    assert 64 <= before.spec.memory_mib < 954  # the job's peak (its Snakemake and the rule) plus a margin
    assert before.spec.walltime_s is not None and before.spec.walltime_s < 3600
    assert "right-sized from 1 earlier job(s) of modest on local" in second.stderr + second.stdout


# The rule stops at its checkpoint the first time (its shell traps the signal, which the job's
# shell passes on past the job's Snakemake); the continuation's rule finds `checkpointed`.
SEGMENTED = """
rule all:
    input: "log.txt"

rule segmented:
    output: "log.txt"
    resources:
        runtime=1,
        esap_checkpoint="USR1@45s"
    shell:
        "if [ -e checkpointed ]; then echo resumed >> state; cp state {output}; exit 0; fi; "
        "trap 'echo checkpoint >> state; touch checkpointed; exit 85' USR1; "
        "echo started >> state; while :; do sleep 1; done"
"""


def test_a_rule_with_a_checkpoint_resource_continues_after_its_signal(tmp_path: Path, state_dir: Path) -> None:
    workdir = write_workflow(tmp_path / "segmented", SEGMENTED)
    result = snakemake(workdir, *executor_args("local"))
    assert result.returncode == 0, explain(result)
    assert (workdir / "log.txt").read_text() == "started\ncheckpoint\nresumed\n"
    first, second = sorted(latest_run_records(), key=lambda r: r.attempt)
    assert (first.exit_code, second.state, second.exit_code) == (85, JobState.COMPLETED, 0)
    assert second.retry_note == f"continues after its checkpoint (exit 85): segment 2 in {first.workdir}"


def test_a_checkpoint_resource_without_a_runtime_is_refused(tmp_path: Path, state_dir: Path) -> None:
    workdir = write_workflow(tmp_path / "no-runtime", SEGMENTED.replace("runtime=1,\n        ", ""))
    result = snakemake(workdir, *executor_args("local"))
    assert result.returncode != 0
    assert ("rule segmented: resources.esap_checkpoint: a checkpoint signal comes before the walltime: "
            "give resources.runtime") in result.stderr + result.stdout
    assert not latest_run_records()
