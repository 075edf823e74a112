"""Text from users (names, ids, expressions) as it may be printed on a terminal: control
characters escaped, long values shortened, so a name cannot move the cursor or hide a line."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the Unicode bidi overrides that can reorder what a terminal shows
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SURROGATES = re.compile("[\ud800-\udfff]")  # bytes that were not UTF-8 (surrogateescape)


def escaped(text: str) -> str:
    """`text` with control characters as visible escapes (\\x1b, \\n, \\u202e)."""
    text = _SURROGATES.sub(lambda m: f"\\x{ord(m.group()) & 0xff:02x}", text)
    return _CONTROLS.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
    if char in named:
        return named[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shortened(text: str, limit: int = 80) -> str:
    """At most about `limit` characters: the start, the end and how much was left out."""
    if len(text) <= limit:
        return text
    keep = max(limit // 2 - 10, 4)
    return f"{text[:keep]}…({len(text) - 2 * keep} characters)…{text[-keep:]}"


def shown(text: str, limit: int = 80) -> str:
    """A user's value quoted for a message: escaped, shortened, in single quotes."""
    return "'" + shortened(escaped(text), limit) + "'"


def is_utf8(text: str) -> bool:
    """False for command-line text that held bytes that are not UTF-8 (surrogateescape)."""
    return _SURROGATES.search(text) is None
