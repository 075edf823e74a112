"""A site's download cache: one download per URL and ETag, however many jobs read the input.

    <directory>/<sha256(url)[:32]>/<sha256(etag)[:16]>        the file, complete and checked
    <directory>/<sha256(url)[:32]>/<sha256(etag)[:16]>.lock   held while it is being fetched

The ETag comes from a HEAD before the download: a changed file gets a new entry; a server that
gives no ETag is not cached (every fetch downloads). Processes and threads wait on the entry's
file lock (fcntl), so concurrent jobs of one site fetch an input once. A job gets its own copy,
never the cache's file (a job that writes into its input cannot spoil the cache).

With `max_bytes` the cache is bounded: after each download the least recently used entries
(a hit marks its entry used) are removed until the total fits; an entry being fetched or read
(its lock held) is never removed.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from .checksums import Checksum
from .remote import CHUNK_SIZE, ChecksumMismatch, TransferFailed, Transferred, download, stat


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class SiteCache:
    def __init__(self, directory: str | Path, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes

    def entry(self, url: str, etag: str) -> Path:
        return self.directory / _digest(url, 32) / _digest(etag.strip('"').removeprefix("W/").strip('"'), 16)

    def fetch(self, url: str, target: Path, *, expected: tuple[Checksum, ...] = (),
              chunk_size: int = CHUNK_SIZE) -> Transferred:
        """The cached copy when the URL's ETag is known, else a download; then a copy at `target`."""
        for attempt in (1, 2):  # 2: another job pruned the entry between its fetch and this copy
            cached = self.path_for(url, expected=expected, chunk_size=chunk_size)
            if cached is None:
                return download(url, target, expected=expected, chunk_size=chunk_size)
            path, transferred = cached
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.esap-copy-{os.getpid()}")
            try:
                shutil.copyfile(path, partial)
                os.replace(partial, target)
                break
            except FileNotFoundError:
                if attempt == 2 or path.exists():
                    raise
            finally:
                with contextlib.suppress(FileNotFoundError):
                    partial.unlink()
        return Transferred(url, target, transferred.size, transferred.adler32, transferred.attempts,
                           transferred.from_cache)

    def path_for(self, url: str, *, expected: tuple[Checksum, ...] = (),
                 chunk_size: int = CHUNK_SIZE) -> tuple[Path, Transferred] | None:
        """The cache's own file for `url` (downloaded once), or None when the server gives no ETag."""
        try:
            info = stat(url)
        except TransferFailed:  # the server answers no HEAD (405, 501, …): no ETag, so no caching
            return None
        if not info.etag:
            return None
        entry = self.entry(url, info.etag)
        with self._locked(entry):
            if entry.is_file() and entry.stat().st_size == info.size:
                adler = next((c.value for c in info.checksums if c.algorithm == "adler32"), "")
                for want in expected:  # the cached copy was checked against the server's, not the caller's
                    if want.algorithm == "adler32" and adler and want.value != adler:
                        raise ChecksumMismatch(f"{entry.name}: checksum mismatch for {url}: the storage has "
                                               f"adler32:{adler}, expected {want}")
                os.utime(entry)  # used now: the last to go when the cache is pruned
                return entry, Transferred(url, entry, entry.stat().st_size, adler, 0, from_cache=True)
            transferred = download(url, entry, expected=expected, chunk_size=chunk_size)
        if self.max_bytes is not None:
            self.prune(self.max_bytes, keep=entry)
        return entry, transferred

    def prune(self, max_bytes: int, *, keep: Path | None = None) -> int:
        """Remove least recently used entries until the cache holds at most `max_bytes`; returns
        the bytes removed. `keep` and entries whose lock is held stay."""
        entries = []
        for path in self.directory.glob("*/*"):
            if path.name.endswith(".lock") or path.name.startswith(".") or not path.is_file():
                continue
            with contextlib.suppress(FileNotFoundError):
                info = path.stat()
                entries.append((info.st_mtime, info.st_size, path))
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries):
            if total <= max_bytes:
                break
            if path == keep:
                continue
            with self._locked(path, wait=False) as held:
                if held:
                    path.unlink(missing_ok=True)
                    total -= size
                    removed += size
        return removed

    @contextlib.contextmanager
    def _locked(self, entry: Path, *, wait: bool = True) -> Iterator[bool]:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(entry.with_name(entry.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)


CACHE_SIZE_VARIABLE = "ESAP_STAGING_CACHE_SIZE"


def default_cache() -> SiteCache:
    """This machine's cache for the current user (submit-host staging), bounded by
    $ESAP_STAGING_CACHE_SIZE (e.g. 50G; a bare number is MiB), else unbounded."""
    from ..paths import state_dir

    return SiteCache(state_dir() / "staging-cache", max_bytes=submit_cache_bytes())


def submit_cache_bytes() -> int | None:
    """The submit host's bound from the environment; a malformed value is BadInput naming the variable."""
    from ..formats.memory import parse_memory_mib

    value = os.environ.get(CACHE_SIZE_VARIABLE, "").strip()
    return parse_memory_mib(value, field=CACHE_SIZE_VARIABLE) << 20 if value else None
