"""Snakemake with inputs and outputs by storage URL (the `esap` storage plugin on the staging layer),
against the real WebDAV server, through the esap executor."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from esap_executors.states import JobState
from tests.snakemake.helpers import executor_args, latest_run_records, shared_directory, snakemake
from tests.staging.conftest import Storage, login, visible_files, write_auth
from tests.support import require_service

SNAKEFILE = Path(__file__).parent / "data" / "Snakefile"
TABLE = b"ra dec\n10.5 -3.2\n"


def _config(server: Storage) -> list[str]:
    server.put_file("in/table.txt", TABLE)
    server.put_file("in/notes.txt", b"seen twice\n")
    return ["--config", f"table={server.https('in/table.txt')}", f"notes={server.davs('in/notes.txt')}",
            f"out={server.davs('results/summary.txt')}"]


@pytest.mark.parametrize("site", ["slurm-local", "htcondor-transfer"])
def test_storage_urls_in_and_out(site: str, logged_in: Storage) -> None:
    """The same workflow on a shared filesystem and on a site without one (its files transferred:
    the job runs in HTCondor's scratch directory as the pool's user)."""
    require_service("slurm" if site.startswith("slurm") else "htcondor")
    with shared_directory("esap-smk-storage-") as workdir:
        shutil.copy(SNAKEFILE, workdir / "Snakefile")
        completed = snakemake(workdir, *executor_args(site), *_config(logged_in), shared=True)
        logs = "".join(p.read_text() for p in sorted(workdir.glob(".snakemake/esap_logs/*/*.err")))
        where = (workdir / "where.txt").read_text().strip() if (workdir / "where.txt").exists() else ""

    assert completed.returncode == 0, completed.stderr[-3000:] + "\n--- the job's log:\n" + logs[-6000:]
    assert visible_files(logged_in.local("results")) == ["summary.txt"]
    assert (logged_in.local("results") / "summary.txt").read_text() == "2\n" + TABLE.decode() + "seen twice\n"
    [job] = latest_run_records()
    assert (job.site, job.state) == (site, JobState.COMPLETED)
    if site == "htcondor-transfer":
        assert job.spec.stage_in and job.spec.stage_out, "the job's files were not transferred"
        assert where and not where.startswith(str(workdir)), where  # it ran in a scratch directory


def test_a_missing_input_url_is_named_before_anything_is_submitted(logged_in: Storage, tmp_path: Path) -> None:
    require_service("slurm")
    workdir = tmp_path / "wf"
    workdir.mkdir()
    shutil.copy(SNAKEFILE, workdir / "Snakefile")
    config = _config(logged_in)
    missing = logged_in.davs("in/no-such-notes.txt")
    config[2] = f"notes={missing}"
    completed = snakemake(workdir, *executor_args("slurm-local"), *config)

    assert completed.returncode != 0
    assert "MissingInputException" in completed.stderr and missing in completed.stderr, completed.stderr[-3000:]
    assert latest_run_records() == []  # no job was submitted
    assert visible_files(logged_in.local("results")) == []


def test_no_write_scope_stops_the_job_before_it_is_submitted(server: Storage, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    require_service("slurm")
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/"])))
    login(server, scope="openid offline_access storage.read:/")
    workdir = tmp_path / "wf"
    workdir.mkdir()
    shutil.copy(SNAKEFILE, workdir / "Snakefile")
    completed = snakemake(workdir, *executor_args("slurm-local"), *_config(server))

    assert completed.returncode != 0
    assert "storage.modify" in completed.stderr or "storage.create" in completed.stderr, completed.stderr[-3000:]
    assert "esap: " in completed.stderr  # the executor refused the job (not the upload after it)
    assert latest_run_records() == []  # nothing was submitted
    assert visible_files(server.local("results")) == []
