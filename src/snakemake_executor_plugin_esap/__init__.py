"""Snakemake executor plugin `esap`: runs workflows on the sites of the esap catalogue.

Snakemake finds this package by its name; `snakemake --executor esap --esap-site NAME`.
"""

from snakemake_interface_executor_plugins.settings import CommonSettings

from .executor import Executor
from .settings import ExecutorSettings

__all__ = ["Executor", "ExecutorSettings", "common_settings"]

common_settings = CommonSettings(
    non_local_exec=True,
    # The job runs in the workflow directory on the site: a shared filesystem is required.
    implies_no_shared_fs=False,
    job_deploy_sources=False,
    pass_default_storage_provider_args=True,
    pass_default_resources_args=True,
    # Environment variables travel in the job's environment, not in its command line.
    pass_envvar_declarations_to_cmd=False,
    auto_deploy_default_storage_provider=False,
    init_seconds_before_status_checks=0,
)
