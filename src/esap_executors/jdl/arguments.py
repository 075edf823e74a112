"""Arguments: one string the worker's shell splits (quotes group words, backslash escapes).

A plain string becomes argv directly (shlex, POSIX rules). A string using shell syntax
(`$VAR`, redirections, pipes, globs, `;`) runs through /bin/sh on the worker, as on the grid.
"""

from __future__ import annotations

import shlex

SHELL_SYNTAX = frozenset("$`;|&<>()*?[]~#\n")


def needs_shell(arguments: str) -> bool:
    return any(char in SHELL_SYNTAX for char in arguments)


def split_arguments(arguments: str) -> list[str]:
    """Words of a plain Arguments string; ValueError on unbalanced quotes."""
    return shlex.split(arguments, comments=False, posix=True)


def shell_command(program: str, arguments: str) -> str:
    """One shell line running `program` with the Arguments text as the worker's shell reads it."""
    return f"{shlex.quote(program)} {arguments}".rstrip()
