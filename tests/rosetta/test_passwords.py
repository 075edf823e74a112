"""Batch steps' task passwords on the real Rosetta: two steps of one run get different passwords
that the run id and step names do not give; Rosetta's database keeps none of them, the state
store holds none, and the step does not see it in its environment. The passwords are read where
the containers got them: the job scripts Rosetta's SLURM manager writes on the computing."""

from __future__ import annotations

import pwd
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from esap_executors.job import make_spec
from esap_executors.runs import JobRequest, Run
from esap_executors.sites import Catalogue
from esap_executors.sqlite_store import open_store
from esap_executors.states import JobState

pytestmark = pytest.mark.rosetta

SITE = "rosetta-slurm"
ROSETTA_SH = Path(__file__).resolve().parents[2] / "scripts" / "services" / "rosetta.sh"
SSH_USER = "esaprosetta"  # the computing's account (rosetta.sh)


@pytest.fixture
def run(catalogue: Catalogue, state_dir: Path) -> Iterator[Run]:
    opened = Run.open(f"rosetta-pw-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store())
    yield opened
    live = [j for j, r in opened.snapshot().items() if not r.state.is_final and r.native_id]
    if live:
        opened.cancel(live)
    opened.close()


def stored_auth_tokens(prefix: str) -> dict[str, str | None]:
    """Each task's auth token as Rosetta's database holds it (through its own ORM)."""
    code = (
        "from rosetta.core_app.models import Task\n"
        f"for t in Task.objects.filter(name__startswith={prefix!r}):\n"
        "    print('TASK', t.name, repr(t.auth_token))\n"
    )
    out = subprocess.run(["bash", str(ROSETTA_SH), "shell"], input=code, capture_output=True, text=True,
                         check=True, timeout=120).stdout
    found: dict[str, str | None] = {}
    for line in out.splitlines():
        if line.startswith("TASK "):
            _, name, token = line.split(" ", 2)
            found[name] = None if token == "None" else token.strip("'")
    return found


def passwords_given(tokens: list[str]) -> dict[str, str]:
    """The AUTH_PASS each step's container got, from Rosetta's job scripts on the computing."""
    home = Path(pwd.getpwnam(SSH_USER).pw_dir)
    found: dict[str, str] = {}
    for script in home.glob("*.sh"):
        for password in re.findall(r"SINGULARITYENV_AUTH_PASS=(\S+)", script.read_text(errors="replace")):
            for token in tokens:
                if password == token or password.startswith(f"{token}."):
                    found[token] = password
    return found


def test_steps_get_unguessable_passwords_kept_nowhere(run: Run, state_dir: Path) -> None:
    requests = [JobRequest(name, make_spec(["sh", "-c", 'sleep 8; echo "pass=${AUTH_PASS:-none}"']), site=SITE)
                for name in ("first", "second")]
    records = {r.key: r for r in run.submit(requests)}
    tokens = [str(records[k].native_id) for k in ("first", "second")]
    prefix = f"esap-{run.run_id}-"

    stored: dict[str, str | None] = {}
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:  # while the tasks exist (they are deleted once collected)
        stored = stored_auth_tokens(prefix)
        if len(stored) == 2:
            break
        time.sleep(1)
    assert sorted(stored) == sorted(f"esap-{t}" for t in tokens), stored
    assert all(value in (None, "") for value in stored.values()), stored  # Rosetta keeps no password

    final = run.wait(timeout=300)
    for key in ("first", "second"):
        record = final[records[key].job_id]
        assert record.state is JobState.COMPLETED, (record.state, record.reason)
        assert Path(record.stdout).read_text() == "pass=none\n"  # the step's environment lacks it

    given = passwords_given(tokens)
    assert sorted(given) == sorted(tokens), given
    secrets_given = []
    for token in tokens:
        password = given[token]
        secret = password.removeprefix(f"{token}.")
        assert re.fullmatch(r"[0-9a-f]{32}", secret), password  # 128 random bits after the token
        secrets_given.append(secret)
    assert secrets_given[0] != secrets_given[1]
    for path in state_dir.rglob("*"):  # the state store holds none of them
        if path.is_file():
            data = path.read_bytes()
            assert not any(secret.encode() in data for secret in secrets_given), path
