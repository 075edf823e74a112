"""A parsed JDL file: the classad2 ad plus where each attribute was written."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import classad2

from ..errors import BadInput
from ..formats.expressions import check_expression_size
from ..textfiles import read_user_text
from .lexer import Statement, blank_comments, split_statements


@dataclass
class JdlDocument:
    source: str  # the file name as the user gave it (for messages)
    directory: Path  # relative InputSandbox entries are relative to it
    ad: classad2.ClassAd
    statements: dict[str, Statement] = field(default_factory=dict)  # lower-case name -> statement

    def __contains__(self, name: str) -> bool:
        return name.lower() in self.statements

    def names(self) -> Iterator[str]:
        return (s.name for s in self.statements.values())

    def line_of(self, name: str) -> int | None:
        statement = self.statements.get(name.lower())
        return statement.line if statement else None

    def bad(self, name: str, message: str) -> BadInput:
        """An error about attribute `name`, pointing at its line."""
        statement = self.statements.get(name.lower())
        shown = statement.name if statement else name
        return BadInput(message, source=self.source, line=self.line_of(name), field=shown)

    def value(self, name: str) -> Any:
        """The evaluated value; None when absent. Undefined or error values are input errors."""
        if name.lower() not in self.statements:
            return None
        value = self.ad.eval(self.statements[name.lower()].name)
        if isinstance(value, classad2.Value):
            written = self.statements[name.lower()].expression
            hint = ("strings are written in double quotes" if written.lstrip().startswith("'")
                    else "a reference to an attribute that is not set?")
            raise self.bad(name, f"the value {self.expression(name)} is {value.name.lower()} ({hint})")
        return value

    def expression(self, name: str) -> str:
        """The expression as classad2 prints it (one line, for messages and matchmaking)."""
        statement = self.statements[name.lower()]
        return " ".join(str(self.ad.lookup(statement.name)).split())


def parse_text(text: str, source: str, directory: Path) -> JdlDocument:
    cleaned = blank_comments(text, source)
    statements = split_statements(cleaned, source)
    by_name: dict[str, Statement] = {}
    for statement in statements:
        earlier = by_name.get(statement.name.lower())
        if earlier is not None:
            raise BadInput(f"{statement.name} is set twice (first on line {earlier.line})",
                           source=source, line=statement.line)
        check_expression_size(statement.expression, field=statement.name, source=source, line=statement.line)
        try:
            classad2.ExprTree(statement.expression)
        except Exception:
            shown = " ".join(statement.expression.split())
            if len(shown) > 60:
                shown = shown[:57] + "..."
            raise BadInput(f"cannot parse the value of {statement.name}: {shown}",
                           source=source, line=statement.line) from None
        by_name[statement.name.lower()] = statement
    body = ";\n".join(f"{s.name} = {s.expression}" for s in statements)
    try:
        ad = classad2.parseOne("[\n" + body + "\n]")
    except Exception:
        raise BadInput("not a valid ClassAd job description", source=source, line=1) from None
    if len(ad.keys()) != len(by_name):
        raise BadInput("not a valid ClassAd job description", source=source, line=1)
    if not by_name:
        raise BadInput("the job description is empty", source=source, line=1)
    return JdlDocument(source=source, directory=directory, ad=ad, statements=by_name)


def parse_file(path: str | Path) -> JdlDocument:
    file = Path(path)
    text = read_user_text(file, what="JDL file")
    return parse_text(text, str(path), file.resolve().parent)
