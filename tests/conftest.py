"""Every test session gets a private state directory and fast polling; a test may ask for a fresh
PostgreSQL state store (`postgres_state_url`) or for each engine in turn (`store_location`)."""

from __future__ import annotations

import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.groups import GROUPS, group_of
from tests.support import postgres_url, require_service

_SESSION_STATE = tempfile.mkdtemp(prefix="esap-test-state-", dir="/tmp")
os.chmod(_SESSION_STATE, 0o755)
os.environ.setdefault("ESAP_STATE_DIR", _SESSION_STATE)
# a developer's own server store is never a test's: a test that wants PostgreSQL asks for it
os.environ.pop("ESAP_STATE_URL", None)
os.environ.setdefault("ESAP_POLL_START", "0.5")
os.environ.setdefault("ESAP_POLL_FLOOR", "0.2")
os.environ.setdefault("ESAP_POLL_CEILING", "2")
# scripts/test.sh runs its parts in the background, and a shell without job control starts those
# with SIGINT ignored; an ignored signal stays ignored across exec, so the Snakemake or esap that a
# test interrupts would never see its Ctrl-C. A handler here is reset to the default in children.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """ESAP_TEST_GROUP=PART: only the tests of that part of a parallel run (tests/groups.py)."""
    wanted = os.environ.get("ESAP_TEST_GROUP")
    if not wanted:
        return
    if wanted not in GROUPS:
        raise pytest.UsageError(f"ESAP_TEST_GROUP={wanted!r}: not one of {', '.join(GROUPS)}")
    keep: list[pytest.Item] = []
    other: list[pytest.Item] = []
    for item in items:
        part = group_of(item.nodeid, item.get_closest_marker("stops_a_service") is not None)
        (keep if part == wanted else other).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = keep


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh state store for one test (also seen by CLI subprocesses)."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("ESAP_STATE_DIR", str(path))
    yield path


@pytest.fixture
def postgres_state_url() -> Iterator[str]:
    """ESAP_STATE_URL of an empty store on the test server (a schema of its own, dropped afterwards)."""
    require_service("postgres")
    import psycopg

    base = postgres_url()
    assert base
    schema = f"test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with psycopg.connect(base, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """Where open_store() finds a fresh store: a SQLite file, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return tmp_path / "s.db"
    url: str = request.getfixturevalue("postgres_state_url")
    return url
