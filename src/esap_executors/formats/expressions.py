"""ClassAd expressions as users write them (Requirements, Rank, JDL attributes): bounded in
size and nesting before classad2 parses them, so a huge or deeply nested one is one clear line
instead of a stack overflow or minutes of work."""

from __future__ import annotations

import re

from ..errors import BadInput
from .printable import shown

MAX_EXPRESSION_CHARS = 16 << 10  # a Requirements of a few hundred terms fits
MAX_NESTING = 64
MAX_CLASSAD_INTEGER = 2**63 - 1
_STRING = re.compile(r'"(?:\\.|[^"\\])*"')
_INTEGER = re.compile(r"(?<![\w.])\d+(?![\w.])")


def check_expression_size(text: str, *, field: str, source: str | None = None, line: int | None = None) -> None:
    if len(text) > MAX_EXPRESSION_CHARS:
        raise BadInput(f"the expression is {len(text)} characters long (at most {MAX_EXPRESSION_CHARS})",
                       field=field, source=source, line=line)
    depth = deepest = 0
    quote = False
    escaped = False
    for char in text:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quote = False
        elif char == '"':
            quote = True
        elif char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}":
            depth -= 1
    if deepest > MAX_NESTING:
        raise BadInput(f"the expression nests {deepest} levels of brackets (at most {MAX_NESTING})",
                       field=field, source=source, line=line)
    for literal in _INTEGER.finditer(_STRING.sub('""', text)):
        if int(literal.group()) > MAX_CLASSAD_INTEGER:  # classad2 would silently wrap it (to 0)
            raise BadInput(f"{shown(literal.group(), 30)} is larger than a ClassAd integer holds "
                           f"({MAX_CLASSAD_INTEGER})", field=field, source=source, line=line)


def parse_classad_expression(text: str, *, field: str) -> object:
    """The parsed expression (classad2.ExprTree); BadInput naming `field` when it is not one."""
    import classad2

    check_expression_size(text, field=field)
    if not text.strip():
        raise BadInput("is empty: give a ClassAd expression or leave the option out", field=field)
    try:
        return classad2.ExprTree(text)
    except Exception:
        raise BadInput(f"not a valid ClassAd expression: {shown(text, 80)}", field=field) from None
