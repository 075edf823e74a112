"""Interactive jobs on Rosetta: `esap run --interactive --image` and a JDL job with
JobType = "Interactive" start a Rosetta task of a software with an interface port (esap-httpd,
busybox's httpd), print its link (/t/<short uuid>) and the stop command, and return; the page
answers through Rosetta's tunnel; `esap cancel` stops and deletes the task and its SLURM job.
With Rosetta's tunnel ports all held the user gets Rosetta's reason in one line, exit 3, and the
task is stopped and deleted."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from esap_executors.backends.rosetta.client import RosettaClient
from tests.support import ROOT, esap

from .conftest import ROSETTA_URL, run_tasks

pytestmark = pytest.mark.rosetta

LINK = re.compile(rf"^{re.escape(ROSETTA_URL)}/t/([0-9a-f]{{8}})/$")


def _page_through_rosetta(link: str) -> str:
    """Open the link as a browser would: Rosetta redirects to its tunnel to the task."""
    opened = requests.get(link, allow_redirects=False, timeout=30)
    assert opened.status_code == 302, opened.text[-500:]
    # the tunnel's port (the host part is Rosetta's ROSETTA_TASKS_TUNNEL_HOST)
    port = re.search(r":(\d+)/?$", opened.headers["Location"])
    assert port, opened.headers["Location"]
    deadline = time.monotonic() + 60
    while True:  # the agent reports the port before httpd listens on it
        try:
            return requests.get(f"http://127.0.0.1:{port.group(1)}/", timeout=5).text
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _slurm_jobs_of(short_uuid: str) -> list[str]:
    names = subprocess.run(["squeue", "-h", "-u", "esaprosetta", "-o", "%j"], capture_output=True, text=True,
                           timeout=30, check=True).stdout.split()
    return [n for n in names if n.startswith(short_uuid)]


def _started(result: subprocess.CompletedProcess[str]) -> tuple[str, str, str]:
    assert result.returncode == 0, result.stderr
    link = result.stdout.strip()
    match = LINK.match(link)
    assert match, result.stdout
    job = re.search(r"stop it with: esap cancel (r[0-9a-f]+\.\d+)", result.stderr)
    assert job, result.stderr
    return link, match.group(1), job.group(1)


def test_interactive_task_opened_through_rosetta_then_cancelled(client: RosettaClient, state_dir: Path,
                                                                 tmp_path: Path) -> None:
    link, short, job_id = _started(esap("run", "--interactive", "--site", "rosetta-slurm", "--image", "esap-httpd",
                                        cwd=tmp_path))
    run_id = job_id.split(".")[0]
    try:
        assert "esap interactive task" in _page_through_rosetta(link)
        assert [t.status for t in client.tasks(f"esap-{run_id}-")] == ["running"]
        assert _slurm_jobs_of(short)
        status = esap("status", job_id)
        assert "running" in status.stdout, status.stdout
    finally:
        cancelled = esap("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert run_tasks(client, run_id) == []  # stopped and deleted in Rosetta
    deadline = time.monotonic() + 30
    while _slurm_jobs_of(short) and time.monotonic() < deadline:
        time.sleep(1)
    assert _slurm_jobs_of(short) == []
    assert "cancelled" in esap("status", job_id).stdout


def test_interactive_jdl_job_matched_to_rosetta(client: RosettaClient, state_dir: Path, tmp_path: Path) -> None:
    jdl = tmp_path / "session.jdl"
    jdl.write_text('JobType = "Interactive";\nImage = "esap-httpd";\n'
                   'Requirements = other.RosettaComputingType == "standalone";\n')
    link, _, job_id = _started(esap("run", str(jdl), cwd=tmp_path))
    try:
        assert "esap interactive task" in _page_through_rosetta(link)
        assert "rosetta-standalone" in esap("status", job_id).stdout
    finally:
        cancelled = esap("cancel", job_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert run_tasks(client, job_id.split(".")[0]) == []


def test_unknown_software_or_site_without_interactive_jobs_exit_2(client: RosettaClient, state_dir: Path,
                                                                  tmp_path: Path) -> None:
    before = {t.uuid for t in client.tasks("")}
    unknown = esap("run", "--interactive", "--site", "rosetta-slurm", "--image", "no-such-software", cwd=tmp_path)
    assert unknown.returncode == 2, unknown.stderr
    assert "no software 'no-such-software' to open" in unknown.stderr and "esap-httpd" in unknown.stderr
    batch_site = esap("run", "--interactive", "--site", "slurm-local", "--image", "esap-httpd", cwd=tmp_path)
    assert batch_site.returncode == 2, batch_site.stderr
    assert "site slurm-local runs no interactive jobs" in batch_site.stderr
    assert {t.uuid for t in client.tasks("")} <= before


# Rosetta's own ORM (rosetta.sh shell): a user of its own whose running tasks hold every direct
# tunnel port (7000-7020), as other users' tasks would; deleting the user deletes its tasks
_HOLDER = "esap-tests-tunnel-holder"
_HOLD_PORTS = f"""
from django.contrib.auth.models import User
from rosetta.core_app.models import Computing, Container, Task
User.objects.filter(username="{_HOLDER}").delete()
holder = User.objects.create(username="{_HOLDER}", email="{_HOLDER}@rosetta.invalid")
computing, container = Computing.objects.order_by("name").first(), Container.objects.order_by("name").first()
for port in range(7000, 7021):
    Task.objects.create(user=holder, name=f"holds-tunnel-{{port}}", status="running", computing=computing,
                        container=container, requires_tcp_tunnel=True, tcp_tunnel_port=port,
                        requires_proxy=False, requires_proxy_auth=False)
print("held", Task.objects.filter(user=holder, status="running").count())
"""
_RELEASE_PORTS = f"""
from django.contrib.auth.models import User
User.objects.filter(username="{_HOLDER}").delete()
print("released")
"""


def _rosetta_shell(code: str) -> str:
    done = subprocess.run(["bash", str(ROOT / "scripts" / "services" / "rosetta.sh"), "shell"], input=code,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def tunnel_ports_held(rosetta: None) -> Iterator[None]:
    try:
        assert "held 21" in _rosetta_shell(_HOLD_PORTS)
        yield
    finally:
        assert "released" in _rosetta_shell(_RELEASE_PORTS)


@pytest.mark.parametrize("how", ["cli-slurm", "jdl-standalone"])
def test_no_free_tunnel_port_one_line_exit_3_task_removed(client: RosettaClient, state_dir: Path, tmp_path: Path,
                                                          tunnel_ports_held: None, how: str) -> None:
    if how == "cli-slurm":
        result = esap("run", "--interactive", "--site", "rosetta-slurm", "--image", "esap-httpd", cwd=tmp_path)
    else:
        (tmp_path / "session.jdl").write_text('JobType = "Interactive";\nImage = "esap-httpd";\n'
                                              'Requirements = other.RosettaComputingType == "standalone";\n')
        result = esap("run", "session.jdl", cwd=tmp_path)
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout == ""  # no link
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    said = re.fullmatch(r"esap: error: Rosetta answered with an error while setting up the tunnel to task "
                        r"([0-9a-f]{8}): no free tunnel port \(running tasks hold all of Rosetta's tunnel ports; "
                        r"Rosetta said: \"(.+)\"\)", lines[0])
    assert said, lines[0]
    assert "tcp_tunnel_port" in said.group(2) or "free port" in said.group(2)  # Rosetta's own text
    short = said.group(1)
    assert [t.name for t in client.tasks("") if t.uuid.startswith(short)] == []  # stopped and deleted
    deadline = time.monotonic() + 30
    while _slurm_jobs_of(short) and time.monotonic() < deadline:
        time.sleep(1)
    assert _slurm_jobs_of(short) == []
