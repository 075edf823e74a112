"""Values for the HTCondor submit language, built from lists, never from shell strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import classad2

from ...errors import BadInput

# Characters the submit language (and item data) cannot carry in a value.
FORBIDDEN = ("\n", "\r", "\x1f")


def literal(value: str) -> str:
    """A submit-language value that stays literal: `$(...)` would otherwise be a macro."""
    return value.replace("$", "$(DOLLAR)")


def check_value(value: str, field: str) -> None:
    for char in FORBIDDEN:
        if char in value:
            raise BadInput(
                f"{value!r} contains a line break or control character, which HTCondor cannot "
                "carry; use a script instead",
                field=field,
            )
    if "$$" in value:
        raise BadInput(
            f"{value!r}: HTCondor reads $$ as a value of the machine the job lands on "
            "(a job with one may never start); use a script instead",
            field=field,
        )


def _quote_word(word: str) -> str:
    # new-style quoting: inside "...", a word in '...' keeps its spaces; '' and "" escape
    return "'" + word.replace("'", "''").replace('"', '""') + "'"


def arguments(argv: Sequence[str]) -> str:
    """The `arguments` value for argv in HTCondor's new syntax (one word per element)."""
    for word in argv:
        check_value(word, "argv")
    return literal('"' + " ".join(_quote_word(w) for w in argv) + '"')


def environment(env: Mapping[str, str]) -> str:
    """The `environment` value (new syntax: "NAME='value' ...")."""
    words = []
    for name, value in env.items():
        if not name or "=" in name or any(c.isspace() for c in name):
            raise BadInput(f"{name!r} is not an environment variable name", field="env")
        check_value(value, "env")
        words.append(f"{name}=" + _quote_word(value))
    return literal('"' + " ".join(words) + '"')


def ad_string(value: str) -> str:
    """A ClassAd string literal for a `My.Attr` submit key."""
    check_value(value, "attribute")
    return literal(classad2.quote(value))


def file_list(paths: Sequence[str]) -> str:
    for path in paths:
        check_value(path, "stage")
        if "," in path:
            raise BadInput(f"{path!r}: HTCondor file lists cannot carry a comma", field="stage")
    return literal(", ".join(paths))
