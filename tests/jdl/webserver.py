"""A small HTTP(S) file server for the sandbox tests: GET, PUT and WebDAV MKCOL on a directory."""

from __future__ import annotations

import functools
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def _target(self) -> Path:
        return Path(self.translate_path(self.path))

    def do_PUT(self) -> None:  # noqa: N802 - http.server naming
        target = self._target()
        if not target.parent.is_dir():
            self.send_error(409, "parent collection missing")
            return
        length = int(self.headers.get("Content-Length", 0))
        target.write_bytes(self.rfile.read(length))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_MKCOL(self) -> None:  # noqa: N802
        target = self._target()
        if target.exists():
            self.send_error(405, "exists")
            return
        target.mkdir()
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextmanager
def serve(root: Path, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve `root` on 127.0.0.1 (a free port); yields the base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    host = "localhost" if tls else "127.0.0.1"
    try:
        yield f"{scheme}://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
