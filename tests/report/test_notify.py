"""`esap run --notify URL`: one POST of the run's summary when it ends, retried, with the token if asked."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support import esap

from .conftest import NoticeServer

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0ZXIifQ.c2lnbmF0dXJlLW9mLXRoZS10ZXN0"


def test_a_run_that_ends_posts_its_summary_once_after_a_503(state_dir: Path, notice_server: NoticeServer) -> None:
    notice_server.unavailable_first = 1

    result = esap("run", "--json", "--notify", notice_server.url, "--notify-token", "--", "true",
                  env={"BEARER_TOKEN": TOKEN}, cwd="/tmp")

    assert result.returncode == 0, result.stderr
    run_id = json.loads(result.stdout)["run"]
    assert len(notice_server.attempts) == 2
    (notice,) = notice_server.received
    assert notice["event"] == "esap.run.ended" and notice["outcome"] == "completed"
    assert notice["run"]["run_id"] == run_id and notice["run"]["states"] == {"completed": 1}
    assert all(a["Authorization"] == f"Bearer {TOKEN}" for a in notice_server.attempts)
    assert TOKEN not in result.stderr and "s3cret" not in result.stderr


def test_a_failed_run_notifies_its_failed_jobs_without_a_token(state_dir: Path, notice_server: NoticeServer) -> None:
    result = esap("run", "--notify", notice_server.url, "--", "sh", "-c", "exit 4",
                  env={"BEARER_TOKEN": TOKEN}, cwd="/tmp")

    assert result.returncode == 1
    (notice,) = notice_server.received
    assert notice["outcome"] == "failed"
    (failed,) = notice["failed_jobs"]
    assert failed["exit_code"] == 4 and failed["site"] == "local"
    assert "Authorization" not in notice_server.attempts[0]


def test_an_undeliverable_notice_is_one_warning_and_the_run_keeps_its_outcome(
    state_dir: Path, notice_server: NoticeServer
) -> None:
    notice_server.unavailable_first = 10

    result = esap("run", "--notify", notice_server.url, "--", "true", cwd="/tmp")

    assert result.returncode == 0
    assert len(notice_server.attempts) == 4 and notice_server.received == []
    warnings = [line for line in result.stderr.splitlines() if "notice" in line]
    assert len(warnings) == 1 and "HTTP 503" in warnings[0] and "s3cret" not in warnings[0], result.stderr


def test_a_notify_url_that_is_not_http_is_refused_before_anything_is_submitted(state_dir: Path) -> None:
    result = esap("run", "--notify", "ftp://example.org/x", "--", "true", cwd="/tmp")

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--notify" in result.stderr
    assert json.loads(esap("runs", "--json").stdout) == []


def test_debug_output_shows_neither_the_token_nor_the_urls_query(state_dir: Path, notice_server: NoticeServer) -> None:
    result = esap("--debug", "run", "--notify", notice_server.url, "--notify-token", "--", "true",
                  env={"BEARER_TOKEN": TOKEN}, cwd="/tmp")

    assert result.returncode == 0, result.stderr
    assert len(notice_server.received) == 1
    assert "/hooks/esap" in result.stderr  # the HTTP library's request line is there...
    assert "s3cret" not in result.stderr and TOKEN not in result.stderr  # ...without the secrets
