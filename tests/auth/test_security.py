"""The token never leaks: not in `ps`, logs, the state store, job environments or error messages."""

from __future__ import annotations

import json
import subprocess
import threading
from pathlib import Path

import pytest

from esap_executors.auth.tokens import TokenCache
from tests.slurm.conftest import CLUSTERS, SELECTED, cluster_of, require_cluster
from tests.support import esap

from .conftest import login
from .sites_for_tests import policy_sites

LOG_DIRS = [Path("/var/lib/slurm-ci/log"), Path("/var/lib/htcondor-ci/log"), Path("/var/lib/oidc-ci/log"),
            Path("/var/log/slurm"), Path("/opt/slurm-2411/var/lib/slurm-ci-2411/log"),
            Path("/opt/slurm-2605/var/lib/slurm-ci-2605/log")]


def files_containing(secret: str, *roots: Path) -> list[str]:
    needle = secret.encode()
    hits = []
    for root in roots:
        if root.is_file():
            candidates = [root]
        elif root.is_dir():
            candidates = [p for p in root.rglob("*") if p.is_file()]
        else:
            continue
        for path in candidates:
            if path.name == "tokens.json" and path.parent.name == "auth":
                continue  # the cache itself (mode 0600) is where the token belongs
            try:
                if needle in path.read_bytes():
                    hits.append(str(path))
            except OSError:
                pass
    return hits


@pytest.mark.parametrize("site", [CLUSTERS[v].sites[0] for v in SELECTED])  # each selected Slurm version
def test_token_stays_out_of_ps_logs_store_and_jobs(site: str, auth_env: Path, tmp_path: Path) -> None:
    require_cluster(cluster_of(site))
    sites = policy_sites(tmp_path, work_root=tmp_path / "work")
    tokens = login("alice")
    secret = tokens.access_token
    refresh = tokens.refresh_token or "no-refresh-token"

    seen_in_ps: list[str] = []
    stop = threading.Event()

    def watch_ps() -> None:
        while not stop.is_set():
            listing = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True,
                                     check=False).stdout
            if secret in listing or refresh in listing:
                seen_in_ps.append(listing)
            stop.wait(0.1)

    watcher = threading.Thread(target=watch_ps, daemon=True)
    watcher.start()
    try:
        out = esap("--debug", "run", "--site", f"{site}-policy", "--json", "--",
                   "sh", "-c", "env; sleep 2", sites=sites)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert out.returncode == 0, out.stderr
    assert not seen_in_ps, "the token appeared in ps output"
    record = json.loads(out.stdout)
    assert secret not in out.stdout + out.stderr

    job_output = Path(record["stdout"]).read_text()
    assert "SLURM_JOB_ID" in job_output  # the job's environment was listed...
    assert secret not in job_output  # ...without the token

    whoami = esap("--debug", "whoami", sites=None)
    assert whoami.returncode == 0 and secret not in whoami.stdout + whoami.stderr

    leaks = files_containing(secret, auth_env, Path(record["workdir"]), tmp_path / "work", *LOG_DIRS)
    leaks += files_containing(refresh, auth_env, *LOG_DIRS)
    assert leaks == [], f"token found in {leaks}"
    assert TokenCache().load() is not None  # and still in the cache, where it belongs


def test_cache_refuses_to_be_read_when_others_can(auth_env: Path) -> None:
    login("bob")
    cache = auth_env / "auth" / "tokens.json"
    cache.chmod(0o644)
    out = esap("whoami", sites=None)
    assert out.returncode == 3
    assert "readable by others (mode 644)" in out.stderr
    cache.chmod(0o600)
    assert esap("whoami", sites=None).returncode == 0
