"""`esap basket list` and `esap basket config KEY` (the basket as Snakemake config values).

Snakemake reads its configuration and builds the DAG before an executor plugin exists, so the
plugin cannot add config values itself: `esap basket config KEY -o basket.yaml` writes them and
`snakemake --executor esap --configfile basket.yaml` reads them (exit 2 and no file when an item
cannot be used, so `&&` stops the workflow before anything is submitted).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import BadInput
from .basket_items import GATEWAY_ENV, RUCIO_ENV

if TYPE_CHECKING:
    from .basket import BasketInput

_CONFIG_KEY = re.compile(r"^[A-Za-z_][\w-]*$")


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
    if not _CONFIG_KEY.match(args.key):
        raise BadInput(f"{args.key!r} is not a Snakemake config key (a letter or _, then letters, digits, - or _)",
                       field="KEY")
    inputs = basket_inputs(args, field="basket")
    text = yaml.safe_dump({args.key: [found.url for found in inputs]}, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text)
        print(f"esap: {len(inputs)} basket input(s) written to {args.output} as config[{args.key!r}]",
              file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
