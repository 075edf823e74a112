"""Argument types the `esap` commands share: ids matched exactly, bounded counts and intervals."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from ..errors import BadInput
from ..formats.printable import shown
from ..ids import checked_id
from ..store import JobRecord, Store

MAX_LISTED = 100_000  # `--limit`: more rows than any terminal shows, well within SQLite's integers


def exact_id(text: str) -> str:
    try:
        return checked_id(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(exc.detail) from None


def add_id_argument(parser: argparse.ArgumentParser, helptext: str, *, optional: bool = False,
                    name: str = "id", metavar: str | None = None) -> None:
    extra: dict[str, Any] = {"nargs": "?"} if optional else {}
    parser.add_argument(name, type=exact_id, help=helptext + "; matched exactly", metavar=metavar, **extra)
    parser.add_argument("--prefix", action="store_true",
                        help="ID is the start of a job id, matched when it starts exactly one")


def job_or_run(store: Store, ident: str, *, prefix: bool = False) -> list[JobRecord]:
    """The jobs of the run `ident`, or the one job it names."""
    return store.jobs_of_run(ident) or [store.job(ident, prefix=prefix)]


def whole_number(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a whole number") from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not between {minimum} and {maximum}")
        return value

    return parse


def seconds_between(minimum: float, maximum: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not a number of seconds") from None
        if not math.isfinite(value) or not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{shown(text)} is not between {minimum:g} and {maximum:g} seconds")
        return value

    return parse
