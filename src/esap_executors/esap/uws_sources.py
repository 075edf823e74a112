"""Where the UWS worker may read a job's files from: the deployment decides, the job's parameters don't.

A job's `workflow` and `inputs` may be URLs. Read blindly, `file:///…` would copy any file the
worker can read (its private key, its configuration) into the job, and an http(s) URL would make
the worker a client of every service its network reaches. So:

- `file://` URLs are read only under the directories of `ESAP_UWS_FILE_ROOTS` (separated by `:`),
  after following every symbolic link; without it the worker reads no local file.
- http(s) URLs: with `ESAP_UWS_URL_PREFIXES` (URL prefixes separated by spaces), only URLs under one
  of them; without it, https URLs whose host resolves only to public (global) addresses. Every
  redirect is checked the same way.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from ..errors import BadInput, Unreachable
from .http import check_ok, send

FILE_ROOTS_ENV = "ESAP_UWS_FILE_ROOTS"
URL_PREFIXES_ENV = "ESAP_UWS_URL_PREFIXES"
MAX_BYTES = 256 * 1024 * 1024
MAX_REDIRECTS = 5
FETCH_TIMEOUT = 60.0


@dataclass(frozen=True)
class SourcePolicy:
    file_roots: tuple[Path, ...]
    url_prefixes: tuple[str, ...]

    @classmethod
    def from_environment(cls) -> SourcePolicy:
        roots = tuple(Path(p).resolve() for p in os.environ.get(FILE_ROOTS_ENV, "").split(os.pathsep) if p.strip())
        prefixes = tuple(p for p in os.environ.get(URL_PREFIXES_ENV, "").replace(",", " ").split() if p)
        return cls(file_roots=roots, url_prefixes=prefixes)

    def read_file(self, url: str, field: str) -> bytes:
        """The bytes of a file:// URL under one of the file roots, or BadInput."""
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise BadInput(f"{url}: a file URL of another host", field=field)
        if not self.file_roots:
            raise BadInput(f"{url}: this worker reads no local files (the deployment sets {FILE_ROOTS_ENV})",
                           field=field)
        wanted = Path(unquote(parts.path))
        refused = BadInput(f"{url}: outside the directories this worker reads files from ({FILE_ROOTS_ENV})",
                           field=field)
        if not wanted.is_absolute() or not self._under_root(wanted.resolve()):
            raise refused
        try:
            descriptor = os.open(wanted.resolve(), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            raise BadInput(f"{url}: no such file", field=field) from None
        with os.fdopen(descriptor, "rb") as handle:
            # what was opened, not what the name pointed to a moment before (a link swapped meanwhile)
            opened = Path(os.readlink(f"/proc/self/fd/{descriptor}"))
            if not self._under_root(opened):
                raise refused
            if not os.path.isfile(f"/proc/self/fd/{descriptor}"):
                raise BadInput(f"{url}: not a regular file", field=field)
            content = handle.read(MAX_BYTES + 1)
        if len(content) > MAX_BYTES:
            raise BadInput(f"{url}: larger than {MAX_BYTES} bytes", field=field)
        return content

    def _under_root(self, path: Path) -> bool:
        return any(path.is_relative_to(root) for root in self.file_roots)

    def check_url(self, url: str, field: str) -> None:
        """BadInput unless the deployment lets the worker fetch this http(s) URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"{url}: not an http(s) URL", field=field)
        if parts.username or parts.password:
            raise BadInput(f"{url}: a URL with credentials", field=field)
        if self.url_prefixes:
            if not any(_under_prefix(url, prefix) for prefix in self.url_prefixes):
                raise BadInput(f"{url}: not under the URLs this worker fetches ({URL_PREFIXES_ENV})", field=field)
            return
        if parts.scheme != "https":
            raise BadInput(f"{url}: this worker fetches https URLs only", field=field)
        if not all(_is_public(address) for address in _addresses(parts.hostname, parts.port or 443, url)):
            raise BadInput(f"{url}: its host is not a public address (the deployment may allow it in "
                           f"{URL_PREFIXES_ENV})", field=field)

    def fetch(self, url: str, field: str) -> bytes:
        """The body of an allowed URL, following allowed redirects only."""
        for _ in range(MAX_REDIRECTS + 1):
            self.check_url(url, field)
            reply = send(None, "get", url, what=field, timeout=FETCH_TIMEOUT, allow_redirects=False, stream=True)
            with reply:
                if reply.is_redirect and reply.headers.get("location"):
                    url = urljoin(url, reply.headers["location"])
                    continue
                check_ok(reply, what=field, url=url)
                content = reply.raw.read(MAX_BYTES + 1, decode_content=True)
            if len(content) > MAX_BYTES:
                raise BadInput(f"{url}: larger than {MAX_BYTES} bytes", field=field)
            return bytes(content)
        raise Unreachable(f"{field}: {url}: more than {MAX_REDIRECTS} redirects")


def _under_prefix(url: str, prefix: str) -> bool:
    """Same scheme, host and port, and the path below the prefix's path (not a mere string prefix:
    https://data.example.org must not admit https://data.example.org.evil.net)."""
    have, allowed = urlsplit(url), urlsplit(prefix)
    if (have.scheme, have.hostname, _port(have.scheme, have.port)) != \
            (allowed.scheme, allowed.hostname, _port(allowed.scheme, allowed.port)):
        return False
    base = allowed.path if allowed.path.endswith("/") else allowed.path + "/"
    return (have.path or "/").startswith(base) and ".." not in unquote(have.path).split("/")


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


def _addresses(host: str, port: int, url: str) -> list[str]:
    try:
        return [str(info[4][0]) for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)]
    except OSError:
        raise Unreachable(f"{url}: cannot resolve {host}") from None


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
