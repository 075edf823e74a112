"""Moving files to and from storage URLs (https://, http://, davs://, dav://) on fsspec.

Reads go through fsspec's HTTPFileSystem (aiohttp, on fsspec's own event-loop thread, streamed
chunk by chunk), WebDAV writes and listings through webdav4's fsspec filesystem (httpx). Each URL
gets the token and TLS settings `auth.storage.access_for` chooses for its prefix.

- retries with exponential back-off on 5xx, 408, 429, time-outs and dropped connections;
- a download is written under a hidden temporary name and renamed when complete and checked:
  nothing partial is ever left at the destination;
- checksums: adler32 is computed while streaming; it (and the caller's expected checksum) is
  compared with what the server offers (RFC 3230 `Digest`, asked for with `Want-Digest`);
- an upload goes to a hidden temporary name in the destination collection, then MOVE (missing
  collections are created); a failure removes the temporary file.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..auth.redact import redact
from ..auth.storage import StorageAccess, access_for, web_url
from ..errors import AuthError, BadInput, EsapError, Unreachable
from ..formats.urls import scheme_of
from .checksums import WANT_DIGEST, Checksum, Hasher, from_digest_header

if TYPE_CHECKING:
    from .cache import SiteCache

CHUNK_SIZE = 4 << 20  # bytes read or written at a time (memory per transfer stays about this)
RETRIES = 4  # attempts after the first
BACKOFF = 0.5  # seconds before the first retry; doubled each time (with jitter)
CONNECT_TIMEOUT = 15.0
READ_TIMEOUT = 120.0  # seconds without a byte before a transfer is retried
T = TypeVar("T")
TLS_ADVICE = "set ca_bundle in the URL's storage rule (auth.yaml) or REQUESTS_CA_BUNDLE"


class TransferFailed(EsapError):
    """A transfer could not be completed (after retries where they help). Exit code 1."""


class ChecksumMismatch(TransferFailed):
    pass


class _Retry(Exception):
    """A transient failure: try again after a pause."""

    def __init__(self, why: str) -> None:
        why = redact(why)
        super().__init__(why)
        self.why = why


@dataclass(frozen=True)
class RemoteInfo:
    url: str
    size: int | None
    etag: str | None
    checksums: tuple[Checksum, ...]
    is_dir: bool = False
    modified: str | None = None

    @property
    def name(self) -> str:
        return Path(urllib.parse.unquote(urllib.parse.urlsplit(self.url).path.rstrip("/"))).name


@dataclass(frozen=True)
class Transferred:
    url: str
    path: Path
    size: int
    adler32: str
    attempts: int
    from_cache: bool = False


# --- fsspec filesystems -----------------------------------------------------------------------
_FS_LOCK = threading.Lock()
_HTTP_FS: dict[int, Any] = {}


def _http_fs(access: StorageAccess) -> Any:
    """One fsspec HTTPFileSystem (one aiohttp session) per TLS context; tokens go per request."""
    import aiohttp
    from fsspec.implementations.http import HTTPFileSystem

    key = id(access.ssl_context)
    with _FS_LOCK:
        if key not in _HTTP_FS:
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
            _HTTP_FS[key] = HTTPFileSystem(skip_instance_cache=True, ssl=access.ssl_context,
                                           client_kwargs={"timeout": timeout, "auto_decompress": False})
        return _HTTP_FS[key]


def _dav_fs(access: StorageAccess) -> Any:
    """webdav4's fsspec filesystem for the URL's server, with its token; no retries of its own."""
    import httpx
    from webdav4.fsspec import WebdavFileSystem

    parts = urllib.parse.urlsplit(access.url)
    return WebdavFileSystem(f"{parts.scheme}://{parts.netloc}/", headers=access.headers(),
                            verify=access.ssl_context, retry=False, chunk_size=CHUNK_SIZE,
                            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT))


def _path_of(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(web_url(url)).path) or "/"


# --- public operations --------------------------------------------------------------------------
def stat(url: str, *, access: StorageAccess | None = None) -> RemoteInfo:
    """HEAD the URL: size, ETag and the checksums the server offers. 404 -> BadInput, 401/403 -> AuthError."""
    import aiohttp

    access = access or access_for(url)
    _refuse_if_lacking(access, "read", url)
    fs = _http_fs(access)
    headers = {**access.headers(), "Want-Digest": WANT_DIGEST, "Accept-Encoding": "identity"}

    async def head() -> dict[str, Any]:
        session = await fs.set_session()
        try:
            async with session.head(access.url, headers=headers, ssl=fs.kwargs["ssl"], allow_redirects=True) as reply:
                await _raise_for(reply)
                found: dict[str, Any] = {k.lower(): v for k, v in reply.headers.items()}
        except aiohttp.ClientConnectorCertificateError:
            raise
        except (TimeoutError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        length = found.get("content-length")
        found["size"] = int(length) if length and length.isdigit() else None
        return found

    info = _with_retries(url, lambda attempt: _run(fs, head()))[0]
    checksums = from_digest_header(info.get("digest"))
    if info.get("content-md5") and not any(c.algorithm == "md5" for c in checksums):
        checksums += from_digest_header(f"md5={info['content-md5']}")
    return RemoteInfo(url, info.get("size"), info.get("etag"), checksums, modified=info.get("last-modified"))


def listdir(url: str) -> list[RemoteInfo]:
    """A WebDAV collection's entries (PROPFIND, depth 1)."""
    access = access_for(url)
    fs = _dav_fs(access)
    base = url.rstrip("/")
    entries = _with_retries(url, lambda attempt: _dav_call(url, lambda: fs.ls(_path_of(url), detail=True)))[0]
    result = []
    for entry in entries:
        name = str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]
        is_dir = entry.get("type") == "directory"
        result.append(RemoteInfo(f"{base}/{urllib.parse.quote(name)}" + ("/" if is_dir else ""),
                                 None if is_dir else entry.get("size"), entry.get("etag"), (), is_dir,
                                 str(entry.get("modified")) if entry.get("modified") else None))
    return sorted(result, key=lambda e: e.url)


def fetch(url: str, dest: str | Path, *, checksum: Checksum | str | None = None, cache: SiteCache | None = None,
          chunk_size: int = CHUNK_SIZE) -> Transferred:
    """Download `url` to `dest` (atomically, checked, retried).

    `checksum` ("adler32:…") is compared besides what the server offers. `cache` (a
    `staging.cache.SiteCache`) serves an input many jobs read from one download per URL+ETag.
    """
    expected = (Checksum.parse(checksum) if isinstance(checksum, str) else checksum,) if checksum else ()
    target = Path(dest)
    if cache is not None:
        return cache.fetch(url, target, expected=expected, chunk_size=chunk_size)
    return download(url, target, expected=expected, chunk_size=chunk_size)


def fetch_many(items: Sequence[tuple[str, str | Path]], *, parallel: int = 8, cache: SiteCache | None = None,
               chunk_size: int = CHUNK_SIZE) -> list[Transferred]:
    """fetch() for many (url, dest) pairs, `parallel` at a time; the first failure is raised."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(lambda item: fetch(item[0], item[1], cache=cache, chunk_size=chunk_size), items))


def download(url: str, target: Path, *, expected: tuple[Checksum, ...] = (), chunk_size: int = CHUNK_SIZE,
             access: StorageAccess | None = None) -> Transferred:
    access = access or access_for(url)
    _refuse_if_lacking(access, "read", url)
    fs = _http_fs(access)
    target.parent.mkdir(parents=True, exist_ok=True)
    headers = {**access.headers(), "Want-Digest": WANT_DIGEST}
    algorithms = tuple(c.algorithm for c in expected)

    def attempt(number: int) -> Hasher:
        partial = target.with_name(f".{target.name}.esap-part-{secrets.token_hex(4)}")
        try:
            hasher, offered = _run(fs, _stream_to(fs, access.url, headers, partial, chunk_size, algorithms))
            wrong = hasher.mismatch(expected + offered)
            if wrong:
                want, got = wrong
                whose = "expected" if want in expected else "the server's"
                raise ChecksumMismatch(f"{target}: checksum mismatch for {url}: got {got}, {whose} {want}; "
                                       "the file was not kept")
            os.replace(partial, target)
            return hasher
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    hasher, attempts = _with_retries(url, attempt)
    adler = hasher.value("adler32")
    return Transferred(url, target, hasher.size, adler.value if adler else "", attempts)


async def _stream_to(fs: Any, url: str, headers: dict[str, str], partial: Path, chunk_size: int,
                     algorithms: tuple[str, ...]) -> tuple[Hasher, tuple[Checksum, ...]]:
    """GET into `partial`; the data's hashes and the checksums the server offered for it."""
    import aiohttp

    session = await fs.set_session()
    try:
        async with session.get(url, headers=headers, ssl=fs.kwargs["ssl"]) as reply:
            await _raise_for(reply)
            offered = from_digest_header(reply.headers.get("Digest"))
            hasher = Hasher(algorithms + tuple(c.algorithm for c in offered))
            length = reply.headers.get("Content-Length")
            with partial.open("wb") as out:
                async for chunk in reply.content.iter_chunked(chunk_size):
                    hasher.update(chunk)
                    out.write(chunk)
            if length is not None and hasher.size != int(length):
                raise _Retry(f"the connection closed after {hasher.size} of {length} bytes")
            return hasher, offered
    except aiohttp.ClientConnectorCertificateError:
        raise
    except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError,
            aiohttp.ServerTimeoutError) as exc:
        raise _Retry(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None


async def _raise_for(reply: Any) -> None:
    if reply.status < 400:
        return
    text = (await reply.text(errors="replace"))[:300].strip().splitlines()
    raise _HttpStatus(reply.status, text[0] if text else reply.reason or "")


class _HttpStatus(Exception):
    def __init__(self, status: int, text: str) -> None:
        text = redact(text)  # a server may echo the request's headers
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text


def upload(path: str | Path, url: str, *, checksum: Checksum | str | None = None,
           chunk_size: int = CHUNK_SIZE) -> Transferred:
    """Upload a local file to `url`: PUT under a hidden temporary name, then MOVE over the final name."""
    source = Path(path)
    if not source.is_file():
        raise BadInput(f"{source}: no such file", field="path")
    expected = (Checksum.parse(checksum) if isinstance(checksum, str) else checksum,) if checksum else ()
    if url.endswith("/"):
        url += urllib.parse.quote(source.name)
    access = access_for(url)
    _refuse_if_lacking(access, "write", url)
    fs = _dav_fs(access)
    final = _path_of(url)
    parent, _, name = final.rpartition("/")
    size = source.stat().st_size
    # davs:// is WebDAV; an https:// server is asked (OPTIONS) whether it speaks it: a plain PUT
    # server gets the file under its own name (it has no MOVE to make the write atomic)
    atomic = scheme_of(url) in ("davs", "dav") or _speaks_webdav(fs)
    temporary = f"{parent}/.{name}.esap-upload-{secrets.token_hex(4)}" if atomic else final

    def attempt(number: int) -> Hasher:
        with source.open("rb") as handle:
            reader = _HashingReader(handle, Hasher(tuple(c.algorithm for c in expected)))
            try:
                _put(fs, reader, temporary, parent, size, chunk_size)
                wrong = reader.hasher.mismatch(expected)
                if wrong:
                    raise ChecksumMismatch(f"{source}: checksum {wrong[1]} is not the expected {wrong[0]}; "
                                           "nothing was uploaded")
                if atomic:
                    _dav_call(url, lambda: fs.client.move(temporary, final, overwrite=True))
            except BaseException:
                if atomic:
                    with contextlib.suppress(Exception):
                        fs.client.remove(temporary)
                raise
        return reader.hasher

    hasher, attempts = _with_retries(url, attempt)
    info = stat(url, access=access)
    mine = hasher.value("adler32")
    theirs = next((c for c in info.checksums if c.algorithm == "adler32"), None)
    if (theirs and mine and theirs.value != mine.value) or (info.size is not None and info.size != hasher.size):
        raise ChecksumMismatch(f"{source}: the storage holds {info.size} bytes ({theirs}) at {url}, "
                               f"not {hasher.size} ({mine})")
    return Transferred(url, source, hasher.size, mine.value if mine else "", attempts)


def _put(fs: Any, reader: _HashingReader, temporary: str, parent: str, size: int, chunk_size: int) -> None:
    from webdav4.client import HTTPError

    def put() -> None:
        fs.client.upload_fileobj(reader, temporary, overwrite=True, chunk_size=chunk_size, size=size)

    try:
        _dav_call(temporary, put)
    except _HttpStatus as exc:
        if exc.status != 409:  # WebDAV: the parent collection does not exist
            raise
        reader.rewind()
        parts = [p for p in parent.split("/") if p]
        for depth in range(1, len(parts) + 1):  # MKCOL each level; 405: it exists already
            with contextlib.suppress(HTTPError, _HttpStatus):
                _dav_call(parent, lambda d=depth: fs.client.request("MKCOL", "/".join(parts[:d]),  # type: ignore[misc]
                                                                    add_trailing_slash=True))
        _dav_call(temporary, put)


def _speaks_webdav(fs: Any) -> bool:
    import httpx

    try:
        reply = fs.client.http.options(fs.client.join_url(""))
    except httpx.HTTPError:
        return False
    return "dav" in reply.headers or "MOVE" in reply.headers.get("allow", "").upper()


class _HashingReader:
    """A file object that hashes what httpx reads from it (streamed; never the whole file)."""

    def __init__(self, handle: IO[bytes], hasher: Hasher) -> None:
        self.handle = handle
        self.hasher = hasher
        self._extra = tuple(a for a in ("sha256", "md5") if hasher.value(a) is not None)

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.hasher.update(data)
        return data

    def rewind(self) -> None:
        self.handle.seek(0)
        self.hasher = Hasher(self._extra)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()

    def fileno(self) -> int:
        return self.handle.fileno()


def remove(url: str) -> None:
    """DELETE a file or collection (a missing one is not an error); the write scope is required."""
    access = access_for(url)
    _refuse_if_lacking(access, "write", url)
    fs = _dav_fs(access)

    def attempt(number: int) -> None:
        try:
            _dav_call(url, lambda: fs.client.remove(_path_of(url)))
        except BadInput:  # 404: already gone
            pass

    _with_retries(url, attempt)


def make_collection(url: str) -> None:
    """MKCOL `url` and the parents it lacks (an existing collection is fine); the write scope is required."""
    access = access_for(url)
    _refuse_if_lacking(access, "write", url)
    fs = _dav_fs(access)
    parts = [p for p in _path_of(url).split("/") if p]

    def mkcol(depth: int) -> None:
        path = "/".join(parts[:depth])
        try:
            _dav_call(url, lambda: fs.client.request("MKCOL", path, add_trailing_slash=True))
        except _HttpStatus as exc:
            if exc.status == 405:  # it exists
                return
            if exc.status != 409 or depth <= 1:
                raise
            mkcol(depth - 1)  # 409: the parent is missing
            _dav_call(url, lambda: fs.client.request("MKCOL", path, add_trailing_slash=True))

    _with_retries(url, lambda number: mkcol(len(parts)))


def check_writable(url: str) -> None:
    """Without contacting the storage: AuthError when the URL's token visibly lacks the write scope."""
    _refuse_if_lacking(access_for(url), "write", url)


def _dav_call(url: str, call: Callable[[], T]) -> T:
    """Translate webdav4/httpx failures into _HttpStatus / _Retry."""
    import httpx
    from webdav4.client import HTTPError, ResourceNotFound

    try:
        return call()
    except HTTPError as exc:
        raise _HttpStatus(exc.status_code, exc.response.text[:300].strip().split("\n")[0]) from None
    except httpx.HTTPStatusError as exc:
        raise _HttpStatus(exc.response.status_code, exc.response.text[:300].strip().split("\n")[0]) from None
    except ResourceNotFound:
        raise _HttpStatus(404, "not found") from None
    except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            raise Unreachable(f"{url}: TLS certificate verification failed; {TLS_ADVICE}") from None
        raise _Retry(f"{type(exc).__name__}: {exc}") from None


# --- retries and errors -------------------------------------------------------------------------
def _with_retries(url: str, attempt: Callable[[int], T], retries: int = RETRIES) -> tuple[T, int]:
    """Run attempt(1), attempt(2), … while failures are transient; map the last one to an EsapError."""
    import aiohttp

    why = ""
    for number in range(1, retries + 2):
        try:
            return attempt(number), number
        except _Retry as exc:
            why = exc.why
        except _HttpStatus as exc:
            if exc.status < 500 and exc.status not in (408, 429):
                raise _error_for(url, exc) from None
            why = str(exc)
        except FileNotFoundError as exc:
            if exc.filename and Path(str(exc.filename)).is_absolute():
                raise
            raise BadInput(f"{url}: not found (HTTP 404)") from None
        except aiohttp.ClientResponseError as exc:
            if exc.status < 500 and exc.status not in (408, 429):
                raise _error_for(url, _HttpStatus(exc.status, exc.message)) from None
            why = f"HTTP {exc.status}: {exc.message}"
        except aiohttp.ClientConnectorCertificateError as exc:
            raise Unreachable(f"{url}: TLS certificate verification failed ({exc.certificate_error}); "
                              f"{TLS_ADVICE}") from None
        except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            why = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if number <= retries:
            time.sleep(BACKOFF * 2 ** (number - 1) * random.uniform(0.8, 1.2))  # noqa: S311 (jitter)
    raise Unreachable(f"{url}: {why} (gave up after {retries + 1} attempts)")


def _error_for(url: str, exc: _HttpStatus) -> EsapError:
    if exc.status == 404:
        return BadInput(f"{url}: not found (HTTP 404)")
    if exc.status in (401, 403):
        return AuthError(f"{url}: the storage refused access (HTTP {exc.status}: {exc.text})")
    return TransferFailed(f"{url}: HTTP {exc.status}: {exc.text}")


def _refuse_if_lacking(access: StorageAccess, operation: str, url: str) -> None:
    """Before any byte moves: a token whose scopes visibly do not allow the operation is named."""
    missing = access.lacks(operation, _path_of(url))
    if missing:
        held = " ".join(s for s in access.scopes() if s.startswith("storage.")) or "none"
        advice = f"add it to the storage rule at {access.rule.where}" if access.rule else "get one that has it"
        raise AuthError(f"{url}: the token ({access.token_source}) lacks {missing} (it holds {held}); {advice}")


def _run(fs: Any, coroutine: Any) -> Any:
    from fsspec.asyn import sync

    return sync(fs.loop, lambda: coroutine)

