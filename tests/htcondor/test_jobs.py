"""Single jobs on the real pool: what a user sees of success, failure, holds and cancel."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import htcondor2 as htcondor

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT

TIMEOUT = WAIT


def open_run(catalogue: Catalogue, store: Store, site: str = "htcondor-local") -> Run:
    return Run.open(f"htc-test-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site=site)


def test_success_job_sees_its_job_ad_and_exact_arguments(catalogue: Catalogue, store: Store) -> None:
    tricky = ["$HOME", "$(Owner)", "it's", 'say "hi"', "a  b", ""]
    spec = make_spec(
        ["sh", "-c", 'echo "ad=$_CONDOR_JOB_AD"; echo "who=$(id -un)"; for a in "$@"; do echo "[$a]"; done',
         "sh", *tricky],
        env={"GREETING": "hello world", "DOLLAR": "$PATH"},
        memory="128M",
        walltime="10m",
    )
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="ok", spec=spec)])[0]
        final = run.wait(timeout=TIMEOUT)[record.job_id]
        queries = run.backend("htcondor-local").query_count
    assert final.state is JobState.COMPLETED, final.reason
    assert final.exit_code == 0
    out = Path(final.stdout).read_text().splitlines()
    assert out[0].startswith("ad=/") and out[0].endswith(".job.ad")
    assert out[1].startswith("who=") and out[1] != "who=root"  # HTCondor never runs root's jobs
    assert out[2:] == [f"[{a}]" for a in tricky]
    assert queries == 0  # states came from the event log alone


def test_environment_reaches_the_job(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["sh", "-c", 'echo "$GREETING|$DOLLAR"'], env={"GREETING": "hello world", "DOLLAR": "$(X) $Y"})
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="env", spec=spec)])[0]
        final = run.wait(timeout=TIMEOUT)[record.job_id]
    assert final.state is JobState.COMPLETED, final.reason
    assert Path(final.stdout).read_text().strip() == "hello world|$(X) $Y"


def test_non_zero_exit_is_a_failure_with_its_exit_code(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["sh", "-c", "echo failing >&2; exit 3"])
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="bad", spec=spec)])[0]
        final = run.wait(timeout=TIMEOUT)[record.job_id]
    assert final.state is JobState.FAILED
    assert final.exit_code == 3
    assert "failing" in Path(final.stderr).read_text()


def test_held_job_fails_with_the_hold_reason_and_leaves_the_queue(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["cat"], stdin="missing-input.txt")  # the starter cannot open stdin: held
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="held", spec=spec)])[0]
        final = run.wait(timeout=TIMEOUT)[record.job_id]
        backend = run.backend("htcondor-local")
        cluster, proc = (final.native_id or "").split(".")
        for _ in range(150):  # esap removes the held job; the schedd takes a moment
            left = backend.connection.run("test", lambda schedd: schedd.query(
                f"ClusterId == {cluster} && ProcId == {proc}", ["JobStatus"]))
            if not left:
                break
            time.sleep(0.2)
    assert final.state is JobState.FAILED
    assert final.reason and final.reason.startswith("held:")
    assert "missing-input.txt" in final.reason
    assert left == []


def test_held_job_is_released_as_often_as_the_site_allows(catalogue: Catalogue, store: Store) -> None:
    from tests.htcondor.conftest import with_options

    with_options(catalogue, "htcondor-local", release_holds=1)
    spec = make_spec(["cat"], stdin="missing-input.txt")
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="held-twice", spec=spec)])[0]
        final = run.wait(timeout=TIMEOUT)[record.job_id]
        events = run.backend("htcondor-local")._event_log(run.run_id).jobs[final.native_id or ""]
    assert final.state is JobState.FAILED
    assert events.holds == 2 and events.releases == 1


def test_cancel_removes_the_job(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["sleep", "600"])
    with open_run(catalogue, store) as run:
        record = run.submit([JobRequest(key="long", spec=spec)])[0]
        deadline = time.monotonic() + TIMEOUT
        while run.snapshot()[record.job_id].state is not JobState.RUNNING and time.monotonic() < deadline:
            time.sleep(0.2)
        assert run.snapshot()[record.job_id].state is JobState.RUNNING
        run.cancel()
        final = run.wait(timeout=TIMEOUT)[record.job_id]
        backend = run.backend("htcondor-local")
        assert backend.action_count == 2  # one submit, one batched remove
    assert final.state is JobState.CANCELLED


def test_describe_reads_the_pool(catalogue: Catalogue, store: Store) -> None:
    from esap_executors.backends import backend_class

    site = catalogue.get("htcondor-local")
    backend = backend_class("htcondor")(site)
    values = backend.describe()
    assert values["GlueCEInfoLRMSType"] == "Condor"
    assert values["GlueCEInfoTotalCPUs"] >= 1
    assert values["GlueHostMainMemoryRAMSize"] > 0
    assert htcondor.version()


def test_fs_authentication_alone_runs_a_job(state_dir: Path, work_root: Path) -> None:
    """The FS method (a file in the shared /tmp proves the local uid), no token: in a fresh
    process, so that no security session of another method is reused."""
    import yaml

    from tests.support import EXAMPLE_SITES, esap

    sites = yaml.safe_load(EXAMPLE_SITES.read_text())
    site = sites["htcondor-local"]
    site["credentials"] = {"htcondor_auth": ["FS"]}
    site["work_root"] = str(work_root / "fs")
    sites_file = work_root / "sites.yaml"
    sites_file.write_text(yaml.safe_dump({"htcondor-local": site}))
    result = esap("run", "--site", "htcondor-local", "--", "sh", "-c", "echo fs-ok", sites=sites_file, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fs-ok"


def test_dollar_signs_stay_literal_in_a_late_materialized_cluster(catalogue: Catalogue, store: Store) -> None:
    words = ["$HOME", "$(Owner)", "${x}", "a$", "$"]
    requests = [JobRequest(key=f"d{i}", spec=make_spec(["echo", word], env={"W": word}))
                for i, word in enumerate(words)]
    with open_run(catalogue, store) as run:
        records = run.submit(requests)
        assert len({(r.native_id or "").split(".")[0] for r in records}) == 1
        final = run.wait(timeout=TIMEOUT)
    for record, word in zip(records, words, strict=True):
        done = final[record.job_id]
        assert done.state is JobState.COMPLETED, done.reason
        assert Path(done.stdout).read_text() == word + "\n"
