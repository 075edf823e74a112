"""IVOA DataLink 1.1: the `#this` link of a links document (a VOTable with TABLEDATA rows).

The document's results table has the columns ID, access_url, service_def, error_message,
semantics, ... ; the row whose semantics is `#this` is the dataset itself.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

THIS = "#this"


class DatalinkError(ValueError):
    pass


def this_link(document: bytes) -> str:
    """The access_url of the first `#this` row; raises DatalinkError with the reason."""
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as exc:
        raise DatalinkError(f"the DataLink answer is not a VOTable ({exc})") from None
    table = _first(root, "TABLE")
    if table is None:
        raise DatalinkError("the DataLink answer has no TABLE")
    columns = [(field.get("name") or field.get("ID") or "").lower() for field in _all(table, "FIELD")]
    for needed in ("access_url", "semantics"):
        if needed not in columns:
            raise DatalinkError(f"the DataLink table has no {needed} column")
    errors = []
    for row in _all(table, "TR"):
        cells = [(cell.text or "").strip() for cell in _all(row, "TD")]
        values = dict(zip(columns, cells, strict=False))
        if values.get("semantics") != THIS:
            continue
        if values.get("access_url"):
            return values["access_url"]
        if values.get("error_message"):
            errors.append(values["error_message"])
    if errors:
        raise DatalinkError(f"the DataLink service says: {errors[0]}")
    raise DatalinkError("the DataLink document has no #this link")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _all(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element.iter() if _local(child.tag) == name]


def _first(element: ElementTree.Element, name: str) -> ElementTree.Element | None:
    found = _all(element, name)
    return found[0] if found else None
