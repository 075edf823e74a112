"""esap-cwltool as a command: --executor local is stock cwltool; errors before submission."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.cwl.helpers import RUN_LINE, run_tool
from tests.support import EXAMPLE_SITES

DATA = Path(__file__).parent / "data"


def comparable(value: Any) -> Any:
    """Outputs without their (directory-dependent) locations."""
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items() if k not in ("location", "path")}
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


def test_executor_local_behaves_like_stock_cwltool(tmp_path: Path) -> None:
    args = ["--no-container", DATA / "scatter-wf.cwl"]
    (tmp_path / "stock").mkdir()
    (tmp_path / "local").mkdir()
    stock = run_tool("cwltool", *args, cwd=tmp_path / "stock")
    local = run_tool("esap-cwltool", "--executor", "local", *args, cwd=tmp_path / "local")
    assert stock.returncode == local.returncode == 0, local.stderr[-2000:]
    assert comparable(json.loads(local.stdout)) == comparable(json.loads(stock.stdout))
    assert not RUN_LINE.search(local.stderr), "--executor local must not create an esap run"


def test_stock_cwltool_has_no_executor_option(tmp_path: Path) -> None:
    completed = run_tool("cwltool", "--executor", "esap", DATA / "echo.cwl", cwd=tmp_path)
    assert completed.returncode != 0
    assert "unrecognized arguments: --executor" in completed.stderr


def test_help_lists_the_esap_options(tmp_path: Path) -> None:
    completed = run_tool("esap-cwltool", "--help", cwd=tmp_path)
    assert completed.returncode == 0
    for option in ("--executor", "--site", "--esap-sites", "--esap-run-id", "--no-container"):
        assert option in completed.stdout


def test_required_gpus_nowhere_is_refused_before_submission(tmp_path: Path) -> None:
    completed = run_tool("esap-cwltool", "--enable-ext", "--site", "local", DATA / "gpu-required.cwl", cwd=tmp_path)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "requires 1 GPU(s) but site local has no GPUs" in completed.stderr


def test_site_without_shared_filesystem_nor_file_transfer_is_refused(tmp_path: Path) -> None:
    sites = yaml.safe_load(EXAMPLE_SITES.read_text())
    sites["slurm-local"]["shared_filesystem"] = False
    catalogue = tmp_path / "sites.yaml"
    catalogue.write_text(yaml.safe_dump(sites))
    completed = run_tool("esap-cwltool", "--site", "slurm-local", DATA / "echo.cwl", "--message", "x",
                         cwd=tmp_path, sites=catalogue)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert "slurm-local.shared_filesystem: false needs a backend that transfers the jobs' files; slurm does not" \
        in completed.stderr


def test_unknown_site_is_a_one_line_error(tmp_path: Path) -> None:
    completed = run_tool("esap-cwltool", "--site", "nowhere", DATA / "echo.cwl", "--message", "x", cwd=tmp_path)
    assert completed.returncode == 2
    assert "unknown site 'nowhere'" in completed.stderr


def test_a_basket_error_is_printed_with_secrets_masked_and_control_characters_escaped(
        tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "t.cwl").write_text("cwlVersion: v1.2\nclass: CommandLineTool\nbaseCommand: 'true'\n"
                                    "inputs: []\noutputs: []\n")
    for gateway, shown, hidden in (("http://user:s3cret@127.0.0.1:1/x", "http://user:***@127.0.0.1:1/x", "s3cret"),
                                   ("http://127.0.0.1:1/\x1b[31mred", "\\x1b[31mred", "\x1b")):
        result = run_tool("esap-cwltool", "--site", "local", "--inputs-from-basket", "data", "--esap-gateway",
                          gateway, "t.cwl", cwd=tmp_path, env={"BEARER_TOKEN": "abc.def.ghi"}, timeout=120)
        assert result.returncode == 3, result.stderr
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("esap-cwltool: ESAP user profile unreachable at ") and shown in result.stderr
        assert hidden not in result.stderr
