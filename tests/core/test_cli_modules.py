"""A broken installation says so: `esap` refuses to run without one of its command modules."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from esap_executors.cli import main as cli_main


def test_a_missing_command_module_fails_loudly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", [*cli_main.COMMAND_MODULES, "esap_executors.cli.gone_commands"])
    assert cli_main.main(["runs"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("esap: error: command module esap_executors.cli.gone_commands cannot be imported")


def test_a_command_module_whose_dependency_is_missing_fails_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "broken_commands.py").write_text("import esap_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_commands", raising=False)
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", [*cli_main.COMMAND_MODULES, "broken_commands"])
    assert cli_main.main(["runs"]) != 0
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "broken_commands" in line and "esap_no_such_dependency" in line
