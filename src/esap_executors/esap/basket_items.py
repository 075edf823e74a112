"""What an item of the user's ESAP shopping basket points at, read from its `item_data` alone.

ESAP's GUI saves an item as `{"archive": <query app>, "record": <the row the query app returned>}`
(the accounts app stores it as a JSON string); API clients may save the row itself. The rows of
the gateway's query app (esap/query/api/services) differ by archive:

- IVOA TAP / ObsCore (`ivoa`, `astron_vo`): a dict with `url` (the dataset's url_field, normally
  `access_url`) or the raw ObsCore columns `access_url` + `access_format`; `access_format`
  `...;content=datalink` makes the URL a DataLink document (resolved later to its `#this` link);
- the VO registry (`vo_reg`): the GUI keeps the row as a list of the selected columns' values
  (`select_fields`, `access_url` in ESAP's fixtures): its one http(s) value is the access URL;
- Apertif/ALTA (`apertif`): a dict with `url` (the WebDAV download URL);
- Rucio (`rucio`): a DID row `{"scope", "name", "type", ...}` -> `scope:name`;
- Zenodo: a record with `files[].links.self` (or `.download`): every file is an input;
- direct: a bare URL string, or a dict with `url`, `access_url`, `download_url` or `datalink`.
Anything else (Zooniverse projects, the LOFAR demo rows, catalogue rows) points at no file.
No network here: turning references into fetchable URLs is basket.py's job.
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from dataclasses import dataclass
from typing import Any, Literal

from ..formats.urls import scheme_of
from .http import GATEWAY_ENV as GATEWAY_ENV

Kind = Literal["url", "datalink", "rucio"]
URL: Kind = "url"
DATALINK: Kind = "datalink"
RUCIO: Kind = "rucio"

FETCHABLE_SCHEMES = ("http", "https")
RUCIO_ENV = "ESAP_RUCIO_URL"
_URL_KEYS = ("url", "access_url", "download_url", "accessURL", "access_uri")
_NAME_KEYS = ("name", "title", "obs_title", "obs_id", "PID", "key", "target_name", "display_name")


@dataclass(frozen=True)
class BasketItem:
    position: int  # 1-based, in the basket's order
    data: Any  # item_data, decoded

    @property
    def archive(self) -> str | None:
        return str(self.data["archive"]) if isinstance(self.data, dict) and "archive" in self.data else None

    @property
    def record(self) -> Any:
        if isinstance(self.data, dict) and "record" in self.data and "archive" in self.data:
            return self.data["record"]
        return self.data

    @property
    def name(self) -> str:
        """How the user recognises the item: its name or title, else its file's name, else its place."""
        record = self.record
        if isinstance(record, dict):
            for key in _NAME_KEYS:
                value = record.get(key)
                if isinstance(value, str | int) and str(value).strip():
                    return str(value).strip()
        for reference in _candidate_urls(record):
            base = file_name(reference)
            if base:
                return base
        return f"item {self.position}"

    def label(self) -> str:
        where = f", {self.archive}" if self.archive else ""
        return f'"{self.name}" (item {self.position}{where})'


@dataclass(frozen=True)
class Reference:
    kind: Kind
    value: str  # a URL (url, datalink) or a Rucio DID scope:name
    name: str | None = None  # the file's own name when the reference carries one (Zenodo key, DID name)


class Unmappable(ValueError):
    """The item points at nothing this project can fetch; the message says why."""


def decode_item_data(raw: Any) -> Any:
    """ESAP's serializer stores json.dumps(item) in a JSONField: the API returns a JSON string."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith(("{", "[", '"')):
            try:
                return json.loads(text)
            except ValueError:
                return raw
    return raw


def references_of(item: BasketItem) -> list[Reference]:
    """The files an item points at; raises Unmappable."""
    record = item.record
    archive = (item.archive or "").lower()
    if isinstance(record, str):
        return [_url_reference(record)]
    if isinstance(record, list):
        urls = [value for value in record if isinstance(value, str) and scheme_of(value.strip()) in FETCHABLE_SCHEMES]
        if len(urls) == 1:
            return [Reference(URL, urls[0].strip())]
        if not urls:
            raise Unmappable("the row has no http(s) URL among its values")
        raise Unmappable(f"the row has {len(urls)} URLs and no column names: which one is the data is unknown")
    if not isinstance(record, dict):
        raise Unmappable("the item is neither a row nor a URL")
    if "datalink" in record and isinstance(record["datalink"], str):
        return [_url_reference(record["datalink"], kind=DATALINK)]
    did = _rucio_did(record, archive)
    if did is not None:
        return [Reference(RUCIO, did, name=did.split(":", 1)[1])]
    files = _zenodo_files(record)
    if files:
        return files
    for key in _URL_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            fmt = str(record.get("access_format") or record.get("content_type") or "")
            return [_url_reference(value, kind=DATALINK if is_datalink_type(fmt) else URL)]
    raise Unmappable(f"no URL, DataLink or Rucio DID in this {archive or 'basket'} item")


def is_datalink_type(content_type: str) -> bool:
    return "content=datalink" in content_type.replace(" ", "").lower()


def file_name(url: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlparse(url).path).rstrip("/")
    base = posixpath.basename(path)
    return "" if base in ("", ".", "..") else base


def _url_reference(value: str, kind: Kind = URL) -> Reference:
    url = value.strip()
    scheme = scheme_of(url)
    if scheme not in FETCHABLE_SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise Unmappable(f"{url!r} is not an http(s) URL ({shown})")
    return Reference(kind, url)


def _rucio_did(record: dict[str, Any], archive: str) -> str | None:
    did = record.get("did")
    if isinstance(did, str) and ":" in did:
        return did.strip()
    scope, name = record.get("scope"), record.get("name")
    if isinstance(scope, str) and isinstance(name, str) and scope and name and (archive == "rucio" or "type" in record):
        return f"{scope}:{name}"
    return None


def _zenodo_files(record: dict[str, Any]) -> list[Reference]:
    files = record.get("files")
    if not isinstance(files, list):
        return []
    found = []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        links = entry.get("links")
        if not isinstance(links, dict):
            continue
        url = links.get("self") or links.get("download") or links.get("content")
        if isinstance(url, str):
            reference = _url_reference(url)
            key = entry.get("key") or entry.get("filename")
            found.append(Reference(URL, reference.value, name=str(key) if key else None))
    return found


def _candidate_urls(record: Any) -> list[str]:
    if isinstance(record, str):
        return [record]
    if isinstance(record, list):
        return [v for v in record if isinstance(v, str) and scheme_of(v) in FETCHABLE_SCHEMES]
    if isinstance(record, dict):
        return [str(record[k]) for k in ("datalink", *_URL_KEYS) if isinstance(record.get(k), str)]
    return []
