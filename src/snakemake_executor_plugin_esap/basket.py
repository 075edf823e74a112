"""`--esap-inputs-from-basket KEY[=FILE]`: the user's ESAP basket as config[KEY], through `--configfile FILE`.

An executor plugin has no way to add config values: Snakemake evaluates the Snakefile, where
`config` is read, before it creates the executor (docs/basket-snakemake.md, with the lines of
Snakemake's code). What does run early enough is the setting's documented `parse_func`: Snakemake
turns the plugin's settings into their dataclass (cli.py, args_to_api) before it builds its
ConfigSettings, which is when `--configfile` files are read. So the setting reads the basket there,
writes FILE, and Snakemake's own `--configfile FILE` makes it config. An item that cannot be used
stops Snakemake right there: one line, exit 2, nothing read, nothing submitted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NoReturn

from esap_executors.esap.basket_config import BasketConfig

OPTION = "--esap-inputs-from-basket"


def read_into_config_file(text: str) -> BasketConfig:
    """The setting's parse_func: KEY[=FILE] -> the basket's URLs written to FILE as config[KEY]."""
    from esap_executors.errors import BadInput, EsapError
    from esap_executors.esap.basket import inputs_from_basket
    from esap_executors.esap.basket_config import parse_spec, write_config
    from esap_executors.esap.basket_items import GATEWAY_ENV, RUCIO_ENV
    from esap_executors.esap.gateway import platform_token

    try:
        key, path = parse_spec(text, field=OPTION)
        gateway = os.environ.get(GATEWAY_ENV)
        if not gateway:
            raise BadInput(f"no ESAP gateway: set ${GATEWAY_ENV} to the gateway holding the basket", field=OPTION)
        inputs = inputs_from_basket(gateway, platform_token, rucio_url=os.environ.get(RUCIO_ENV) or None,
                                    field=OPTION)
        written = write_config(path, key, inputs, field=OPTION)
    except EsapError as exc:
        _stop(str(exc), exc.exit_code)
    print(f"esap: {written.count} basket input(s) written to {_shown(path)} as config[{key!r}]", file=sys.stderr)
    return written


def unparse(value: BasketConfig) -> str:
    return str(value)


def check_read(value: BasketConfig | str | None, configfiles: list[Path]) -> None:
    """The file was written and Snakemake read it (else config[KEY] is not the basket): BadInput."""
    from esap_executors.errors import BadInput

    if value is None:
        return
    if not isinstance(value, BasketConfig):  # settings built in Python, not from a command line or profile
        raise BadInput("is read while Snakemake parses its command line or profile; from Python, write the "
                       "config with esap_executors.esap.basket_config and pass it as a configfile", field=OPTION)
    if value.path not in {Path(p).absolute() for p in configfiles}:
        raise BadInput(f"{_shown(value.path)} holds config[{value.key!r}] but Snakemake did not read it: "
                       f"add --configfile {_shown(value.path)}", field=OPTION)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _stop(message: str, code: int) -> NoReturn:
    # Snakemake's main() turns every exception into exit 1 with its traceback-like report; a bad
    # basket is bad input: one line and exit 2 (3 for a refused token), before Snakemake reads anything
    print(f"snakemake --executor esap: {message}", file=sys.stderr)
    raise SystemExit(code)
