"""Parsing of a site's `policy:` and `credentials:` blocks (filled in by the auth work)."""

from __future__ import annotations

from typing import Any


def parse_policy(block: Any, source: str, line: int, field: str) -> Any:
    return block


def parse_credentials(block: Any, source: str, line: int, field: str) -> Any:
    return block
