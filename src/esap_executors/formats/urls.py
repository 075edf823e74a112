"""Locations: a URL with a scheme (https://host/path) or a local path."""

from __future__ import annotations

import re

# RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme_of(location: str) -> str | None:
    """'HTTPS://host/x' -> 'https'; a local path (even one containing '://') -> None."""
    match = _SCHEME.match(location)
    return match.group(1).lower() if match else None
