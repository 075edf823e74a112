"""A site without a shared filesystem: HTCondor's file transfer moves inputs and outputs."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.job import StageIn, StageOut, make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT


def test_inputs_and_outputs_travel_by_file_transfer(catalogue: Catalogue, store: Store, work_root: Path) -> None:
    inputs = work_root / "inputs"
    inputs.mkdir()
    (inputs / "in.txt").write_text("alpha\n")
    (inputs / "other-name.txt").write_text("beta\n")
    results = work_root / "results"
    results.mkdir()
    results.chmod(0o777)  # the shadow writes remapped outputs as the job owner
    spec = make_spec(
        ["sh", "-c", "cat in.txt sub/data.txt > out.txt; mkdir -p deep; pwd > deep/where.txt"],
        stage_in=(StageIn(str(inputs / "in.txt"), "in.txt"), StageIn(str(inputs / "other-name.txt"), "sub/data.txt")),
        stage_out=(StageOut("out.txt", str(results / "combined.txt")), StageOut("deep/where.txt", "where.txt")),
    )
    with Run.open(f"htc-xfer-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-transfer") as run:
        assert run.backend("htcondor-transfer").site_capabilities.transfers_files
        record = run.submit([JobRequest(key="xfer", spec=spec)])[0]
        final = run.wait(timeout=WAIT)[record.job_id]
    assert final.state is JobState.COMPLETED, final.reason
    assert (results / "combined.txt").read_text() == "alpha\nbeta\n"
    where = (Path(final.workdir) / "where.txt").read_text().strip()
    assert where != final.workdir  # it ran in the execute node's scratch directory, not the workdir
    assert not (Path(final.workdir) / "out.txt").exists()  # remapped, not left in the workdir


def test_a_missing_declared_input_is_refused_before_submission(catalogue: Catalogue, store: Store,
                                                              work_root: Path) -> None:
    spec = make_spec(["cat", "in.txt"], stage_in=(StageIn(str(work_root / "nope.txt"), "in.txt"),))
    with Run.open(f"htc-miss-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-transfer") as run:
        with pytest.raises(BadInput, match="nope.txt"):
            run.submit([JobRequest(key="missing", spec=spec)])
        assert run.backend("htcondor-transfer").action_count == 0
        assert run.snapshot() == {}


def test_a_missing_declared_output_fails_the_job(catalogue: Catalogue, store: Store) -> None:
    spec = make_spec(["true"], stage_out=(StageOut("never-written.txt", "never-written.txt"),))
    with Run.open(f"htc-out-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-transfer") as run:
        record = run.submit([JobRequest(key="noout", spec=spec)])[0]
        final = run.wait(timeout=WAIT)[record.job_id]
    assert final.state is JobState.FAILED
    assert final.reason and "never-written.txt" in final.reason


def test_a_batch_with_file_transfer_goes_as_one_cluster(catalogue: Catalogue, store: Store, work_root: Path) -> None:
    inputs = work_root / "batch-inputs"
    inputs.mkdir()
    requests = []
    for i in range(3):
        (inputs / f"n{i}.txt").write_text(f"{i}\n")
        spec = make_spec(["sh", "-c", "cat n.txt n.txt > twice.txt"],
                         stage_in=(StageIn(str(inputs / f"n{i}.txt"), "n.txt"),),
                         stage_out=(StageOut("twice.txt", "twice.txt"),))
        requests.append(JobRequest(key=f"b{i}", spec=spec))
    with Run.open(f"htc-xfer-batch-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-transfer") as run:
        records = run.submit(requests)
        assert len({(r.native_id or "").split(".")[0] for r in records}) == 1
        final = run.wait(timeout=WAIT)
    for i, record in enumerate(records):
        done = final[record.job_id]
        assert done.state is JobState.COMPLETED, done.reason
        assert (Path(done.workdir) / "twice.txt").read_text() == f"{i}\n{i}\n"


def test_inputs_keep_their_directories_without_declared_outputs(catalogue: Catalogue, store: Store,
                                                               work_root: Path) -> None:
    source = work_root / "nested-input.txt"
    source.write_text("nested\n")
    spec = make_spec(["sh", "-c", "cat deep/er/in.txt"], stage_in=(StageIn(str(source), "deep/er/in.txt"),))
    with Run.open(f"htc-xfer-nested-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-transfer") as run:
        record = run.submit([JobRequest(key="nested", spec=spec)])[0]
        final = run.wait(timeout=WAIT)[record.job_id]
    assert final.state is JobState.COMPLETED, final.reason
    assert Path(final.stdout).read_text() == "nested\n"


def test_script_jobs_run_with_and_without_a_shared_filesystem(catalogue: Catalogue, store: Store) -> None:
    from esap_executors.job import JobSpec

    spec = JobSpec(script='x="a b"\necho "script says $x"\n').validate()
    for site in ("htcondor-local", "htcondor-transfer"):
        with Run.open(f"htc-script-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site=site) as run:
            record = run.submit([JobRequest(key="script", spec=spec)])[0]
            final = run.wait(timeout=WAIT)[record.job_id]
        assert final.state is JobState.COMPLETED, (site, final.reason)
        assert Path(final.stdout).read_text() == "script says a b\n"


def test_script_jobs_sharing_a_working_directory_each_run_their_own_script(
    catalogue: Catalogue, store: Store
) -> None:
    import tempfile

    from esap_executors.job import JobSpec

    shared = Path(tempfile.mkdtemp(prefix="esap-htc-shared-", dir="/tmp"))
    shared.chmod(0o777)  # the pool runs the jobs as its unprivileged owner (pytest's tmp is 0700)
    with Run.open(f"htc-shared-cwd-{uuid.uuid4()}", catalogue=catalogue, store=store,
                  default_site="htcondor-local") as run:
        records = run.submit([
            JobRequest(key=f"s{i}", spec=JobSpec(script=f"echo job {i}\n", cwd=str(shared)).validate())
            for i in range(3)
        ])
        final = run.wait(timeout=WAIT)
    assert all(r.state is JobState.COMPLETED for r in final.values()), [r.reason for r in final.values()]
    outputs = sorted(Path(final[r.job_id].stdout).read_text() for r in records)
    assert outputs == ["job 0\n", "job 1\n", "job 2\n"]
