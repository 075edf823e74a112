"""ClassAd expressions as users write them (Requirements, Rank, JDL attributes): bounded in
size and nesting before classad2 parses them, so a huge or deeply nested one is one clear line
instead of a stack overflow or minutes of work."""

from __future__ import annotations

from ..errors import BadInput
from .printable import shown

MAX_EXPRESSION_CHARS = 16 << 10  # a Requirements of a few hundred terms fits
MAX_NESTING = 64


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
