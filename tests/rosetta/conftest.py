"""Rosetta tests: the real Rosetta web app of scripts/services/rosetta.sh (its SLURM computing
submits to the cluster of slurm.sh over SSH)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from esap_executors.backends.rosetta.client import RosettaClient
from esap_executors.sites import Catalogue
from tests.support import EXAMPLE_SITES, ROSETTA_PASSWORD, require_service

ROSETTA_URL = "http://127.0.0.1:8710"
ROSETTA_USER = "esap"


@pytest.fixture(scope="session")
def rosetta() -> None:
    require_service("slurm")
    require_service("rosetta")


@pytest.fixture
def client(rosetta: None) -> Iterator[RosettaClient]:
    client = RosettaClient(ROSETTA_URL, username=ROSETTA_USER, password=ROSETTA_PASSWORD.read_text().strip())
    yield client
    client.close()


@pytest.fixture(scope="session")
def catalogue(rosetta: None) -> Catalogue:
    return Catalogue.load(EXAMPLE_SITES)


def run_tasks(client: RosettaClient, run_id: str) -> list[str]:
    """Names of the Rosetta tasks of a run (esap names them esap-<run>-<step>)."""
    return [t.name for t in client.tasks(f"esap-{run_id}-")]
