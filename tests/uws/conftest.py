"""ESAP's asynchronous jobs as scripts/services/esap.sh runs them: the real gateway with django-uws,
Redis and a Celery worker with esap-executors installed; users with tokens of the test provider."""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from esap_executors.store import Store
from esap_executors.stores import open_store
from tests.support import IN_CI, ROOT, VENV_BIN, require_service

# the same variables (and defaults) as scripts/services/esap.sh
ESAP_PORT = os.environ.get("ESAP_PORT", "9480")
ESAP_DIR = Path(os.environ.get("ESAP_DIR", "/var/lib/esap-ci"))
GATEWAY = f"http://127.0.0.1:{ESAP_PORT}/esap-api/"
WORKER_PID = ESAP_DIR / "worker.pid"
WORKER_STORE_URL = ESAP_DIR / "worker" / "state.url"
WORKER_PUBLIC_KEY = ESAP_DIR / "worker" / "uws-key.pub.pem"
WORKER_PRIVATE_KEY = ESAP_DIR / "worker" / "uws-key.pem"
# where the worker reads file:// and http(s) workflows from (esap.sh's defaults)
WORKER_FILE_ROOT = Path(os.environ.get("ESAP_UWS_FILE_ROOTS") or ESAP_DIR / "worker" / "files")
WORKER_URL_PREFIX = os.environ.get("ESAP_UWS_URL_PREFIXES") or f"http://127.0.0.1:{int(ESAP_PORT) + 4}/public/"
WORKER_JOB_GROUP = os.environ.get("ESAP_UWS_GROUP", "esapuser")
WORKER_JOBS_DIR = Path(os.environ.get("ESAP_UWS_WORKDIR", "/tmp/esap-uws"))
ESAP_SH = ROOT / "scripts" / "services" / "esap.sh"
DATA = Path(__file__).parent / "data"
FINAL = ("COMPLETED", "ERROR", "ABORTED")


def _uws_mounted() -> bool:
    try:
        urllib.request.urlopen(GATEWAY + "uws/jobs/", timeout=10)
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)
    except OSError:
        return False
    return False


@pytest.fixture(scope="session")
def uws_gateway() -> str:
    require_service("oidc")
    require_service("esap")
    if not (_uws_mounted() and WORKER_PID.is_file() and Path(f"/proc/{WORKER_PID.read_text().strip()}").exists()):
        message = f"no UWS service with a Celery worker at {GATEWAY} (start it as root with: bash {ESAP_SH} start)"
        (pytest.fail if IN_CI else pytest.skip)(message)
    return GATEWAY


def _token(user: str) -> str:
    from tests.auth.conftest import login

    return login(user, scope="openid email profile", save=False).access_token


@pytest.fixture(scope="session")
def alice(uws_gateway: str) -> str:
    """A member of /escape/cta, which the worker's sites admit."""
    return _token("alice")


@pytest.fixture(scope="session")
def carol(uws_gateway: str) -> str:
    """A guest: in none of the groups the worker's sites admit."""
    return _token("carol")


def esap_uws(*args: str, token: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("BEARER_TOKEN_FILE", "ESAP_SITES")}
    env.update({"BEARER_TOKEN": token, "ESAP_GATEWAY_URL": GATEWAY, "ESAP_UWS_WORKER_KEY": str(WORKER_PUBLIC_KEY)})
    return subprocess.run([str(VENV_BIN / "esap"), "uws", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, check=False)


def submit(*args: str, token: str) -> int:
    done = esap_uws("submit", *args, token=token)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.strip())


def status(job_id: int, token: str) -> dict[str, Any]:
    done = esap_uws("status", str(job_id), "--json", token=token)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def wait_for(job_id: int, token: str, phases: tuple[str, ...] = FINAL, timeout: float = 300) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        state = status(job_id, token)
        if state["phase"] in phases:
            return state
        if time.monotonic() > end:
            raise AssertionError(f"UWS job {job_id} still {state['phase']} after {timeout}s: {state}")
        time.sleep(1)


def wait_for_scheduler_job(job_id: int, token: str, timeout: float = 120) -> dict[str, Any]:
    """The job's state once its run has a scheduler job that runs."""
    end = time.monotonic() + timeout
    while True:
        state = status(job_id, token)
        jobs = (state.get("run") or {}).get("jobs") or []
        if jobs and all(job["scheduler_id"] for job in jobs) and any(job["state"] == "running" for job in jobs):
            return state
        assert state["phase"] not in FINAL, state
        if time.monotonic() > end:
            raise AssertionError(f"UWS job {job_id}: no running scheduler job after {timeout}s: {state}")
        time.sleep(1)


def worker_store() -> Store:
    """The worker's state store (esap.sh: PostgreSQL when postgres.sh runs, else SQLite)."""
    return open_store(WORKER_STORE_URL.read_text().strip())


def policy_decisions(run_id: str) -> list[tuple[str, bool, str]]:
    """The worker's policy audit for one run: (site, allowed, rule)."""
    return [(str(d["site"]), bool(d["allowed"]), str(d["rule"])) for d in worker_store().policy_decisions(run_id)]


@pytest.fixture
def restart_worker() -> Iterator[None]:
    """Whatever a test does to the Celery worker, esap.sh brings it back afterwards."""
    yield
    subprocess.run(["bash", str(ESAP_SH), "start"], capture_output=True, text=True, timeout=600, check=False)
