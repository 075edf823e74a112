"""Snakemake storage plugin `esap`: inputs and outputs by https:// and davs:// URL through the
esap staging layer (bearer tokens per URL prefix from auth.yaml `storage:`, adler32 checksums,
retries, atomic uploads, the site cache).

    rule all:
        input: storage.esap("davs://webdav.example.org/escape/user/alice/table.txt")

or `--default-storage-provider esap --default-storage-prefix davs://host/path`. The PyPI plugins
snakemake-storage-plugin-http (read-only; Basic/Digest/OAuth1 only) and -webdav (dav://, one
host, Basic auth) send no bearer tokens, which the data lake requires.
"""

from __future__ import annotations

import email.utils
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snakemake_interface_common.exceptions import WorkflowError
from snakemake_interface_storage_plugins.io import IOCacheStorageInterface, Mtime
from snakemake_interface_storage_plugins.settings import StorageProviderSettingsBase
from snakemake_interface_storage_plugins.storage_object import StorageObjectRead, StorageObjectWrite
from snakemake_interface_storage_plugins.storage_provider import (
    ExampleQuery,
    Operation,
    QueryType,
    StorageProviderBase,
    StorageQueryValidationResult,
)

SCHEMES = ("https", "http", "davs", "dav")
# Set by the esap executor in jobs whose files travel with them (sites without a shared
# filesystem): Snakemake on the submit host fetches and stores the storage files; the job sees
# only the local copies sent with it, and needs no token.
LOCAL_COPIES_ONLY = "ESAP_STORAGE_LOCAL_COPIES"


def local_copies_only() -> bool:
    return os.environ.get(LOCAL_COPIES_ONLY) == "1"


@dataclass
class StorageProviderSettings(StorageProviderSettingsBase):
    """No settings: tokens, CAs and audiences come from auth.yaml's `storage:` rules."""


class StorageProvider(StorageProviderBase):
    @classmethod
    def example_queries(cls) -> list[ExampleQuery]:
        return [
            ExampleQuery(query="davs://webdav.example.org/escape/user/alice/table.txt",
                         description="a file on a WebDAV storage (read and write; token from auth.yaml)",
                         type=QueryType.ANY),
            ExampleQuery(query="https://data.example.org/catalogue.fits",
                         description="a file on an https server (read)", type=QueryType.INPUT),
        ]

    def rate_limiter_key(self, query: str, operation: Operation) -> Any:
        return urllib.parse.urlsplit(query).netloc

    def default_max_requests_per_second(self) -> float:
        return 20.0

    def use_rate_limiter(self) -> bool:
        return False  # the layer retries with back-off on 429 and 5xx

    @classmethod
    def is_valid_query(cls, query: str) -> StorageQueryValidationResult:
        parts = urllib.parse.urlsplit(query)
        if parts.scheme not in SCHEMES or not parts.netloc:
            return StorageQueryValidationResult(query=query, valid=False,
                                                reason=f"not a URL of {', '.join(s + '://' for s in SCHEMES)}")
        return StorageQueryValidationResult(query=query, valid=True)


class StorageObject(StorageObjectRead, StorageObjectWrite):
    def __post_init__(self) -> None:
        self.url = str(self.query)

    async def inventory(self, cache: IOCacheStorageInterface) -> None:
        key = self.cache_key()
        if key in cache.exists_in_storage or local_copies_only():
            return
        info = self._stat()
        cache.exists_in_storage[key] = info is not None
        if info is not None:
            cache.mtime[key] = Mtime(storage=_timestamp(info.modified))
            if info.size is not None:
                cache.size[key] = info.size

    def get_inventory_parent(self) -> str | None:
        return None

    def local_suffix(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.netloc}{urllib.parse.unquote(parts.path)}"

    def cleanup(self) -> None:
        pass

    def exists(self) -> bool:
        if local_copies_only():
            return Path(self.local_path()).exists()
        return self._stat() is not None

    def mtime(self) -> float:
        if local_copies_only():
            return Path(self.local_path()).stat().st_mtime
        info = self._stat()
        return _timestamp(info.modified) if info else 0.0

    def size(self) -> int:
        if local_copies_only():
            return Path(self.local_path()).stat().st_size
        info = self._stat()
        return info.size or 0 if info else 0

    def retrieve_object(self) -> None:
        if local_copies_only():
            if not Path(self.local_path()).exists():
                raise WorkflowError(f"esap storage: {self.url} was not sent with the job")
            return
        from esap_executors.errors import EsapError
        from esap_executors.staging.cache import default_cache

        try:
            default_cache().fetch(self.url, Path(self.local_path()))
        except EsapError as exc:
            raise WorkflowError(f"esap storage: {exc}") from None

    def store_object(self) -> None:
        if local_copies_only():  # the submit side stores it when the job's files are back
            return
        from esap_executors.errors import EsapError
        from esap_executors.staging.remote import upload

        local = Path(self.local_path())
        try:
            if local.is_dir():
                for directory, _, names in os.walk(local):
                    for name in sorted(names):
                        path = Path(directory) / name
                        relative = path.relative_to(local).as_posix()
                        upload(path, self.url.rstrip("/") + "/" + urllib.parse.quote(relative))
            else:
                upload(local, self.url)
        except EsapError as exc:
            raise WorkflowError(f"esap storage: {exc}") from None

    def remove(self) -> None:
        if local_copies_only():
            return
        from esap_executors.errors import EsapError
        from esap_executors.staging.remote import remove

        try:
            remove(self.url)
        except EsapError as exc:
            raise WorkflowError(f"esap storage: {exc}") from None

    def _stat(self) -> Any:
        """The URL's HEAD (None when it does not exist); a refused token stops the workflow."""
        from esap_executors.errors import BadInput, EsapError
        from esap_executors.staging.remote import stat

        try:
            return stat(self.url)
        except BadInput:
            return None
        except EsapError as exc:
            raise WorkflowError(f"esap storage: {exc}") from None


def _timestamp(http_date: str | None) -> float:
    if not http_date:
        return 0.0
    try:
        return email.utils.parsedate_to_datetime(http_date).timestamp()
    except (TypeError, ValueError):
        return 0.0
