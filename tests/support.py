"""Shared test helpers: where things are, which services run, how to call the CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_SITES = ROOT / "examples" / "sites.yaml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
VENV_BIN = Path(sys.executable).parent
CONFORMANCE_DIR = Path(os.environ.get("CWL_CONFORMANCE_DIR", str(ROOT.parent / "shared" / "cwl-v1.2-conformance")))


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _slurm_up() -> bool:
    if not shutil.which("sbatch"):
        return False
    result = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20, check=False)
    return result.returncode == 0 and bool(result.stdout.strip())


def _htcondor_up() -> bool:
    return _port_open(9618)


def _oidc_up() -> bool:
    return _port_open(9400)


def _esap_up() -> bool:
    return _port_open(9480)


def _containers_up() -> bool:
    return bool(shutil.which("podman") or shutil.which("apptainer"))


ROSETTA_PASSWORD = Path("/var/lib/rosetta-ci/password")  # written by scripts/services/rosetta.sh


def _rosetta_up() -> bool:
    return _port_open(8710) and ROSETTA_PASSWORD.is_file()


# written by scripts/services/postgres.sh: ESAP_TEST_POSTGRES_URL=postgresql://esap@127.0.0.1:5433/esap?passfile=...
POSTGRES_ENV = Path("/var/lib/postgres-ci/env")


def postgres_url() -> str | None:
    """The test server's URL (no password in it): $ESAP_TEST_POSTGRES_URL, else postgres.sh's env file."""
    url = os.environ.get("ESAP_TEST_POSTGRES_URL")
    if not url and POSTGRES_ENV.is_file():
        for line in POSTGRES_ENV.read_text().splitlines():
            if line.startswith("ESAP_TEST_POSTGRES_URL="):
                url = line.split("=", 1)[1]
    return url or None


def _postgres_up() -> bool:
    from urllib.parse import urlsplit

    url = postgres_url()
    return bool(url) and _port_open(urlsplit(url).port or 5432, urlsplit(url).hostname or "127.0.0.1")


WEBDAV_ENV = Path("/var/lib/webdav-ci/env.json")  # written by scripts/services/webdav.sh


def _webdav_up() -> bool:
    return WEBDAV_ENV.is_file() and _port_open(9443)


SERVICE_CHECKS = {
    "slurm": (_slurm_up, "scripts/services/slurm.sh start"),
    "htcondor": (_htcondor_up, "scripts/services/htcondor.sh start"),
    "oidc": (_oidc_up, "scripts/services/oidc.sh start"),
    "containers": (_containers_up, "scripts/services/containers.sh start"),
    "esap": (_esap_up, "scripts/services/esap.sh start"),
    "rosetta": (_rosetta_up, "scripts/services/rosetta.sh start"),
    "postgres": (_postgres_up, "scripts/services/postgres.sh start"),
    "webdav": (_webdav_up, "scripts/services/webdav.sh start"),
}
_SEEN: dict[str, bool] = {}


def service_running(name: str) -> bool:
    if name not in _SEEN:
        check, _ = SERVICE_CHECKS[name]
        try:
            _SEEN[name] = check()
        except (OSError, subprocess.SubprocessError):
            _SEEN[name] = False
    return _SEEN[name]


def require_service(name: str) -> None:
    """Skip (outside CI) or fail (CI=true) when a service the project can start is not running."""
    if service_running(name):
        return
    _, how = SERVICE_CHECKS[name]
    message = f"{name} is not running (start it as root with: bash {how})"
    if IN_CI:
        pytest.fail(message + " — CI=true does not allow skipping a service the project starts")
    pytest.skip(message)


def require_conformance_suite() -> Path:
    if (CONFORMANCE_DIR / "conformance_tests.yaml").is_file():
        return CONFORMANCE_DIR
    message = f"CWL conformance suite not found at {CONFORMANCE_DIR} (set CWL_CONFORMANCE_DIR)"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def esap(*args: str, env: dict[str, str] | None = None, timeout: float = 300,
         cwd: str | Path | None = None, sites: Path | str | None = EXAMPLE_SITES) -> subprocess.CompletedProcess[str]:
    """Run the `esap` CLI in a subprocess with the test's state directory."""
    command = [str(VENV_BIN / "esap")]
    if sites is not None:
        command += ["--sites", str(sites)]
    command += list(args)
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env,
                          cwd=cwd, check=False)
