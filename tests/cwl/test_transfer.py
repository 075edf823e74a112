"""A site without a shared filesystem (HTCondor file transfer): inputs go with the job, the
output directory comes back, and the job runs in a scratch directory this side never sees."""

from __future__ import annotations

from pathlib import Path

from esap_executors.states import JobState
from tests.cwl.helpers import jobs_of_run, outputs_of, run_id_of, run_tool
from tests.support import require_service

DATA = Path(__file__).parent / "data"


def test_directory_output_comes_back_from_a_scratch_directory(tmp_path: Path) -> None:
    require_service("htcondor")
    inputs = tmp_path / "inputs"
    (inputs / "folder").mkdir(parents=True)
    (inputs / "data.txt").write_text("payload\n")
    for name in ("a.dat", "b.dat"):
        (inputs / "folder" / name).write_text(name)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    completed = run_tool("esap-cwltool", "--site", "htcondor-transfer", "--no-container", DATA / "transfer.cwl",
                         "--data", inputs / "data.txt", "--folder", inputs / "folder", cwd=run_dir)
    outputs = outputs_of(completed)

    results = Path(outputs["results"]["path"])
    assert sorted(p.name for p in results.iterdir()) == ["copy.txt", "home.txt", "listing.txt", "where.txt"]
    assert sorted(Path(f["path"]).name for f in outputs["texts"]) == sorted(p.name for p in results.iterdir())
    assert (results / "copy.txt").read_text() == "payload\n"
    assert (results / "listing.txt").read_text().split() == ["a.dat", "b.dat"]

    [job] = jobs_of_run(run_id_of(completed.stderr))
    assert (job.site, job.state, job.exit_code) == ("htcondor-transfer", JobState.COMPLETED, 0)
    assert job.spec.stage_in and job.spec.stage_out, "the job's files were not transferred"
    where = (results / "where.txt").read_text().strip()
    home = (results / "home.txt").read_text().strip()
    # the job ran in HTCondor's scratch directory, not in its directory on this side
    assert Path(where).is_absolute()
    for submit_side in (job.workdir, str(tmp_path)):
        assert where != submit_side and not where.startswith(submit_side + "/"), (where, submit_side)
        assert not home.startswith(submit_side + "/"), (home, submit_side)
    assert Path(outputs["log"]["path"]).read_text().strip() == f"done in {where}"
