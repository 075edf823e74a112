"""The worker reads a job's workflow only where its deployment allows (esap.sh: one directory for
file:// URLs, one URL prefix served by these tests), and keeps its job directories private: a job
cannot make it copy its own files (its private key) or fetch from its network, and another local
user cannot swap or prepare a job's directory."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from esap_executors.esap.uws_client import UwsGateway
from esap_executors.esap.uws_parameters import Source, UwsJobRequest, binding, to_parameters
from esap_executors.esap.uws_seal import seal
from esap_executors.submitter import run_id_for
from tests.uws.conftest import (
    DATA,
    GATEWAY,
    WORKER_FILE_ROOT,
    WORKER_JOB_GROUP,
    WORKER_JOBS_DIR,
    WORKER_PID,
    WORKER_PRIVATE_KEY,
    WORKER_PUBLIC_KEY,
    WORKER_URL_PREFIX,
    status,
    submit,
    wait_for,
)


class _Files(BaseHTTPRequestHandler):
    """tests/uws/data under /public/ (the worker's allowed prefix) and /private/ (not allowed)."""

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/public/to-private/greeting.cwl":
            self.send_response(302)
            self.send_header("Location", "/private/greeting.cwl")
            self.end_headers()
            return
        folder, _, name = path.strip("/").partition("/")
        file = DATA / unquote(name)
        if folder not in ("public", "private") or "/" in name or not file.is_file():
            self.send_error(404)
            return
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def file_server(uws_gateway: str) -> Iterator[str]:
    """The origin of WORKER_URL_PREFIX, served here."""
    prefix = urlsplit(WORKER_URL_PREFIX)
    server = ThreadingHTTPServer((prefix.hostname or "127.0.0.1", prefix.port or 80), _Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{prefix.scheme}://{prefix.netloc}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def file_root_dir(uws_gateway: str, tmp_path: Path) -> Iterator[Path]:
    """A directory of this test inside the worker's file root."""
    directory = WORKER_FILE_ROOT / f"test-{os.getpid()}-{tmp_path.name}"
    directory.mkdir(parents=True)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def status_directory(job_id: int, token: str) -> Path:
    """The job's directory, where the worker's run status file (its esap-run-status result) is."""
    job = UwsGateway(GATEWAY, token).job(job_id)
    uri = next(r["value"] for r in job["results"] if r["key"] == "esap-run-status")
    return Path(unquote(urlsplit(uri).path)).parent


def _worker_uid() -> int:
    return Path(f"/proc/{WORKER_PID.read_text().strip()}").stat().st_uid


@pytest.mark.slurm
def test_a_workflow_under_the_allowed_urls_runs_in_a_private_job_directory(alice: str, file_server: str) -> None:
    job_id = submit("--front", "cwl", "--site", "slurm-local", f"{WORKER_URL_PREFIX}greeting.cwl",
                    str(DATA / "greeting.yml"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    root = status_directory(job_id, alice)
    worker_uid = _worker_uid()
    group = grp.getgrnam(WORKER_JOB_GROUP).gr_gid if WORKER_JOB_GROUP else None
    for path in (root.parent, root, root / "in", root / "out", root / "work"):
        info = path.stat()
        assert info.st_uid == worker_uid, path
        assert stat.S_IMODE(info.st_mode) & 0o007 == 0, f"{path}: {oct(info.st_mode)}"  # others: nothing
        if group is not None:
            assert info.st_gid == group, path
    # only the group of the sites' job users writes there, into out/ and work/ only
    assert [p.name for p in (root.parent, root, root / "in") if p.stat().st_mode & 0o020] == []
    if group is not None:
        assert (root / "out").stat().st_mode & 0o070 == 0o070


@pytest.mark.parametrize("where", ["private URL", "redirect to a private URL", "the worker's private key",
                                   "a link to the worker's private key"])
def test_a_workflow_the_deployment_does_not_allow_is_refused_before_anything_runs(
        alice: str, file_server: str, file_root_dir: Path, where: str) -> None:
    link = file_root_dir / "innocent.cwl"
    link.symlink_to(WORKER_PRIVATE_KEY)
    url, reason = {
        "private URL": (f"{file_server}/private/greeting.cwl", "not under the URLs this worker fetches"),
        "redirect to a private URL": (f"{file_server}/public/to-private/greeting.cwl",
                                      "/private/greeting.cwl: not under the URLs this worker fetches"),
        "the worker's private key": (WORKER_PRIVATE_KEY.as_uri(), "outside the directories this worker reads"),
        "a link to the worker's private key": (link.as_uri(), "outside the directories this worker reads"),
    }[where]
    job_id = submit("--front", "cwl", "--site", "slurm-local", url, str(DATA / "greeting.yml"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "ERROR", final
    summary = final["errorSummary"]
    assert summary.startswith("workflow: ") and reason in summary, summary
    assert "PRIVATE KEY" not in summary and "\n" not in summary.strip()
    assert final["run"] is None  # refused before the run was prepared: nothing submitted


@pytest.mark.slurm
def test_a_file_under_the_workers_file_root_runs(alice: str, file_root_dir: Path) -> None:
    shutil.copyfile(DATA / "greeting.cwl", file_root_dir / "greeting.cwl")
    job_id = submit("--front", "cwl", "--site", "slurm-local", (file_root_dir / "greeting.cwl").as_uri(),
                    str(DATA / "greeting.yml"), token=alice)
    final = wait_for(job_id, alice)
    assert final["phase"] == "COMPLETED", final
    assert [job["state"] for job in final["run"]["jobs"]] == ["completed", "completed"]


def test_a_job_directory_another_user_made_is_refused(alice: str) -> None:
    """Another local user prepares the directory the worker would use for a job: the job ends ERROR."""
    request = UwsJobRequest(front="cwl", site="slurm-local",
                            workflow=Source(name="greeting.cwl", content=(DATA / "greeting.cwl").read_text()),
                            inputs=Source(name="greeting.yml", content=(DATA / "greeting.yml").read_text()))
    request = replace(request, sealed_token=seal(alice, WORKER_PUBLIC_KEY.read_bytes(), binding(request)))
    gateway = UwsGateway(GATEWAY, alice)
    job = gateway.create("prepared", to_parameters(request))
    job_id = int(job["jobId"])
    planted = WORKER_JOBS_DIR / f"{job_id}-{run_id_for(str(job['url']) + '@' + str(job['creationTime']))}"
    other = pwd.getpwnam("esapuser")
    planted.mkdir(parents=True)
    try:
        os.chown(planted, other.pw_uid, other.pw_gid)
        gateway.start(job_id)
        final = wait_for(job_id, alice)
        assert final["phase"] == "ERROR", final
        assert final["errorSummary"] == (f"job directory {planted} belongs to uid {other.pw_uid}, not to the worker "
                                         f"(uid {_worker_uid()}): nothing was run"), final
        assert sorted(p.name for p in planted.iterdir()) == []  # the worker wrote nothing into it
    finally:
        shutil.rmtree(planted, ignore_errors=True)
    assert status(job_id, alice)["run"] is None
