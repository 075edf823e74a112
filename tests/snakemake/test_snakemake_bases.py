"""Snakemake's own workflow test base (simple and group workflows) with esap on real schedulers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from snakemake.common.tests import TestWorkflowsLocalStorageBase
from snakemake.settings import types as settings

from snakemake_executor_plugin_esap import ExecutorSettings

from ..support import EXAMPLE_SITES, require_service
from .helpers import HTCONDOR_SITE, SLURM_SITE, shared_directory


class _EsapWorkflows(TestWorkflowsLocalStorageBase):
    site = ""
    service = ""
    latency_wait = 30

    @pytest.fixture(autouse=True)
    def _service(self) -> None:
        require_service(self.service)

    def get_executor(self) -> str:
        return "esap"

    def get_executor_settings(self) -> ExecutorSettings:
        return ExecutorSettings(site=self.site, sites=str(EXAMPLE_SITES), poll_interval=0.5,
                                max_poll_interval=2)

    def get_remote_execution_settings(self) -> settings.RemoteExecutionSettings:
        return settings.RemoteExecutionSettings(seconds_between_status_checks=1, envvars=[])


@pytest.mark.slurm
class TestWorkflowsSlurm(_EsapWorkflows):
    __test__ = True
    site = SLURM_SITE
    service = "slurm"


@pytest.mark.htcondor
class TestWorkflowsHTCondor(_EsapWorkflows):
    __test__ = True
    site = HTCONDOR_SITE
    service = "htcondor"

    @pytest.fixture
    def tmp_path(self) -> Iterator[Path]:  # type: ignore[override]
        # the pool runs jobs as its unprivileged user, in the workflow directory
        with shared_directory("esap-smk-htc-") as path:
            yield path

    def _copy_test_files(self, test_path: Path, tmp_path: Path) -> None:
        super()._copy_test_files(test_path, tmp_path)  # type: ignore[no-untyped-call]
        for path in [tmp_path, *tmp_path.rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
