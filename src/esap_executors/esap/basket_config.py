"""The basket as a Snakemake config file: `{KEY: [URL, ...]}` for `--configfile`.

Written by `esap basket config KEY -o FILE` and by the Snakemake plugin's
`--esap-inputs-from-basket KEY[=FILE]` (snakemake_executor_plugin_esap/basket.py); either way
Snakemake reads it as config[KEY] through its own `--configfile FILE`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from ..errors import BadInput

if TYPE_CHECKING:
    from .basket import BasketInput

DEFAULT_FILE = "esap-basket.yaml"
_CONFIG_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


@dataclass(frozen=True)
class BasketConfig:
    """Where the basket's URLs were written, as config[key]."""

    key: str
    path: Path  # absolute
    count: int

    def __str__(self) -> str:
        return f"{self.key}={self.path}"


def check_key(key: str, field: str) -> str:
    if not _CONFIG_KEY.match(key):
        raise BadInput(f"{key!r} is not a Snakemake config key (a letter or _, then letters, digits, - or _)",
                       field=field)
    return key


def parse_spec(text: str, field: str) -> tuple[str, Path]:
    """KEY or KEY=FILE (FILE default esap-basket.yaml, relative to the working directory)."""
    key, _, file = text.strip().partition("=")
    check_key(key, field)
    if _ and not file.strip():
        raise BadInput(f"{text!r}: no file after '=' (KEY or KEY=FILE)", field=field)
    return key, Path(file.strip() or DEFAULT_FILE).absolute()


def config_text(key: str, inputs: Sequence[BasketInput]) -> str:
    return yaml.safe_dump({key: [found.url for found in inputs]}, sort_keys=False)


def write_config(path: Path, key: str, inputs: Sequence[BasketInput], field: str) -> BasketConfig:
    """Written whole or not at all (a half-written file would be a wrong config)."""
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.write_text(config_text(key, inputs))
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise BadInput(f"cannot write {path}: {exc.strerror}", field=field) from None
    return BasketConfig(key, path, len(inputs))
