"""The UWS worker follows a job's front: a gateway hiccup (an error page instead of the job's JSON)
does not end the run, the gateway gone for too long does, and any error while following stops the
front, so a run whose UWS job ended in ERROR submits nothing more. The gateway here is a local HTTP
server answering what the real one cannot be made to answer (tests/uws covers the real one)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from esap_executors.errors import Unreachable
from esap_executors.esap.uws_follow import JobFinalised, PhaseWatch, follow


class Gateway:
    """Answers GET /jobs/1/ with whatever the test sets, and counts the questions."""

    def __init__(self) -> None:
        self.answer: tuple[int, str, bytes] = (200, "application/json", json.dumps({"phase": "EXECUTING"}).encode())
        self.asked = 0
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gateway.asked += 1
                code, kind, body = gateway.answer
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jobs/1/"

    def maintenance_page(self) -> None:
        self.answer = (200, "text/html", b"<html><body>ESAP is being updated</body></html>")

    def phase(self, phase: str) -> None:
        self.answer = (200, "application/json", json.dumps({"phase": phase}).encode())


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    served = Gateway()
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


@pytest.fixture
def front() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "600"])
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_a_page_that_is_not_json_is_a_hiccup_and_the_run_goes_on(gateway: Gateway,
                                                                   front: subprocess.Popen[bytes]) -> None:
    gateway.maintenance_page()
    watch = PhaseWatch(gateway.url, "job-token", patience=3600)

    def cycle() -> None:
        watch.check()
        if gateway.asked == 3:  # the gateway is back, and the user aborted meanwhile
            gateway.phase("ABORTED")

    with pytest.raises(JobFinalised):
        follow(front, cycle, poll_seconds=0.05)
    assert gateway.asked == 4  # three hiccups survived, the fourth answer ended the run
    assert front.poll() is not None  # and the front was stopped


def test_a_gateway_that_stays_unreadable_ends_the_run_and_stops_the_front(gateway: Gateway,
                                                                          front: subprocess.Popen[bytes]) -> None:
    gateway.maintenance_page()
    watch = PhaseWatch(gateway.url, "job-token", patience=0.3)
    with pytest.raises(Unreachable) as caught:
        follow(front, watch.check, poll_seconds=0.05)
    assert str(caught.value) == (f"the ESAP gateway answered something that is not JSON at {gateway.url} "
                                 "for more than 0.3s: the run was stopped")
    assert front.poll() is not None


def test_the_token_refused_ends_the_run(gateway: Gateway, front: subprocess.Popen[bytes]) -> None:
    gateway.answer = (401, "application/json", b'{"detail": "Invalid token."}')
    with pytest.raises(JobFinalised):
        follow(front, PhaseWatch(gateway.url, "job-token").check, poll_seconds=0.05)
    assert front.poll() is not None


def test_a_store_error_while_following_stops_the_front(front: subprocess.Popen[bytes]) -> None:
    def write_status() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        follow(front, write_status, poll_seconds=0.05)
    assert front.poll() is not None  # it submits nothing more; the worker cancels what it submitted


def test_the_job_token_stays_out_of_the_watchs_repr(gateway: Gateway) -> None:
    assert "job-token" not in repr(PhaseWatch(gateway.url, "job-token"))
