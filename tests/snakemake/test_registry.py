"""Snakemake's own registry tests: the plugin is found by name and its settings round-trip."""

from __future__ import annotations

from snakemake_interface_common.plugin_registry import PluginRegistryBase
from snakemake_interface_common.plugin_registry.plugin import PluginBase, SettingsBase
from snakemake_interface_common.plugin_registry.tests import TestRegistryBase
from snakemake_interface_executor_plugins.registry import ExecutorPluginRegistry

from snakemake_executor_plugin_esap import ExecutorSettings


class TestRegistry(TestRegistryBase):
    __test__ = True

    def get_registry(self) -> PluginRegistryBase:
        return ExecutorPluginRegistry()

    def get_test_plugin_name(self) -> str:
        return "esap"

    def validate_plugin(self, plugin: PluginBase) -> None:
        assert plugin.settings_cls is ExecutorSettings
        assert plugin.common_settings.non_local_exec  # type: ignore[attr-defined]
        assert not plugin.common_settings.implies_no_shared_fs  # type: ignore[attr-defined]

    def validate_settings(self, settings: SettingsBase, plugin: PluginBase) -> None:
        assert isinstance(settings, ExecutorSettings)
        assert settings.site == "slurm-local"
        assert settings.partition == "debug"
        assert settings.poll_interval == 3.0
        assert settings.max_poll_interval == 60.0

    def get_example_args(self) -> list[str]:
        return [
            "--esap-site", "slurm-local", "--esap-partition", "debug",
            "--esap-poll-interval", "3", "--esap-max-poll-interval", "60",
        ]


def test_account_comes_from_sbatch_account(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SBATCH_ACCOUNT", "astro")
    assert ExecutorSettings().effective_account() == "astro"
    assert ExecutorSettings(account="given").effective_account() == "given"
