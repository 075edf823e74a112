"""A state database written by the release before schema versions opens, is migrated, and shows its jobs."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from esap_executors import state_schema
from esap_executors.errors import EsapError
from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import EXAMPLE_SITES, esap

# Written by main at aac48cf (no user_version): `esap run` of a job that succeeded, one that
# failed with exit code 3, one with --mem (local_jobs.memory_mib), a JDL job (jdl_jobs),
# an esap-cwltool run (cwl_generations) and a job on a site with a policy (policy_audit).
OLD_DATABASE = Path(__file__).parent / "data" / "state-before-migrations.db.gz"
OLD_JOBS = {
    "rd5998a3dbb9.5e8c9902": ("hello", "completed", 0),
    "ra91b3eafa2b.5e8c9902": ("fails", "failed", 3),
    "ra91b3eafa2b.9e16f301": ("sleeper", "completed", 0),
    "rb684772e384.5e8c9902": ("tiny", "completed", 0),
    "r20fd551d80a.ab011b91": ("echo.cwl", "completed", 0),
    "re5f8b5273e2.5e8c9902": ("audited", "completed", 0),
}


@pytest.fixture
def old_state(state_dir: Path) -> Path:
    database = state_dir / "state.db"
    with gzip.open(OLD_DATABASE) as packed, database.open("wb") as unpacked:
        shutil.copyfileobj(packed, unpacked)
    return database


def test_esap_status_shows_the_jobs_of_an_old_database(old_state: Path) -> None:
    result = esap("status", "--json")
    assert result.returncode == 0, result.stderr
    shown = {job["id"]: (job["name"], job["state"], job["exit_code"]) for job in json.loads(result.stdout)}
    assert shown == OLD_JOBS
    runs = esap("runs")
    assert runs.returncode == 0, runs.stderr
    assert "ra91b3eafa2b   cli" in runs.stdout and "1 completed, 1 failed" in runs.stdout
    db = sqlite3.connect(old_state)
    assert db.execute("PRAGMA user_version").fetchone()[0] == state_schema.VERSION


def test_every_old_table_reads_back_after_migration(old_state: Path) -> None:
    store = open_store(old_state)
    assert store.transitions("ra91b3eafa2b.5e8c9902")[-1][1] == "failed"
    jdl = store.jdl_job("rb684772e384", "job")
    assert jdl is not None and [name for name, _ in jdl.outputs] == ["std.out", "std.err"]
    assert jdl.output_dir.endswith("esap-output/rb684772e384.5e8c9902")
    assert [d["rule"] for d in store.policy_decisions("re5f8b5273e2")] == ["sites.yaml:4: no platform token required"]
    generations = store.connect().execute("SELECT generation FROM cwl_generations").fetchall()
    assert [g for (g,) in generations] == [1]
    memory = store.connect().execute("SELECT memory_mib FROM local_jobs WHERE job_id='ra91b3eafa2b.9e16f301'")
    assert memory.fetchone()[0] == 64


def test_an_old_run_reattaches_its_jobs_and_numbers_new_ones(old_state: Path) -> None:
    # `esap run --run-id fixture-run` again: the job of key "job" ended (its second attempt
    # completed), so the rerun reattaches to it instead of running it again.
    again = esap("run", "--json", "--run-id", "fixture-run", "--", "true")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["id"] == "ra91b3eafa2b.9e16f301"
    with Run.open("fixture-run", catalogue=Catalogue.load(EXAMPLE_SITES), store=open_store()) as run:
        [record] = run.submit([JobRequest(key="added", spec=make_spec(["true"]), site="local")])
        final = run.wait(timeout=120)
    assert record.job_id == "ra91b3eafa2b.1"
    assert final[record.job_id].state is JobState.COMPLETED
    shown = {j["id"] for j in json.loads(esap("status", "ra91b3eafa2b", "--json").stdout)}
    assert shown == {"ra91b3eafa2b.5e8c9902", "ra91b3eafa2b.9e16f301", "ra91b3eafa2b.1"}


def test_a_database_of_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    open_store(path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {state_schema.VERSION + 1}")
    db.close()
    with pytest.raises(EsapError, match="schema version"):
        open_store(path)


def test_migrations_run_once_and_an_empty_file_gets_the_whole_schema(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(path)
    open_store(path)  # a second opener finds it current
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "jobs", "transitions", "policy_audit", "cwl_generations", "jdl_jobs",
            "local_slots", "local_batches", "local_jobs"} <= tables
    assert db.execute("PRAGMA user_version").fetchone()[0] == state_schema.VERSION


def test_migration_5_old_jobs_have_no_cause_and_a_failure_gets_one(old_state: Path) -> None:
    """Migration 5 (cause, node, retry_note): old rows read back without them; the failed job of
    the old database is explained as before, and new failures record their cause."""
    store = open_store(old_state)
    old = store.job("ra91b3eafa2b.5e8c9902")
    assert (old.state, old.exit_code, old.cause, old.node, old.retry_note) == (JobState.FAILED, 3, None, None, None)
    failed = esap("run", "--json", "--run-id", "after-migration-5", "--", "sh", "-c", "exit 4")
    assert failed.returncode == 1
    shown = json.loads(failed.stdout)
    assert (shown["state"], shown["exit_code"], shown["cause"]) == ("failed", 4, "EXIT_CODE")


def test_migration_6_usage_history_starts_empty_and_keeps_a_jobs_first_row(old_state: Path) -> None:
    from esap_executors.store import UsageRow

    store = open_store(old_state)
    assert store.usage_history("hello", "local") == []
    store.record_usage([UsageRow("ra91b3eafa2b.9e16f301", "sleeper", "local", 64, 2.0)])
    store.record_usage([UsageRow("ra91b3eafa2b.9e16f301", "sleeper", "local", 999, 9.0)])
    assert store.usage_history("sleeper", "local") == [UsageRow("ra91b3eafa2b.9e16f301", "sleeper", "local", 64, 2.0)]
