"""`esap cancel` of a run whose jobs wait for their site's submission limits: the waiting jobs
end CANCELLED and are never sent (the executor's dispatcher would otherwise send them later)."""

from __future__ import annotations

from pathlib import Path

from esap_executors.job import JobSpec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState
from tests.support import esap


def test_cancel_ends_the_jobs_waiting_for_the_sites_limits_and_they_are_never_sent(
        state_dir: Path, tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text(f"local:\n  backend: local\n  work_root: {tmp_path / 'work'}\n"
                     "  options: {max_cores: 2}\n  limits: {max_queued: 1}\n")
    ran = tmp_path / "ran"
    ran.mkdir()
    run = Run.open("cancel-waiting", catalogue=Catalogue.load(sites), store=open_store())
    try:
        first, waiting = run.submit([
            JobRequest(key=key, spec=JobSpec(script=f"touch {ran / key}; sleep 60"), site="local")
            for key in ("first", "waiting")])
        assert first.native_id is not None and waiting.native_id is None  # max_queued: 1
        cancelled = esap("cancel", run.run_id, sites=sites, timeout=120)
        assert cancelled.returncode == 0, cancelled.stderr
        assert f"{waiting.job_id} cancelled" in cancelled.stdout.splitlines()
        final = run.wait(timeout=90)
    finally:
        run.close()
    states = {record.key: record.state for record in final.values()}
    assert states == {"first": JobState.CANCELLED, "waiting": JobState.CANCELLED}
    assert run.store.job(waiting.job_id).native_id is None
    assert not (ran / "waiting").exists()
