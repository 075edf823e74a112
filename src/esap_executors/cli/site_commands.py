"""`esap sites` and `esap match`."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from ..backends import capabilities_of
from ..errors import BadInput
from ..job import JobSpec
from ..matchmaking import match, no_match_message, site_ad
from ..sites import Catalogue, Site
from .main import global_options


def register(subparsers: Any) -> None:
    sites = subparsers.add_parser("sites", parents=[global_options()], help="list the sites of the catalogue")
    sites.add_argument("--json", action="store_true", help="machine-readable output")
    sites.add_argument("--discover", action="store_true", help="ask each site's scheduler for its attributes")
    sites.set_defaults(handler=list_sites)

    matcher = subparsers.add_parser(
        "match", parents=[global_options()], help="which sites satisfy a job's Requirements, ranked"
    )
    matcher.add_argument("jobfile", nargs="?", help="a JDL file (its Requirements and Rank)")
    matcher.add_argument("--requirements", help="ClassAd expression; other.X is the site's attribute X")
    matcher.add_argument("--rank", help="ClassAd expression ranking the matching sites")
    matcher.add_argument("--json", action="store_true")
    matcher.set_defaults(handler=match_sites)


def list_sites(args: argparse.Namespace) -> int:
    catalogue = Catalogue.load(args.sites)
    rows = []
    for name in catalogue.names():
        site = catalogue.get(name)
        row: dict[str, Any] = {
            "name": name,
            "backend": site.backend,
            "shared_filesystem": site.shared_filesystem,
            "container_runtime": site.container.runtime,
            "description": site.description,
            "source": site.where(),
            "capabilities": _capabilities(site),
        }
        if args.discover:
            ad = site_ad(site)
            row["attributes"] = {key: _plain(ad.eval(key)) for key in ad.keys()}
        else:
            row["attributes"] = dict(site.attributes)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    print(f"{'SITE':<20} {'BACKEND':<10} {'SHARED-FS':<10} {'CONTAINERS':<11} DESCRIPTION")
    for row in rows:
        print(f"{row['name']:<20} {row['backend']:<10} {'yes' if row['shared_filesystem'] else 'no':<10} "
              f"{row['container_runtime'] or '-':<11} {row['description']}")
        if args.discover:
            for key, value in sorted(row["attributes"].items()):
                print(f"    {key} = {value}")
    return 0


def _capabilities(site: Site) -> dict[str, Any]:
    """What the site's backend does there (from the catalogue; no scheduler is asked)."""
    capabilities = capabilities_of(site)
    values = {key: sorted(value) if isinstance(value, frozenset) else value
              for key, value in dataclasses.asdict(capabilities).items()}
    values["transfers_files"] = capabilities.transfers_files
    return values


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def match_sites(args: argparse.Namespace) -> int:
    requirements, rank = args.requirements, args.rank
    if args.jobfile:
        from ..jdl.translate import load

        description = load(args.jobfile)
        requirements = requirements or description.requirements
        rank = rank or description.rank
    if not requirements:
        raise BadInput("give a job file or --requirements", field="match")
    catalogue = Catalogue.load(args.sites)
    result = match(catalogue, requirements, rank, spec=JobSpec(argv=("true",)))
    if args.json:
        print(json.dumps({
            "requirements": result.requirements,
            "matched": [{"site": site.name, "rank": value} for site, value in result.matched],
            "rejected": result.rejected,
        }, indent=2))
        return 0 if result.matched else 1
    if not result.matched:
        print(no_match_message(result))
        return 1
    for position, (site, value) in enumerate(result.matched, 1):
        print(f"{position}. {site.name} (rank {value:g})")
    for name, terms in sorted(result.rejected.items()):
        print(f"rejected {name}: fails {'; '.join(terms)}")
    return 0
