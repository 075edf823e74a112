"""Container jobs: the site's runtime inside a vanilla-universe job, where the pool can run it."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.job import Container, make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue, ContainerSettings
from esap_executors.states import JobState
from esap_executors.store import Store
from tests.htcondor.conftest import WAIT, pool_settings, with_options
from tests.support import require_service

CHROOT_REASON = (
    "the Debian 12 test pool runs its daemons (and so its jobs) in a chroot of a Debian 13 root: "
    "the kernel refuses user namespaces to chrooted processes, so apptainer fails there with "
    "'not allowed to create user namespace' and no podman is installed in it; container jobs "
    "run only on pools whose execute nodes have a working runtime (native Debian 13 here)"
)


def test_container_job_on_a_pool_without_containers_is_refused_before_submission(
    catalogue: Catalogue, store: Store
) -> None:
    site = catalogue.get("htcondor-local")
    catalogue.sites["htcondor-local"] = dataclasses.replace(
        site, container=ContainerSettings(runtime="podman", images={"busybox": "localhost/busybox:ci"})
    )
    spec = make_spec(["true"], container=Container("busybox"))
    with Run.open(f"htc-ct-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        with pytest.raises(BadInput, match="cannot run containers"):
            run.submit([JobRequest(key="ct", spec=spec)])
        assert run.backend("htcondor-local").action_count == 0


def test_container_job_runs_in_the_sites_runtime(catalogue: Catalogue, store: Store) -> None:
    if pool_settings().get("HTC_MODE") == "chroot":
        pytest.skip(CHROOT_REASON)
    require_service("containers")
    site = catalogue.get("htcondor-local")
    catalogue.sites["htcondor-local"] = dataclasses.replace(
        site, container=ContainerSettings(runtime="apptainer", images={"busybox": "/var/tmp/esap-images/busybox.sif"})
    )
    with_options(catalogue, "htcondor-local", containers=True)
    spec = make_spec(["sh", "-c", "cat /etc/passwd | head -1; echo in-container"], container=Container("busybox"))
    with Run.open(f"htc-ct-{uuid.uuid4()}", catalogue=catalogue, store=store, default_site="htcondor-local") as run:
        record = run.submit([JobRequest(key="ct", spec=spec)])[0]
        final = run.wait(timeout=WAIT)[record.job_id]
    assert final.state is JobState.COMPLETED, final.reason
    assert "in-container" in Path(final.stdout).read_text()
