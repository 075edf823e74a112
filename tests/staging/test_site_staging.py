"""sites.yaml's `staging:` block (where a site's jobs fetch their inputs by URL), as a user meets it:
a wrong setting is one line naming the file, line and field; the files a job is given to fetch
with keep its token private and read-only."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import jwt
import pytest

from esap_executors.staging.execute_side import FetchItem, fetch_command, forget_tokens, write_fetch_directory
from tests.staging.conftest import Storage
from tests.support import VENV_BIN


@pytest.mark.parametrize(("block", "line", "expected"), [
    ("    fetch: node\n", 4, "hpc.staging.fetch: expected execute or submit, got 'node'"),
    ("    fetch: execute\n    cache: scratch/cache\n", 5, "hpc.staging.cache: expected an absolute path"),
    ("    fetch: execute\n    colour: red\n", 5,
     "hpc.staging.colour: unknown key (known: cache, cache_size, fetch, python)"),
    ("    cache_size: lots\n", 4, "hpc.staging.cache_size: 'lots' is not a memory size"),
])
def test_a_wrong_staging_setting_is_named_by_file_line_and_field(
        tmp_path: Path, block: str, line: int, expected: str) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("hpc:\n  backend: slurm\n  staging:\n" + block)
    result = subprocess.run([str(VENV_BIN / "esap"), "sites", "--sites", str(sites)], capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 2
    [message] = result.stderr.strip().splitlines()
    assert f"{sites}:{line}: {expected}" in message, message


def test_a_transfer_site_that_fetches_on_its_nodes_needs_an_interpreter_there(tmp_path: Path) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("htc:\n  backend: htcondor\n  shared_filesystem: false\n  staging:\n    fetch: execute\n")
    result = subprocess.run([str(VENV_BIN / "esap"), "sites", "--sites", str(sites)], capture_output=True,
                            text=True, timeout=60, check=False)

    assert result.returncode == 2
    assert f"{sites}:5: htc.staging.fetch: execute needs staging.python" in result.stderr


def test_the_jobs_token_is_private_read_only_and_never_in_the_manifest(logged_in: Storage, tmp_path: Path) -> None:
    directory = write_fetch_directory(tmp_path / "job" / ".esap-fetch", [
        FetchItem(logged_in.davs("in/table.txt"), "/job/stage/table.txt", "File")], "/var/tmp/cache")

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    token_file = directory / "token-0"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = token_file.read_text()
    # narrowed to the storage rule's read scope: a job cannot write with it
    scopes = jwt.decode(token, options={"verify_signature": False})["scope"].split()
    assert [s for s in scopes if s.startswith("storage.")] == ["storage.read:/"]
    manifest = (directory / "manifest.json").read_text()
    assert token not in manifest and json.loads(manifest)["groups"][0]["token"] == "token-0"
    command = fetch_command("/usr/bin/python3", str(directory))
    assert token not in command and command.endswith("|| exit 95")
    forget_tokens(directory)
    assert not token_file.exists()
