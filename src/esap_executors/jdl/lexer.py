"""JDL text -> statements (`Name = expression`) with the line each one starts on.

ClassAd parsers report no line numbers, so the statements are found here first: `#` comments
(not ClassAd syntax) are blanked, `//` and `/* */` too (kept out of the statement scan), and the
body is split on top-level `;`. Each expression is then parsed by classad2 on its own, which
localises a syntax error to its line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import BadInput

_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
_NEXT_ASSIGNMENT = re.compile(r"\n\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)")
_ADJACENT_STRINGS = re.compile(r'"\s*\n\s*"')
_OPENERS = {"(": ")", "[": "]", "{": "}"}


@dataclass(frozen=True)
class Statement:
    name: str
    expression: str  # comments blanked, as written otherwise
    line: int  # 1-based line of the attribute name


def blank_comments(text: str, source: str) -> str:
    """Replace `#`, `//` and `/* */` comments by spaces, keeping every newline (line numbers)."""
    out: list[str] = []
    i = 0
    line = 1
    length = len(text)
    while i < length:
        char = text[i]
        if char == '"':
            end, line = _string_end(text, i, line, source)
            out.append(text[i:end])
            i = end
            continue
        if char == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            end = length if end < 0 else end
            out.append(" " * (end - i))
            i = end
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise BadInput("a /* comment is never closed with */", source=source, line=line)
            block = text[i:end + 2]
            out.append("".join("\n" if c == "\n" else " " for c in block))
            line += block.count("\n")
            i = end + 2
            continue
        if char == "\n":
            line += 1
        out.append(char)
        i += 1
    return "".join(out)


def _string_end(text: str, start: int, line: int, source: str) -> tuple[int, int]:
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            return i + 1, line
        if char == "\n":
            raise BadInput("a string is not closed before the end of the line (missing \")",
                           source=source, line=line)
        i += 1
    raise BadInput("a string is never closed (missing \")", source=source, line=line)


def _unwrap(text: str, source: str) -> tuple[str, int]:
    """The body without the optional enclosing `[ ... ]`; returns (body, offset into text)."""
    stripped = text.strip()
    if not stripped.startswith("["):
        return text, 0
    start = text.index("[")
    depth = 0
    i = start - 1
    in_string = False
    while i + 1 < len(text):
        i += 1
        char = text[i]
        if in_string:
            if char == "\\":
                i += 1
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                if text[i + 1:].strip():
                    line = text.count("\n", 0, i) + 1
                    raise BadInput("text after the closing ] of the job description", source=source, line=line)
                return text[start + 1:i], start + 1
    raise BadInput("the [ that opens the job description is never closed with ]",
                   source=source, line=text.count("\n", 0, start) + 1)


def split_statements(text: str, source: str) -> list[Statement]:
    """Statements of a JDL text (comments already blanked)."""
    body, offset = _unwrap(text, source)
    statements: list[Statement] = []
    stack: list[tuple[str, int]] = []
    start = 0
    i = 0
    in_string = False
    while i <= len(body):
        char = body[i] if i < len(body) else ";"
        if in_string:
            if char == "\\":
                i += 2
                continue
            if char == '"':
                in_string = False
            i += 1
            continue
        if char == '"':
            in_string = True
        elif char in _OPENERS:
            stack.append((char, i))
        elif char in ")]}":
            if not stack or _OPENERS[stack[-1][0]] != char:
                raise BadInput(f"unexpected {char!r}", source=source, line=_line(text, offset + i))
            stack.pop()
        elif char == ";" and not stack:
            chunk = body[start:i] if i < len(body) else body[start:]
            if chunk.strip():
                statements.append(_statement(chunk, text, offset + start, source))
            start = i + 1
        elif i == len(body) and stack:
            opener, where = stack[-1]
            raise BadInput(f"{opener!r} is never closed with {_OPENERS[opener]!r}",
                           source=source, line=_line(text, offset + where))
        i += 1
    return statements


def _line(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _statement(chunk: str, text: str, chunk_start: int, source: str) -> Statement:
    lead = len(chunk) - len(chunk.lstrip())
    line = _line(text, chunk_start + lead)
    found = _NAME.match(chunk)
    if not found:
        words = chunk.strip().split()
        shown = words[0] if words else chunk.strip()
        raise BadInput(f"expected 'Name = value;' but found {shown!r}", source=source, line=line)
    name = found.group(1)
    expression = chunk[found.end():]
    if not expression.strip():
        raise BadInput(f"{name} has no value", source=source, line=line)
    following = _NEXT_ASSIGNMENT.search(expression)
    if following:
        before = expression[:following.start()]
        last_line = _line(text, chunk_start + found.end() + len(before.rstrip()))
        raise BadInput(f"missing ';' after the value of {name} (before {following.group(1)} =)",
                       source=source, line=last_line)
    joined = _ADJACENT_STRINGS.search(expression)
    if joined and "{" in expression:
        where = _line(text, chunk_start + found.end() + joined.start())
        raise BadInput(f"missing ',' between two items of the list {name}", source=source, line=where)
    return Statement(name=name, expression=expression.strip(), line=line)
