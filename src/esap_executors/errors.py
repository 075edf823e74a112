"""Errors are values with a message written for the user; the CLI prints them once."""

from __future__ import annotations

from typing import Self


class EsapError(Exception):
    """Base of every error the user should see as one line."""

    exit_code = 1

    def with_prefix(self, prefix: str) -> Self:
        """The same error (same type, same fields: a `status`, a `source`, an exit code) whose
        message starts with `prefix` (e.g. the file and field it concerns)."""
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.args = (f"{prefix}{self}",)
        return copy


class BadInput(EsapError):
    """Malformed input: nothing was submitted. Exit code 2."""

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        self.detail = message
        where = ""
        if source:
            where = source + (f":{line}" if line else "") + ": "
        elif line:
            where = f"line {line}: "
        if field:
            where += f"{field}: "
        super().__init__(where + message)


class Unreachable(EsapError):
    """A site or service could not be reached. Exit code 3."""

    exit_code = 3


class AuthError(EsapError):
    """Authentication failed (platform token or centre credential). Exit code 3."""

    exit_code = 3


class PolicyDenied(EsapError):
    """A site's policy refused the job before submission. Exit code 3."""

    exit_code = 3


class JobFailed(EsapError):
    """A job ended failed or cancelled. Exit code 1."""

    exit_code = 1
