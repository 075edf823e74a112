"""Bad requests are refused before anything reaches the scheduler, on both paths."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from esap_executors.errors import BadInput

from .conftest import JobRequest, cluster_of, sacct_count, shell

pytestmark = pytest.mark.slurm

CASES = {
    "short-partition-limit": (dict(partition="short", walltime="10m"), "walltime", "time limit of partition 'short'"),
    "unknown-partition": (dict(partition="nosuch"), "partition", "unknown partition 'nosuch'"),
    "unknown-account": (dict(account="nosuch"), "account", "unknown account 'nosuch'"),
    "too-many-cores": (dict(cores=1000), "cores", "no node of partition 'debug' has that many"),
    "too-many-gpus": (dict(gpus=8), "gpus", "GPUs"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refused_before_submission(new_run, site: str, case: str) -> None:
    values, field, words = CASES[case]
    run = new_run()
    good = JobRequest("good", shell("true"), site=site)
    bad = JobRequest("bad", shell("true", **values), site=site)
    with pytest.raises(BadInput) as refused:
        run.submit([good, bad])
    assert refused.value.field == field
    assert words in str(refused.value)
    assert run.snapshot() == {}  # nothing recorded
    assert sacct_count(run.run_id, cluster_of(site)) == 0  # nothing sent, not even the good job


def test_accepted_limits_and_accounts(new_run, site: str) -> None:
    """The short partition within its limit, a real account, a QoS and a GPU are accepted."""
    run = new_run()
    spec = shell('echo "gpus=$CUDA_VISIBLE_DEVICES"', partition="short", walltime="2m", account="cta",
                 qos="debug", gpus=1)
    record = run.submit([JobRequest("fits", spec, site=site)])[0]
    final = run.wait(timeout=120)[record.job_id]
    assert final.state.value == "completed", final
    with open(final.stdout) as out:
        assert out.read().strip() == "gpus=0"
    deadline = time.monotonic() + 60
    while True:  # the accounting database lags the controller by a few seconds
        accounting = subprocess.run(
            [cluster_of(site).command("sacct"), "-n", "-X", "-P", "-j", final.native_id, "-o", "Account,QOS,Partition"],
            capture_output=True, text=True, check=True).stdout.split()
        if accounting and accounting[0] == "cta|debug|short" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert accounting[0] == "cta|debug|short"
    more = run.submit([JobRequest("fits-again", spec, site=site), JobRequest("other", shell("true"), site=site)])
    run.wait(timeout=120)
    assert run.snapshot()[more[1].job_id].state.value == "completed"
    assert run.backend(site).cluster_reads == 1  # the cluster's configuration: read once per run


@pytest.mark.slurm_host
def test_slurm_account_environment_is_honoured(slurm, new_run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SBATCH_ACCOUNT", "nosuch")
    run = new_run()
    with pytest.raises(BadInput, match="unknown account 'nosuch'"):
        run.submit([JobRequest("env-account", shell("true"), site="slurm-local")])


CLOSED_SACCTMGR = {  # what users get on centres that do not open the accounting database to them
    "refused": 'echo "sacctmgr: error: Access/permission denied" >&2; exit 1',
    "silent": "exit 0",  # PrivateData: the user's own associations come back empty
}


@pytest.mark.slurm_host
@pytest.mark.parametrize("closed", sorted(CLOSED_SACCTMGR))
def test_accounts_checked_through_sshare_when_sacctmgr_is_closed(
    slurm, new_run, monkeypatch: pytest.MonkeyPatch, tmp_path, closed: str
) -> None:
    # Only sacctmgr is replaced; sshare, sbatch and the cluster are the real ones.
    (tmp_path / "sacctmgr").write_text("#!/bin/sh\n" + CLOSED_SACCTMGR[closed] + "\n")
    (tmp_path / "sacctmgr").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    run = new_run()
    with pytest.raises(BadInput, match="unknown account 'nosuch'.*cta"):
        run.submit([JobRequest("bad-account", shell("true", account="nosuch"), site="slurm-local")])
    (record,) = run.submit([JobRequest("good-account", shell("true", account="lofar"), site="slurm-local")])
    assert run.wait(timeout=120)[record.job_id].state.value == "completed"
