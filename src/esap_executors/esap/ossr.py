"""The OSSR: records of the Zenodo community escape2020 and each record's codemeta.json (esap.md §7).

The Zenodo records API is spoken directly: eossr 2.3.1 installs and works, but its searches go to a
module-level zenodo.org URL with no parameter for another one (a mirror, a test server), and its
pagination asks for an aggregation first; eossr is used for what it owns, the OSSR's codemeta rules.
"""

from __future__ import annotations

import html
import re
from dataclasses import replace
from typing import Any

import requests

from ..errors import BadInput, Unreachable
from .codemeta import NOTEBOOK_KEYWORD, entry_from_codemeta
from .entries import NOTEBOOK, SOFTWARE, Entry, Person, as_tuple
from .http import get_json

ZENODO_API = "https://zenodo.org/api/"
COMMUNITY = "escape2020"
PAGE_SIZE = 25  # Zenodo's limit for anonymous requests
MAX_PAGES = 40


class Ossr:
    def __init__(self, api_url: str = ZENODO_API, *, session: requests.Session | None = None) -> None:
        if not api_url.startswith(("http://", "https://")):
            raise BadInput(f"not an http(s) URL: {api_url!r}", field="--ossr")
        self.api = api_url.rstrip("/")
        self._session = session or requests.Session()

    def records(self) -> list[dict[str, Any]]:
        """Every software record of the community (all pages)."""
        found: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            params = {"communities": COMMUNITY, "type": "software", "q": "", "size": PAGE_SIZE, "page": page}
            data = get_json(self._session, f"{self.api}/records", what="the OSSR (Zenodo)", params=params)
            hits = data.get("hits", {}).get("hits", []) if isinstance(data, dict) else []
            found.extend(hit for hit in hits if isinstance(hit, dict))
            total = data.get("hits", {}).get("total", 0) if isinstance(data, dict) else 0
            if len(hits) < PAGE_SIZE or len(found) >= _total(total):
                break
        return found

    def record(self, record_id: str) -> dict[str, Any]:
        if not record_id.isdigit():
            raise BadInput(f"unknown entry ossr/{record_id}: OSSR ids are Zenodo record numbers", field="ENTRY")
        try:
            data = get_json(self._session, f"{self.api}/records/{record_id}", what="the OSSR (Zenodo)")
        except Unreachable as exc:
            if " 404 " in str(exc) or " 410 " in str(exc):
                raise BadInput(f"unknown entry ossr/{record_id}", field="ENTRY") from exc
            raise
        communities = [c.get("id") for c in data.get("metadata", {}).get("communities", []) if isinstance(c, dict)]
        if COMMUNITY not in communities:
            raise BadInput(f"unknown entry ossr/{record_id}: Zenodo record {record_id} is not in the OSSR "
                           f"(community {COMMUNITY})", field="ENTRY")
        return dict(data)

    def codemeta(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """The record's codemeta.json (the one nearest the root), None when it has none."""
        links = [f.get("links", {}).get("self") for f in record.get("files", []) or []
                 if isinstance(f, dict) and str(f.get("key", "")).rsplit("/", 1)[-1] == "codemeta.json"]
        links = [link for link in links if link]
        if not links:
            return None
        data = get_json(self._session, min(links, key=len), what=f"codemeta.json of Zenodo record {record.get('id')}")
        return data if isinstance(data, dict) else None

    def entries(self) -> list[Entry]:
        return [self.entry(record) for record in self.records()]

    def entry(self, record: dict[str, Any]) -> Entry:
        metadata = record.get("metadata", {})
        record_id = str(record.get("id"))
        title = str(metadata.get("title") or f"Zenodo record {record_id}")
        description = plain_text(str(metadata.get("description") or ""))
        doi = record.get("doi") or metadata.get("doi")
        identifier = f"https://doi.org/{doi}" if doi else None
        codemeta = self.codemeta(record)
        if codemeta is not None:
            entry = entry_from_codemeta(codemeta, entry_id=f"ossr/{record_id}", source="ossr", name=title,
                                        description=description, identifier=identifier)
            # the record's own keywords count too: the OSSR marks notebooks there (jupyter-notebook)
            keywords = tuple(dict.fromkeys([*entry.keywords, *as_tuple(metadata.get("keywords"))]))
            kind = NOTEBOOK if NOTEBOOK_KEYWORD in keywords else entry.kind
            return replace(entry, keywords=keywords, kind=kind)
        creators = tuple(Person(name=str(c.get("name", "")), orcid=_orcid(c.get("orcid")))
                         for c in metadata.get("creators", []) if isinstance(c, dict) and c.get("name"))
        license_id = (metadata.get("license") or {}).get("id") if isinstance(metadata.get("license"), dict) else None
        return Entry(id=f"ossr/{record_id}", source="ossr", name=title, description=description, kind=SOFTWARE,
                     keywords=as_tuple(metadata.get("keywords")), authors=creators, license=license_id,
                     identifier=identifier, version=metadata.get("version"))


def _total(value: Any) -> int:
    if isinstance(value, dict):  # some Zenodo versions: {"value": N}
        value = value.get("value", 0)
    return int(value or 0)


def _orcid(value: Any) -> str | None:
    return f"https://orcid.org/{value}" if value else None


def plain_text(description: str) -> str:
    """Zenodo descriptions are HTML: tags dropped, entities decoded, whitespace folded."""
    text = re.sub(r"<[^>]+>", " ", description)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()
