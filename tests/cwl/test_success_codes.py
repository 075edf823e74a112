"""A tool whose successCodes include its non-zero exit code succeeds, and esap records the job
as completed on every backend (SLURM's accounting calls such a job FAILED)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cwl.helpers import outputs_of, run_id_of, run_tool
from tests.support import esap, require_service

DATA = Path(__file__).parent / "data"
SITES = {"local": None, "slurm-local": "slurm", "slurm-rest": "slurm", "htcondor-local": "htcondor"}


@pytest.fixture
def workdir() -> Iterator[Path]:
    # not pytest's tmp_path (0700): HTCondor runs the jobs as another user
    path = Path(tempfile.mkdtemp(prefix="esap-cwl-codes-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("site", list(SITES))
def test_exit_code_in_success_codes_is_a_success(site: str, workdir: Path) -> None:
    service = SITES[site]
    if service:
        require_service(service)
    completed = run_tool("esap-cwltool", "--site", site, DATA / "success-code.cwl", cwd=workdir)
    out = outputs_of(completed)["out"]
    assert Path(out["path"]).read_text() == "three\n"
    assert "Final process status is success" in completed.stderr

    status = esap("status", "--json", run_id_of(completed.stderr))
    assert status.returncode == 0, status.stderr
    [job] = json.loads(status.stdout)
    assert (job["state"], job["exit_code"], job["reason"]) == ("completed", 3, None), job
