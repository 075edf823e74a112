"""Fixtures for tests against the project's real HTCondor pool (scripts/services/htcondor.sh)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.store import Store
from tests.support import EXAMPLE_SITES, require_service

POOL_ENV = Path("/var/lib/htcondor-ci/env")
# generous: jobs take seconds on an idle pool, but the pool may be shared with other work
WAIT = 300


def pool_settings() -> dict[str, str]:
    """What htcondor.sh recorded: HTC_MODE (native|chroot), HTC_ROOT, HTC_USER, HTC_VENV."""
    values: dict[str, str] = {}
    if POOL_ENV.is_file():
        for line in POOL_ENV.read_text().splitlines():
            if line.startswith("export ") and "=" in line:
                name, value = line[len("export "):].split("=", 1)
                values[name] = value
    return values


@pytest.fixture(autouse=True)
def pool() -> None:
    require_service("htcondor")


@pytest.fixture
def work_root() -> Iterator[Path]:
    # not pytest's tmp_path: /tmp/pytest-of-root is 0700 and the jobs run as esapuser
    path = Path(tempfile.mkdtemp(prefix="esap-htc-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    # a test that failed may leave jobs behind: they would be held once their directory is gone
    leftovers = f'substr(Iwd, 0, {len(str(path))}) == "{path}"'
    subprocess.run(condor_admin("condor_rm", "-constraint", leftovers), capture_output=True, timeout=60,
                   check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def catalogue(work_root: Path) -> Catalogue:
    """examples/sites.yaml with the HTCondor sites' work roots in this test's directory."""
    catalogue = Catalogue.load(EXAMPLE_SITES)
    for name in ("htcondor-local", "htcondor-transfer"):
        site = catalogue.get(name)
        catalogue.sites[name] = dataclasses.replace(site, work_root=str(work_root / name))
    return catalogue


@pytest.fixture
def store(state_dir: Path) -> Store:
    return open_store()


def with_options(catalogue: Catalogue, name: str, **options: object) -> None:
    site = catalogue.get(name)
    catalogue.sites[name] = dataclasses.replace(site, options={**site.options, **options})


def condor_admin(*argv: str) -> list[str]:
    """An HTCondor admin command where the daemons live (inside the chroot on Debian 12)."""
    settings = pool_settings()
    root = settings.get("HTC_ROOT", "")
    if settings.get("HTC_MODE") == "chroot" and root:
        return ["chroot", root, *argv]
    return list(argv)


def running_as_root() -> bool:
    return os.geteuid() == 0


# the pool's job lease (scripts/services/htcondor.sh: JOB_DEFAULT_LEASE_DURATION) and a margin
LEASE_AND_MARGIN_S = 90 + 60
WHOLE_POOL = {"Collector", "Scheduler", "Machine"}  # the ad types a job needs to be submitted and run


def pool_not_ready() -> list[str]:
    """What keeps the next test's jobs from being submitted and started: ad types the collector
    lacks (the bindings locate the schedd through it) and slots still giving back a job (their
    starter may wait for a shadow that is gone). Empty once the pool is whole again."""
    listed = subprocess.run(condor_admin("condor_status", "-any", "-af", "MyType", "Name", "State", "Activity"),
                            capture_output=True, text=True, timeout=60, check=False)
    rows = [line.split() for line in listed.stdout.splitlines()]
    missing = [f"no {kind} ad" for kind in sorted(WHOLE_POOL - {row[0] for row in rows if row})]
    vacating = [" ".join(row[1:]) for row in rows
                if row[:1] == ["Machine"] and ("Preempting" in row[2:3] or row[3:4] in (["Vacating"], ["Killing"]))]
    return missing + vacating


def wait_until_pool_is_whole(timeout: float = LEASE_AND_MARGIN_S) -> list[str]:
    """After a test that stopped or restarted a daemon: what still keeps the pool from running the
    next test's jobs, once nothing does or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while (waiting := pool_not_ready()) and time.monotonic() < deadline:
        time.sleep(1)
    return waiting
