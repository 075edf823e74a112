"""What the schedd receives: the job model mapped onto a job ad (jobs submitted on hold)."""

from __future__ import annotations

import time
import uuid

import htcondor2 as htcondor

from esap_executors.backends import backend_class
from esap_executors.backends.base import Submission
from esap_executors.job import make_spec
from esap_executors.sites import Catalogue
from tests.htcondor.conftest import with_options


def test_job_ad_carries_resources_walltime_environment_accounting_and_run_id(catalogue: Catalogue) -> None:
    with_options(catalogue, "htcondor-local", submit={"hold": "true"})
    site = catalogue.get("htcondor-local")
    backend = backend_class("htcondor")(site)
    run_id = "rmap" + uuid.uuid4().hex[:8]
    spec = make_spec(["python3", "-c", "print(1)", "two words"], cores=2, memory="1G", scratch="2G", gpus=1,
                     walltime="1h", env={"ESAP_X": "a b"}, accounting_group="group_esap.alice")
    workdir = f"{site.work_root}/{run_id}/j"
    job = Submission(job_id=f"{run_id}.j", run_id=run_id, name="mapped", spec=spec, workdir=workdir,
                     stdout=f"{workdir}/esap.out", stderr=f"{workdir}/esap.err")
    backend.validate([job])
    [native] = backend.submit([job])
    try:
        [ad] = backend.connection.run("test", lambda schedd: schedd.query(
            f"ClusterId == {native.split('.')[0]}",
            ["RequestCpus", "RequestMemory", "RequestDisk", "RequestGPUs", "AllowedExecuteDuration",
             "Environment", "AcctGroup", "EsapRunId", "EsapJobId", "EsapName", "Iwd", "Out", "Err",
             "Cmd", "Arguments", "Owner", "ShouldTransferFiles"]))
        found = backend.find(run_id, since=time.time() - 60)
    finally:
        backend.connection.run("cleanup", lambda schedd: schedd.act(htcondor.JobAction.Remove, [native]))
        backend.close()
    assert ad["RequestCpus"] == 2 and ad["RequestMemory"] == 1024
    assert ad["RequestDisk"] == 2048 * 1024 and ad["RequestGPUs"] == 1
    assert ad["AllowedExecuteDuration"] == 3600
    assert ad["Environment"] == "ESAP_X=a' 'b PATH=/usr/local/bin:/usr/bin:/bin"
    assert ad["AcctGroup"] == "group_esap.alice"
    assert (ad["EsapRunId"], ad["EsapJobId"], ad["EsapName"]) == (run_id, f"{run_id}.j", "mapped")
    assert ad["Iwd"] == workdir and ad["Out"] == "esap.out"
    assert ad["Cmd"] == "/usr/bin/env"  # PATH lookup on the execute side
    assert ad["Arguments"] == "python3 -c print(1) two' 'words"  # HTCondor's canonical quoting
    assert ad["Owner"] != "root" and ad["ShouldTransferFiles"] == "NO"
    assert [(f.native_id, f.job_id) for f in found] == [(native, f"{run_id}.j")]
