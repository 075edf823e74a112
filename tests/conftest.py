"""Every test session gets a private state directory and fast polling."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_SESSION_STATE = tempfile.mkdtemp(prefix="esap-test-state-", dir="/tmp")
os.chmod(_SESSION_STATE, 0o755)
os.environ.setdefault("ESAP_STATE_DIR", _SESSION_STATE)
os.environ.setdefault("ESAP_POLL_START", "0.5")
os.environ.setdefault("ESAP_POLL_FLOOR", "0.2")
os.environ.setdefault("ESAP_POLL_CEILING", "2")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh state store for one test (also seen by CLI subprocesses)."""
    path = tmp_path / "state"
    path.mkdir()
    monkeypatch.setenv("ESAP_STATE_DIR", str(path))
    yield path
