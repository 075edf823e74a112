"""A codemeta.json read into an Entry, and the OSSR's validity rules (through eossr)."""

from __future__ import annotations

import csv
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .entries import NOTEBOOK, SOFTWARE, Entry, Person, as_tuple, slug, split_keywords

NOTEBOOK_KEYWORD = "jupyter-notebook"  # how the OSSR marks notebooks (ESAP wiki, Add-a-Jupyter-Notebook)


def read_codemeta(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}", source=str(path)) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(f"not JSON: {exc.msg}", source=str(path), line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise BadInput("a codemeta.json is a JSON object", source=str(path))
    return data


def validate(codemeta: dict[str, Any], source: str) -> None:
    """The OSSR's rules: eossr's crosswalk table (required and known keys per codemeta version) and @type.

    eossr 2.3.1's own Codemeta.validate() cannot run on Python 3.11 (it asks importlib.resources for
    the files of a module, which 3.12 first allows), so its table is read here and applied the same way.
    """
    from eossr.metadata.codemeta import codemeta_version_from_context

    if codemeta.get("@type") != "SoftwareSourceCode":
        raise BadInput(f"invalid codemeta: @type is {codemeta.get('@type')!r}, not SoftwareSourceCode", source=source)
    if "@context" not in codemeta:
        raise BadInput("invalid codemeta: no @context", source=source)
    try:
        version = codemeta_version_from_context(codemeta["@context"])
    except ValueError as exc:
        raise BadInput(f"invalid codemeta: unknown @context {codemeta['@context']!r}", source=source) from exc
    column = f"codemeta-{version}"
    rows = _crosswalk()
    known = {row[column] for row in rows if row.get(column)}
    unknown = sorted(key for key in codemeta if not key.startswith("@") and key not in known)
    if unknown:
        raise BadInput(f"invalid codemeta: unknown keys: {', '.join(unknown)}", source=source)
    required = [row[column] for row in rows if row.get("OSSR Requirement Level") == "required" and row.get(column)]
    missing = [key for key in required if key not in codemeta]
    if missing:
        raise BadInput(f"invalid codemeta: required keys missing: {', '.join(missing)}", source=source)


def _crosswalk() -> list[dict[str, str]]:
    table = files("eossr.metadata").joinpath("schema/escape_codemeta_crosswalk.csv").read_text()
    lines = [line for line in table.splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter=";"))


def persons(value: Any) -> tuple[Person, ...]:
    people = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    found = []
    for person in people:
        if not isinstance(person, dict):
            continue
        name = " ".join(str(person.get(key, "")).strip() for key in ("givenName", "familyName")).strip()
        name = name or str(person.get("name", "")).strip()
        if not name:
            continue
        identifier = str(person.get("@id", "") or person.get("identifier", ""))
        orcid = identifier if "orcid.org/" in identifier else None
        found.append(Person(name=name, orcid=orcid, email=person.get("email") or None))
    return tuple(found)


def repository_url(codemeta: dict[str, Any]) -> str | None:
    url = str(codemeta.get("codeRepository") or "").strip()
    if url.startswith("git+"):  # npm-style "git+https://..."
        url = url[4:]
    return url or None


def license_of(codemeta: dict[str, Any]) -> str | None:
    value = codemeta.get("license")
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("@id") or value.get("name")
    return str(value) if value else None


def entry_from_codemeta(
    codemeta: dict[str, Any], *, entry_id: str | None = None, source: str = "codemeta",
    name: str | None = None, description: str | None = None, identifier: str | None = None,
) -> Entry:
    keywords = split_keywords(codemeta.get("keywords"))
    title = name or str(codemeta.get("name") or "").strip()
    return Entry(
        id=entry_id or f"codemeta/{slug(title)}",
        source=source,
        name=title,
        description=description if description is not None else str(codemeta.get("description") or ""),
        kind=NOTEBOOK if NOTEBOOK_KEYWORD in keywords else SOFTWARE,
        repository=repository_url(codemeta),
        keywords=keywords,
        authors=persons(codemeta.get("author")),
        runtime_platform=as_tuple(codemeta.get("runtimePlatform")),
        programming_language=as_tuple(codemeta.get("programmingLanguage")),
        license=license_of(codemeta),
        identifier=identifier or (str(codemeta["identifier"]) if codemeta.get("identifier") else None),
        version=str(codemeta.get("softwareVersion") or codemeta.get("version") or "") or None,
        memory=_text(codemeta.get("memoryRequirements")),
        processors=_text(codemeta.get("processorRequirements")),
        codemeta=codemeta,
    )


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value).strip() or None if value is not None else None
