"""The local site is polled at its backend's short interval (its status is a read on this host)
unless the catalogue sets the site's poll; remote schedulers keep the catalogue's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors.backends.local import LOCAL_POLL_FLOOR_S
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.tracker import tracker_for


def _intervals(tmp_path: Path, sites_yaml: str, site: str) -> tuple[float, float]:
    path = tmp_path / "sites.yaml"
    path.write_text(sites_yaml.replace("WORK", str(tmp_path / "work")))
    with tracker_for(open_store(tmp_path / "s.db"), Catalogue.load(path)) as tracker:
        interval = tracker._interval_for(site)
    return interval.current, interval.floor


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ESAP_POLL_START", "ESAP_POLL_FLOOR", "ESAP_POLL_CEILING"):
        monkeypatch.delenv(name, raising=False)


def test_local_site_without_poll_settings_is_polled_at_the_backends_short_interval(tmp_path: Path) -> None:
    current, floor = _intervals(tmp_path, "mine:\n  backend: local\n  work_root: WORK\n", "mine")
    assert (current, floor) == (LOCAL_POLL_FLOOR_S, LOCAL_POLL_FLOOR_S)
    assert LOCAL_POLL_FLOOR_S < 1.0


def test_catalogue_poll_settings_of_a_local_site_win(tmp_path: Path) -> None:
    yaml = "mine:\n  backend: local\n  work_root: WORK\n  poll: {start: 3, floor: 2}\n"
    assert _intervals(tmp_path, yaml, "mine") == (3.0, 2.0)
    only_floor = "mine:\n  backend: local\n  work_root: WORK\n  poll: {floor: 0.5}\n"
    assert _intervals(tmp_path, only_floor, "mine") == (0.5, 0.5)


def test_a_scheduler_site_keeps_the_default_floor(tmp_path: Path) -> None:
    yaml = "hpc:\n  backend: slurm\n  work_root: WORK\n"
    assert _intervals(tmp_path, yaml, "hpc") == (5.0, 1.0)
