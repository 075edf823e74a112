"""Runs that heal themselves on the local site: retries by cause, with the request changed by the
policy, recorded per attempt, and refused with the reason when a limit would be exceeded."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from esap_executors.sqlite_store import open_store
from tests.support import esap

# Holds `size` MiB (written, so resident) for 3 s: long enough for the supervisor's memory check.
MEMORY_JOB = "import sys, time; b = bytearray(b'x') * (int(sys.argv[1]) * 1024 * 1024); time.sleep(3); print('done')"


def _sites(tmp_path: Path, extra: str = "") -> Path:
    sites = tmp_path / "sites.yaml"
    sites.write_text("local:\n  backend: local\n  options: {max_cores: 2}\n" + extra)
    return sites


def _attempts(run_id: str) -> list[dict[str, object]]:
    result = esap("status", run_id, "--json", sites=None)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_out_of_memory_is_retried_with_doubled_memory_and_succeeds(state_dir: Path, tmp_path: Path) -> None:
    result = esap("run", "--mem", "100M", "--retry", "OUT_OF_MEMORY:memory=x2", "--run-id", "oom",
                  "--", sys.executable, "-c", MEMORY_JOB, "150", sites=_sites(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "done" in result.stdout
    assert "OUT_OF_MEMORY" in result.stderr  # the front says why the first attempt failed
    assert "memory 100 MiB -> 200 MiB" in result.stderr
    first, second = sorted(open_store().jobs_of_run(_run_id("oom")), key=lambda r: r.attempt)
    assert (first.state.value, first.cause, first.spec.memory_mib) == ("failed", "OUT_OF_MEMORY", 100)
    assert (second.state.value, second.spec.memory_mib, second.attempt) == ("completed", 200, 1)
    assert second.retry_note == "after OUT_OF_MEMORY: memory 100 MiB -> 200 MiB"
    shown = _attempts(_run_id("oom"))
    assert [(j["state"], j["cause"]) for j in shown] == [("failed", "OUT_OF_MEMORY"), ("completed", None)]
    table = esap("status", _run_id("oom"), sites=None).stdout
    assert "OUT_OF_MEMORY" in table and "[after OUT_OF_MEMORY: memory 100 MiB -> 200 MiB]" in table
    report = json.loads(esap("report", _run_id("oom"), "--json", sites=None).stdout)
    assert [(j["attempt"], j["cause"], j["memory_mib"], j["retry_note"]) for j in report["jobs"]] == [
        (0, "OUT_OF_MEMORY", 100, None), (1, None, 200, "after OUT_OF_MEMORY: memory 100 MiB -> 200 MiB")]


def test_a_retry_beyond_the_policy_limit_is_refused_with_the_reason(state_dir: Path, tmp_path: Path) -> None:
    sites = _sites(tmp_path, "  retry:\n    max: 5\n    OUT_OF_MEMORY: {memory: x2, up_to: 150M}\n")
    result = esap("run", "--mem", "100M", "--run-id", "capped", "--", sys.executable, "-c", MEMORY_JOB, "300",
                  sites=sites, timeout=120)
    assert result.returncode == 1
    attempts = sorted(open_store().jobs_of_run(_run_id("capped")), key=lambda r: r.attempt)
    # 100 MiB, then 150 MiB (capped by up_to, not 200), then no third attempt
    assert [(r.spec.memory_mib, r.cause) for r in attempts] == [(100, "OUT_OF_MEMORY"), (150, "OUT_OF_MEMORY")]
    assert attempts[1].retry_note == (
        "not retried: OUT_OF_MEMORY: memory is already 150 MiB, the limit of the retry policy's up_to")
    assert "not retried: OUT_OF_MEMORY: memory is already 150 MiB" in result.stderr


def test_a_cause_without_a_rule_is_not_retried(state_dir: Path, tmp_path: Path) -> None:
    result = esap("run", "--retry", "OUT_OF_MEMORY:memory=x2", "--run-id", "exit3", "--", "sh", "-c", "exit 3",
                  sites=_sites(tmp_path), timeout=60)
    assert result.returncode == 1
    (only,) = open_store().jobs_of_run(_run_id("exit3"))
    assert (only.cause, only.exit_code, only.attempt) == ("EXIT_CODE", 3, 0)
    assert "EXIT_CODE" in esap("status", only.job_id, sites=None).stdout


def test_bad_retry_options_name_the_field_and_submit_nothing(state_dir: Path, tmp_path: Path) -> None:
    for option, message in (
        ("OUT_OF_SPACE:memory=x2", "--retry: 'OUT_OF_SPACE' is not a failure cause"),
        ("OUT_OF_MEMORY:memory=2", "--retry.memory: '2': expected a factor"),
        ("OUT_OF_MEMORY:colour=x2", "--retry: unknown change 'colour'"),
    ):
        result = esap("run", "--retry", option, "--", "true", sites=_sites(tmp_path))
        assert result.returncode == 2, result.stderr
        assert message in result.stderr
    bad_site = _sites(tmp_path, "  retry:\n    TIMEOUT: {walltime: x1.5, up_to: 64G}\n")
    result = esap("run", "--", "true", sites=bad_site)
    assert result.returncode == 2
    assert f"{bad_site}:5: local.retry.TIMEOUT.up_to:" in result.stderr
    assert open_store().latest_jobs() == []


def _run_id(key: str) -> str:
    from esap_executors.submitter import run_id_for

    return run_id_for(key)


def test_a_second_run_with_right_size_asks_for_less_memory_and_completes(state_dir: Path, tmp_path: Path) -> None:
    sites = _sites(tmp_path)
    command = ("run", "--mem", "500M", "--walltime", "1h", "--name", "grower")
    first = esap(*command, "--run-id", "first", "--", sys.executable, "-c", MEMORY_JOB, "50", sites=sites)
    assert first.returncode == 0, first.stderr
    second = esap(*command, "--right-size", "--run-id", "second", "--", sys.executable, "-c", MEMORY_JOB, "50",
                  sites=sites)
    assert second.returncode == 0, second.stderr
    (before,) = open_store().jobs_of_run(_run_id("first"))
    (after,) = open_store().jobs_of_run(_run_id("second"))
    assert before.spec.memory_mib == 500 and after.spec.memory_mib is not None
    assert 64 <= after.spec.memory_mib < 500  # the peak of the first run (about 60 MiB) plus a margin
    assert after.spec.walltime_s is not None and 60 <= after.spec.walltime_s < 3600
    assert (f"right-sized from 1 earlier job(s) of grower on local: memory 500 MiB -> {after.spec.memory_mib} MiB"
            in second.stderr)
    assert after.state.value == "completed"
