"""The esap:Checkpoint hint on real SLURM: the step gets its signal before its ToolTimeLimit, stops
at its checkpoint (exit 85), and a continuation in the same directory finishes it; cwltool sees
one step that succeeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors.states import JobState
from tests.slurm.conftest import CLUSTERS, SELECTED, require_cluster

from .helpers import jobs_of_run, outputs_of, run_id_of, run_tool

SEGMENTED_TOOL = """
cwlVersion: v1.2
class: CommandLineTool
$namespaces: {esap: "https://w3id.org/esap/cwl#"}
requirements:
  ToolTimeLimit: {timelimit: 120}
hints:
  esap:Checkpoint: {signal: USR1, before: 60s}
baseCommand: [bash, -c]
arguments:
  - |
    if [ -e checkpointed ]; then echo resumed >> log; exit 0; fi
    trap 'echo checkpoint >> log; touch checkpointed; exit 85' USR1
    echo started >> log
    while :; do sleep 1; done
inputs: []
outputs:
  log: {type: File, outputBinding: {glob: log}}
"""


@pytest.mark.parametrize("version", SELECTED)  # every Slurm version ESAP_TEST_SLURM selects
def test_a_checkpointed_step_continues_and_cwltool_sees_it_succeed(tmp_path: Path, state_dir: Path,
                                                                   version: str) -> None:
    cluster = CLUSTERS[version]
    require_cluster(cluster)
    tool = tmp_path / "segmented.cwl"
    tool.write_text(SEGMENTED_TOOL)
    completed = run_tool("esap-cwltool", "--site", cluster.sites[0], tool, cwd=tmp_path, timeout=480)
    outputs = outputs_of(completed)
    assert Path(outputs["log"]["path"]).read_text() == "started\ncheckpoint\nresumed\n"
    first, second = sorted(jobs_of_run(run_id_of(completed.stderr)), key=lambda r: r.attempt)
    assert (first.exit_code, second.state, second.exit_code) == (85, JobState.COMPLETED, 0)
    assert first.workdir == second.workdir and first.native_id != second.native_id
    assert second.retry_note == f"continues after its checkpoint (exit 85): segment 2 in {first.workdir}"
