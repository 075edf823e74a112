"""The esap:Retry hint: a CWL step killed for its memory on the local site is retried with more."""

from __future__ import annotations

from pathlib import Path

from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState

from .helpers import outputs_of, run_id_of, run_tool

HUNGRY_TOOL = """
cwlVersion: v1.2
class: CommandLineTool
$namespaces: {esap: "https://w3id.org/esap/cwl#"}
requirements:
  ResourceRequirement: {ramMin: 200}
hints:
  esap:Retry:
    max: 2
    OUT_OF_MEMORY: {memory: x2, up_to: 1G}
baseCommand: [python3, -c, "import time; b = bytearray(b'x') * (300 << 20); time.sleep(3); print('fed')"]
stdout: fed.txt
inputs: []
outputs:
  fed: {type: stdout}
"""


def test_a_step_killed_for_memory_is_retried_with_doubled_memory(tmp_path: Path, state_dir: Path) -> None:
    tool = tmp_path / "hungry.cwl"
    tool.write_text(HUNGRY_TOOL)
    completed = run_tool("esap-cwltool", "--site", "local", tool, cwd=tmp_path)
    outputs = outputs_of(completed)
    assert Path(outputs["fed"]["path"]).read_text() == "fed\n"
    first, second = sorted(open_store().jobs_of_run(run_id_of(completed.stderr)), key=lambda r: r.attempt)
    assert (first.state, first.cause, first.spec.memory_mib) == (JobState.FAILED, "OUT_OF_MEMORY", 200)
    assert (second.state, second.spec.memory_mib) == (JobState.COMPLETED, 400)
    assert second.retry_note == "after OUT_OF_MEMORY: memory 200 MiB -> 400 MiB"


MODEST_TOOL = """
cwlVersion: v1.2
class: CommandLineTool
requirements:
  ResourceRequirement: {ramMin: 500}
baseCommand: [python3, -c, "import time; b = bytearray(b'x') * (20 << 20); time.sleep(2); print('ok')"]
stdout: ok.txt
inputs: []
outputs:
  ok: {type: stdout}
"""


def test_a_second_run_with_right_size_asks_for_less_memory(tmp_path: Path, state_dir: Path) -> None:
    tool = tmp_path / "modest.cwl"
    tool.write_text(MODEST_TOOL)
    first = run_tool("esap-cwltool", "--site", "local", tool, cwd=tmp_path)
    outputs_of(first)
    second = run_tool("esap-cwltool", "--site", "local", "--esap-right-size", tool, cwd=tmp_path)
    assert Path(outputs_of(second)["ok"]["path"]).read_text() == "ok\n"
    (before,) = open_store().jobs_of_run(run_id_of(first.stderr))
    (after,) = open_store().jobs_of_run(run_id_of(second.stderr))
    assert before.spec.memory_mib == 500 and after.spec.memory_mib is not None
    assert 64 <= after.spec.memory_mib < 500 and after.state is JobState.COMPLETED
    assert "right-sized from 1 earlier job(s) of modest.cwl on local" in second.stderr
