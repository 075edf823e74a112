"""`esap basket list` and `esap basket config KEY` (the basket as Snakemake config values).

`esap basket config KEY -o basket.yaml && snakemake --executor esap --configfile basket.yaml`: exit 2
and no file when an item cannot be used, so `&&` stops the workflow before anything is submitted.
The plugin's `--esap-inputs-from-basket KEY[=FILE]` writes the same file while Snakemake reads its
command line (docs/basket-snakemake.md says why it still needs `--configfile FILE`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .basket_items import GATEWAY_ENV, RUCIO_ENV

if TYPE_CHECKING:
    from .basket import BasketInput

def add_source_options(parser: Any, *, prefix: str = "") -> None:
    """Where the basket is read (--esap URL) and where Rucio DIDs are resolved (--rucio URL)."""
    gateway = f"--{prefix}gateway" if prefix else "--esap"
    parser.add_argument(gateway, dest="basket_gateway", metavar="URL", default=os.environ.get(GATEWAY_ENV),
                        help=f"the ESAP API gateway holding the basket (default: ${GATEWAY_ENV})")
    parser.add_argument(f"--{prefix}rucio", dest="basket_rucio", metavar="URL", default=os.environ.get(RUCIO_ENV),
                        help=f"the Rucio server that resolves basket DIDs to replicas (default: ${RUCIO_ENV})")


def basket_inputs(args: argparse.Namespace, field: str = "--inputs-from-basket") -> list[BasketInput]:
    from .basket import inputs_from_basket  # requests: imported only when a basket is read
    from .gateway import platform_token

    return inputs_from_basket(args.basket_gateway, platform_token, rucio_url=args.basket_rucio, field=field)


def register(subparsers: Any) -> None:
    from ..cli.main import global_options

    basket = subparsers.add_parser("basket", parents=[global_options()],
                                   help="the ESAP shopping basket as workflow inputs")
    commands = basket.add_subparsers(dest="basket_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", parents=[global_options()],
                                  help="every item with the URL it is fetched from (exit 2 if one cannot be)")
    add_source_options(listing)
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=list_command)
    config = commands.add_parser("config", parents=[global_options()],
                                 help="the basket's URLs as a Snakemake config value (for --configfile)")
    config.add_argument("key", metavar="KEY", help="the config key the Snakefile reads (config[KEY])")
    config.add_argument("-o", "--output", metavar="FILE", help="write here (default: standard output)")
    add_source_options(config)
    config.set_defaults(handler=config_command)


def list_command(args: argparse.Namespace) -> int:
    inputs = basket_inputs(args, field="basket")
    if args.json:
        print(json.dumps([{"item": i.item.position, "name": i.item.name, "archive": i.item.archive,
                           "url": i.url, "filename": i.filename} for i in inputs], indent=2))
        return 0
    for found in inputs:
        print(f"{found.item.position}\t{found.item.name}\t{found.url}")
    return 0


def config_command(args: argparse.Namespace) -> int:
    from .basket_config import check_key, config_text, write_config  # PyYAML, only for this command

    check_key(args.key, field="KEY")
    inputs = basket_inputs(args, field="basket")
    if args.output:
        write_config(Path(args.output), args.key, inputs, field="--output")
        print(f"esap: {len(inputs)} basket input(s) written to {args.output} as config[{args.key!r}]",
              file=sys.stderr)
    else:
        sys.stdout.write(config_text(args.key, inputs))
    return 0
