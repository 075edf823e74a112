"""One shape for software entries from ESAP's IDA and batch catalogues and from the OSSR."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

NOTEBOOK = "notebook"
DESKTOP = "desktop"
CONTAINER = "container"
SOFTWARE = "software"


@dataclass(frozen=True)
class Person:
    name: str
    orcid: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Entry:
    """A software entry. `id` is `<source>/<key>`: ida/<slug>, batch/<slug>, ossr/<record id>."""

    id: str
    source: str  # ida | batch | ossr | codemeta
    name: str
    description: str = ""
    kind: str = SOFTWARE  # notebook | desktop | container | software
    repository: str | None = None
    ref: str = "HEAD"
    filepath: str | None = None
    keywords: tuple[str, ...] = ()
    authors: tuple[Person, ...] = ()
    runtime_platform: tuple[str, ...] = ()
    programming_language: tuple[str, ...] = ()
    license: str | None = None
    identifier: str | None = None  # DOI or other persistent identifier
    version: str | None = None
    image: str | None = None  # container image, when one is known
    memory: str | None = None  # codemeta memoryRequirements
    processors: str | None = None  # codemeta processorRequirements
    parameters: tuple[tuple[str, str, Any], ...] = ()  # notebook parameters: (name, CWL type, default)
    local_notebook: str | None = None  # the notebook file the parameters were read from (--notebook)
    codemeta: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "source": self.source, "name": self.name, "kind": self.kind,
            "description": self.description, "repository": self.repository, "ref": self.ref,
            "filepath": self.filepath, "keywords": list(self.keywords),
            "authors": [{"name": p.name, "orcid": p.orcid} for p in self.authors],
            "runtimePlatform": list(self.runtime_platform), "license": self.license,
            "identifier": self.identifier, "version": self.version, "image": self.image,
            "memoryRequirements": self.memory, "processorRequirements": self.processors,
            "has_codemeta": self.codemeta is not None,
        }
        return data

    def matches(self, keyword: str) -> bool:
        """ESAP ignores `keyword` on workflows/search: the client filters (name, description, keywords)."""
        needle = keyword.lower()
        haystack = [self.name, self.description, *self.keywords]
        return any(needle in text.lower() for text in haystack)


@dataclass(frozen=True)
class Facility:
    catalogue: str  # ida | batch
    name: str
    description: str
    url: str
    facilitytype: str
    runtimeengine: str | None = None


def slug(name: str) -> str:
    """A stable id part from a name: lower case, runs of other characters become one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "entry"


def split_keywords(value: Any) -> tuple[str, ...]:
    """ESAP joins keywords with ', ' (or sends one string); codemeta has a list or a string."""
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(dict.fromkeys(str(item).strip() for item in items if str(item).strip()))


def as_tuple(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, list):
        return tuple(str(item) for item in value if str(item).strip())
    return (str(value),)
