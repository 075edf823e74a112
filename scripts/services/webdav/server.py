"""A WebDAV storage like the ESCAPE data lake's, for tests: wsgidav over TLS, bearer tokens only.

Run by webdav.sh from its own virtual environment (wsgidav, cheroot, PyJWT, trustme):

    python server.py CONFIG.json

What it does beyond wsgidav's file-system share:
- TokenGate (in place of wsgidav's HTTP authenticator): every request needs
  `Authorization: Bearer <JWT>` signed by the configured issuer (keys from its discovery
  document's jwks_uri, PyJWT), with an accepted `aud`, and the WLCG storage scope for the path:
  `storage.read:/p` to read (GET, HEAD, PROPFIND, OPTIONS), `storage.create:/p` to create what does
  not exist yet (PUT, MKCOL, the destination of MOVE/COPY), `storage.modify:/p` for every write.
  A scope path covers itself and everything below it. 401 without a valid token, 403 without scope.
- Digests (RFC 3230, as dCache and StoRM answer the data lake's clients): GET and HEAD with
  `Want-Digest: adler32` (or sha-256, md5) get a `Digest:` header.
- A test-only control path, /.ci/, allowed only with the `X-Ci-Key` header holding the key in
  the file next to the config (0600, root): POST /.ci/faults adds a fault for a path (or, with
  `prefix`, every path below it) and `methods` (default GET): answer `status` `times` times;
  `drop_after` N bytes then cut the connection; `corrupt` the body's first byte),
  DELETE /.ci/faults clears faults and counters, GET /.ci/counts gives the requests per path and
  method that reached the storage.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import urllib.parse
import urllib.request
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jwt
from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from wsgidav.dir_browser import WsgiDavDirBrowser
from wsgidav.error_printer import ErrorPrinter
from wsgidav.mw.base_mw import BaseMiddleware
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

READ_METHODS = {"GET", "HEAD", "PROPFIND", "OPTIONS"}
CONTROL = "/.ci/"
log = logging.getLogger("webdav-ci")


def scope_covers(scope_path: str, path: str) -> bool:
    base = scope_path.rstrip("/")
    return base == "" or path == base or path.startswith(base + "/")


def allowed_by(scopes: Iterable[str], operation: str, path: str) -> bool:
    for scope in scopes:
        kind, _, scope_path = scope.partition(":")
        if kind == f"storage.{operation}" and scope_path.startswith("/") and scope_covers(scope_path, path):
            return True
    return False


def local_path(root: str, path: str) -> str:
    return os.path.join(root, path.lstrip("/"))


class TokenGate(BaseMiddleware):
    """Bearer JWT of the configured issuer and audience, with the storage scope for the path."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        ci = config["ci"]
        self.issuer: str = ci["issuer"]
        self.audiences: list[str] = ci["audiences"]
        self.root: str = ci["root"]
        self.key: str = ci["control_key"]
        self._jwks: jwt.PyJWKClient | None = None

    def jwks(self) -> jwt.PyJWKClient:
        if self._jwks is None:
            url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
            with urllib.request.urlopen(url, timeout=10) as reply:  # noqa: S310 (configured issuer)
                discovery = json.load(reply)
            if discovery["issuer"] != self.issuer:
                raise RuntimeError(f"{url} describes issuer {discovery['issuer']}")
            self._jwks = jwt.PyJWKClient(discovery["jwks_uri"], cache_keys=True, lifespan=300)
        return self._jwks

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = urllib.parse.unquote(environ.get("PATH_INFO") or "/")
        if path.startswith(CONTROL):
            given = environ.get("HTTP_X_CI_KEY", "")
            if not hmac.compare_digest(given.encode(), self.key.encode()):
                return _answer(start_response, "403 Forbidden", "the control path needs the X-Ci-Key header\n")
            return self.next_app(environ, start_response)
        header = environ.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith("bearer "):
            return _answer(start_response, "401 Unauthorized", "a bearer token is required\n",
                           [("WWW-Authenticate", 'Bearer realm="webdav-ci"')])
        try:
            key = self.jwks().get_signing_key_from_jwt(header[7:].strip())
            claims = jwt.decode(header[7:].strip(), key.key, algorithms=["RS256", "ES256", "PS256"],
                                issuer=self.issuer, audience=self.audiences,
                                options={"require": ["exp", "iss", "sub", "aud"]})
        except (jwt.PyJWTError, OSError, RuntimeError, KeyError) as exc:
            return _answer(start_response, "401 Unauthorized", f"invalid token: {exc}\n",
                           [("WWW-Authenticate", f'Bearer realm="webdav-ci", error="invalid_token", '
                                                 f'error_description="{_header_text(str(exc))}"')])
        scopes = str(claims.get("scope") or "").split()
        needed = self.needed(environ, path)
        for operation, target in needed:
            if not allowed_by(scopes, operation, target) and not (
                    operation == "create" and allowed_by(scopes, "modify", target)):
                return _answer(start_response, "403 Forbidden",
                               f"the token lacks storage.{operation} for {target}\n")
        environ["wsgidav.auth.realm"] = "webdav-ci"
        environ["wsgidav.auth.user_name"] = str(claims["sub"])
        environ["wsgidav.auth.roles"] = None
        environ["wsgidav.auth.permissions"] = None
        return self.next_app(environ, start_response)

    def needed(self, environ: dict[str, Any], path: str) -> list[tuple[str, str]]:
        method = environ["REQUEST_METHOD"].upper()
        if method in READ_METHODS:
            return [("read", path)]
        if method in ("PUT", "MKCOL"):
            return [("create" if not os.path.exists(local_path(self.root, path)) else "modify", path)]
        if method in ("MOVE", "COPY"):
            destination = urllib.parse.unquote(urllib.parse.urlsplit(environ.get("HTTP_DESTINATION", "")).path)
            exists = os.path.exists(local_path(self.root, destination))
            source_need = "modify" if method == "MOVE" else "read"
            return [(source_need, path), ("modify" if exists else "create", destination)]
        return [("modify", path)]


class Faults(BaseMiddleware):
    """The test's knobs (/.ci/faults) and what reached the storage (/.ci/counts)."""

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.lock = threading.Lock()
        self.faults: list[dict[str, Any]] = []
        self.counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = urllib.parse.unquote(environ.get("PATH_INFO") or "/")
        method = environ["REQUEST_METHOD"].upper()
        if path.startswith(CONTROL):
            return self.control(path, method, environ, start_response)
        with self.lock:
            self.counts[path][method] += 1
            fault = self.take(path, method)
        if fault is None:
            return self.next_app(environ, start_response)
        if "status" in fault:
            return _answer(start_response, fault["status"], "fault injected by the test\n")
        body = self.next_app(environ, start_response)
        return _faulty(body, fault)

    def take(self, path: str, method: str) -> dict[str, Any] | None:
        for fault in self.faults:
            matches = fault["path"] == path or (fault.get("prefix") and path.startswith(fault["path"]))
            if matches and method in fault.get("methods", ["GET"]) and fault["times"] > 0:
                fault["times"] -= 1
                return fault
        return None

    def control(self, path: str, method: str, environ: dict[str, Any],
                start_response: Callable[..., Any]) -> Iterable[bytes]:
        if path == CONTROL + "faults" and method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            fault = json.loads(environ["wsgi.input"].read(size))
            fault.setdefault("times", 1)
            with self.lock:
                self.faults.append(fault)
            return _answer(start_response, "200 OK", "ok\n")
        if path == CONTROL + "faults" and method == "DELETE":
            with self.lock:
                self.faults.clear()
                self.counts.clear()
            return _answer(start_response, "200 OK", "ok\n")
        if path == CONTROL + "counts" and method == "GET":
            with self.lock:
                text = json.dumps({p: dict(m) for p, m in self.counts.items()})
            return _answer(start_response, "200 OK", text, [("Content-Type", "application/json")])
        return _answer(start_response, "404 Not Found", "unknown control path\n")


def _faulty(body: Iterable[bytes], fault: dict[str, Any]) -> Iterator[bytes]:
    sent = 0
    first = True
    try:
        for chunk in body:
            if fault.get("corrupt") and first and chunk:
                chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                first = False
            limit = fault.get("drop_after")
            if limit is not None and sent + len(chunk) >= limit:
                yield chunk[: max(0, limit - sent)]
                raise ConnectionAbortedError("connection dropped by the test's fault")
            sent += len(chunk)
            yield chunk
    finally:
        close = getattr(body, "close", None)
        if close:
            close()


class Digests(BaseMiddleware):
    """RFC 3230 instance digests of files on GET/HEAD, computed once per file version."""

    ALGORITHMS = ("adler32", "sha-256", "md5")

    def __init__(self, wsgidav_app: Any, next_app: Any, config: dict[str, Any]) -> None:
        super().__init__(wsgidav_app, next_app, config)
        self.root = config["ci"]["root"]
        self.cache: dict[tuple[str, str, int, int], str] = {}
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        wanted = [w.split(";")[0].strip().lower() for w in environ.get("HTTP_WANT_DIGEST", "").split(",")]
        wanted = [w for w in wanted if w in self.ALGORITHMS]
        if environ["REQUEST_METHOD"].upper() not in ("GET", "HEAD") or not wanted:
            return self.next_app(environ, start_response)
        file_path = local_path(self.root, urllib.parse.unquote(environ.get("PATH_INFO") or "/"))

        def with_digest(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            if status.startswith("200") and os.path.isfile(file_path):
                headers = headers + [("Digest", f"{wanted[0]}={self.digest(file_path, wanted[0])}")]
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        return self.next_app(environ, with_digest)

    def digest(self, file_path: str, algorithm: str) -> str:
        info = os.stat(file_path)
        key = (file_path, algorithm, info.st_size, info.st_mtime_ns)
        with self.lock:
            if key in self.cache:
                return self.cache[key]
        if algorithm == "adler32":
            value = 1
            with open(file_path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    value = zlib.adler32(chunk, value)
            text = f"{value:08x}"
        else:
            hasher = hashlib.new("sha256" if algorithm == "sha-256" else "md5")
            with open(file_path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    hasher.update(chunk)
            text = base64.b64encode(hasher.digest()).decode()
        with self.lock:
            self.cache[key] = text
        return text


def _answer(start_response: Callable[..., Any], status: str | int, text: str,
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    if isinstance(status, int):
        status = f"{status} {'Service Unavailable' if status == 503 else 'Error'}"
    body = text.encode()
    base = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    start_response(status, [h for h in base if not any(h[0] == k for k, _ in headers or [])] + (headers or []))
    return [body]


def _header_text(text: str) -> str:
    return text.replace('"', "'").replace("\n", " ")[:200]


def main() -> None:
    with open(sys.argv[1]) as handle:
        settings = json.load(handle)
    with open(settings["control_key_file"]) as handle:
        settings["control_key"] = handle.read().strip()
    os.makedirs(settings["root"], exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = {
        "host": settings["host"],
        "port": settings["port"],
        "provider_mapping": {"/": settings["root"]},
        "middleware_stack": [ErrorPrinter, TokenGate, Faults, Digests, WsgiDavDirBrowser, RequestResolver],
        "http_authenticator": {"domain_controller": None},
        "simple_dc": {"user_mapping": {"*": True}},
        "dir_browser": {"enable": False},
        "lock_storage": True,
        "property_manager": True,
        "verbose": 1,
        "logging": {"enable_loggers": []},
        "ci": settings,
    }
    app = WsgiDAVApp(config)
    server = wsgi.Server((settings["host"], settings["port"]), app, numthreads=settings.get("threads", 16),
                         server_name="webdav-ci")
    server.ssl_adapter = BuiltinSSLAdapter(settings["certificate"], settings["private_key"])
    with open(settings["pid_file"], "w") as handle:
        handle.write(str(os.getpid()))
    log.info("serving %s on https://%s:%s/ (issuer %s)", settings["root"], settings["host"], settings["port"],
             settings["issuer"])
    server.safe_start()


if __name__ == "__main__":
    main()
