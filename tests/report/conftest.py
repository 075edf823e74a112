"""A local HTTP server that receives run notices (and can answer 503 first)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class NoticeServer:
    url: str
    unavailable_first: int = 0  # how many requests get 503 before one is accepted
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted notices
    attempts: list[dict[str, str]] = field(default_factory=list)  # headers of every request


@pytest.fixture
def notice_server() -> Iterator[NoticeServer]:
    server_state: list[NoticeServer] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            state = server_state[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.attempts.append(dict(self.headers))
            if len(state.attempts) <= state.unavailable_first:
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.end_headers()
                return
            state.received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_state.append(NoticeServer(f"http://127.0.0.1:{httpd.server_address[1]}/hooks/esap?key=s3cret"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state[0]
    finally:
        httpd.shutdown()
        httpd.server_close()
