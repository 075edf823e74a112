"""cwltool:MPIRequirement through esap-cwltool: the processes become SLURM tasks, started by the
launcher named in --mpi-config-file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.slurm.conftest import CLUSTERS, SELECTED, require_cluster

from .helpers import outputs_of, run_tool

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("version", SELECTED)  # every Slurm version ESAP_TEST_SLURM selects
def test_mpi_requirement_runs_ranks_on_slurm(tmp_path: Path, state_dir: Path, version: str) -> None:
    cluster = CLUSTERS[version]
    require_cluster(cluster)
    config = tmp_path / "mpi.yml"
    config.write_text("runner: srun\nnproc_flag: -n\n")
    completed = run_tool("esap-cwltool", "--enable-ext", "--mpi-config-file", config, "--site", cluster.sites[0],
                         DATA / "mpi-ranks.cwl", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    ranks = Path(outputs_of(completed)["ranks"]["path"]).read_text().splitlines()
    assert sorted(ranks) == [f"rank {i} of 3" for i in range(3)]
