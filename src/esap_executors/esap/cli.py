"""`esap catalogue list|show|cwl|publish` and `esap sites import --esap URL`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..cli.main import global_options
from ..errors import BadInput, Unreachable
from .catalogue import SOURCES, SoftwareCatalogue
from .codemeta import entry_from_codemeta, read_codemeta, validate
from .cwl_tool import dump, tool_for
from .entries import Entry
from .gateway import CATALOGUES, EsapGateway, platform_token
from .http import GATEWAY_ENV
from .ossr import ZENODO_API, Ossr

OSSR_ENV = "ESAP_OSSR_URL"


def register(subparsers: Any) -> None:
    parents = [global_options()]
    sources = argparse.ArgumentParser(add_help=False)
    sources.add_argument("--esap", metavar="URL", default=os.environ.get(GATEWAY_ENV),
                         help=f"the ESAP API gateway (default: ${GATEWAY_ENV})")
    sources.add_argument("--ossr", metavar="URL", default=os.environ.get(OSSR_ENV) or ZENODO_API,
                         help=f"the Zenodo API holding the OSSR (default: ${OSSR_ENV}, else {ZENODO_API})")
    sources.add_argument("--login", action="store_true",
                         help="send the platform token (esap login) to ESAP from the first request "
                              "(otherwise only when the gateway asks for one)")
    catalogue = subparsers.add_parser("catalogue", parents=parents,
                                      help="ESAP and OSSR software: list, show, as CWL tools")
    commands = catalogue.add_subparsers(dest="catalogue_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", parents=[*parents, sources], help="software entries")
    listing.add_argument("--keyword", help="only entries whose name, description or keywords contain it")
    listing.add_argument("--source", choices=SOURCES, help="one source only (default: both)")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", parents=[*parents, sources], help="one entry, all its metadata")
    show.add_argument("entry", metavar="ENTRY", help="ida/<name>, batch/<name> or ossr/<Zenodo record>")
    show.set_defaults(handler=show_command)

    cwl = commands.add_parser("cwl", parents=[*parents, sources], help="an entry as a CWL CommandLineTool")
    cwl.add_argument("entry", metavar="ENTRY", nargs="?", help="a catalogue entry (or give --codemeta)")
    cwl.add_argument("--codemeta", metavar="FILE", help="a software's own codemeta.json instead of an entry")
    cwl.add_argument("--batch-workflow", metavar="FILE",
                     help="an ESAP batch workflow description (JSON with Parameters.singularity_image)")
    cwl.add_argument("--notebook", metavar="FILE", help="the entry's notebook, read for its papermill parameters")
    cwl.add_argument("--image", help="the container image the software runs in (e.g. a Rosetta container)")
    cwl.add_argument("--rosetta-site", metavar="SITE",
                     help="take the image from this Rosetta site's software (registry/image_name:image_tag): "
                          "the software named like the entry, or --rosetta-software")
    cwl.add_argument("--rosetta-software", metavar="NAME", help="with --rosetta-site: the software's name there")
    cwl.add_argument("--rosetta-tag", metavar="TAG", help="with --rosetta-site: the image tag, when it has several")
    cwl.add_argument("-o", "--output", metavar="FILE", help="write the tool here (default: standard output)")
    cwl.set_defaults(handler=cwl_command)

    publish = commands.add_parser("publish", parents=[*parents, sources],
                                  help="every runnable entry as a CWL tool in a folder")
    publish.add_argument("--out", metavar="DIR", default="cwl/esap", help="the folder (default: cwl/esap)")
    publish.set_defaults(handler=publish_command)

    sites = subparsers.choices.get("sites")
    if sites is not None:  # `esap sites import`: an action of the existing `esap sites` command
        sites.add_argument("action", nargs="?", choices=["import"],
                           help="import: print sites.yaml entries for an ESAP gateway's facilities (--esap URL)")
        sites.add_argument("--esap", metavar="URL", default=os.environ.get(GATEWAY_ENV),
                           help=f"with import: the ESAP API gateway (default: ${GATEWAY_ENV})")
        listing_handler = sites.get_default("handler")

        def sites_handler(args: argparse.Namespace) -> int:
            if getattr(args, "action", None) == "import":
                return import_sites_command(args)
            return int(listing_handler(args))

        sites.set_defaults(handler=sites_handler)

    from .basket_cli import register as register_basket

    register_basket(subparsers)


def _catalogue(args: argparse.Namespace) -> SoftwareCatalogue:
    gateway = EsapGateway(args.esap, token=platform_token, login=args.login) if args.esap else None
    return SoftwareCatalogue(gateway, Ossr(args.ossr))


def _notes(notes: list[str]) -> None:
    for note in notes:
        print(f"esap: note: {note}", file=sys.stderr)


def list_command(args: argparse.Namespace) -> int:
    listing = _catalogue(args).search(args.source, args.keyword)
    _notes(listing.notes)
    if args.json:
        print(json.dumps([entry.summary() for entry in listing.entries], indent=2))
        return 0
    print(f"{'ENTRY':<40} {'KIND':<10} NAME")
    for entry in listing.entries:
        print(f"{entry.id:<40} {entry.kind:<10} {entry.name}")
    return 0


def show_command(args: argparse.Namespace) -> int:
    entry = _catalogue(args).find(args.entry)
    print(json.dumps(entry.summary(), indent=2))
    return 0


def cwl_command(args: argparse.Namespace) -> int:
    if sum(bool(given) for given in (args.entry, args.codemeta, args.batch_workflow)) != 1:
        raise BadInput("give one of ENTRY, --codemeta FILE, --batch-workflow FILE", field="cwl")
    if args.rosetta_site and args.image:
        raise BadInput("give --image or --rosetta-site, not both", field="--rosetta-site")
    if (args.rosetta_software or args.rosetta_tag) and not args.rosetta_site:
        raise BadInput("--rosetta-software and --rosetta-tag need --rosetta-site SITE", field="--rosetta-site")
    entry = _entry_for_cwl(args)
    tool = tool_for(entry)
    text = dump(tool, entry.id)
    if args.output:
        _write_whole(Path(args.output), text)
        print(f"esap: wrote {args.output} ({entry.id}: {entry.name})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _entry_for_cwl(args: argparse.Namespace) -> Entry:
    from dataclasses import replace

    if args.codemeta:
        path = Path(args.codemeta)
        codemeta = read_codemeta(path)
        validate(codemeta, str(path))
        entry = entry_from_codemeta(codemeta)
    elif args.batch_workflow:
        from .batch_workflow import entry_from_batch_workflow

        entry = entry_from_batch_workflow(Path(args.batch_workflow))
    else:
        entry = _catalogue(args).find(args.entry)
        if entry.source == "ossr" and entry.codemeta is None:
            raise BadInput(f"{entry.id} ({entry.name}) has no codemeta.json in its Zenodo record: "
                           "its software cannot be described", field="ENTRY")
    if args.image:
        entry = replace(entry, image=args.image)
    elif args.rosetta_site:
        from ..sites import Catalogue
        from .site_images import image_on_site

        software = args.rosetta_software or entry.name
        entry = replace(entry, image=image_on_site(Catalogue.load(getattr(args, "sites", None)), args.rosetta_site,
                                                   software, args.rosetta_tag))
    if args.notebook:
        from .notebook import with_notebook

        entry = with_notebook(entry, Path(args.notebook))
    return entry


def _write_whole(path: Path, text: str) -> None:
    """All or nothing: a temporary file beside the target, renamed over it."""
    if path.is_dir():
        raise BadInput("is a directory", source=str(path), field="--output")
    if not path.parent.is_dir():
        raise BadInput("its folder does not exist", source=str(path), field="--output")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        stream.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def publish_command(args: argparse.Namespace) -> int:
    from .publish import publish

    listing = _catalogue(args).search()
    _notes(listing.notes)
    if args.esap and listing.notes:  # an ESAP catalogue read only in part must not replace a published one
        raise Unreachable("ESAP's catalogue was read only in part (see the note above): nothing published")
    index = publish(listing.entries, Path(args.out))
    for entry_id, reason in sorted(index["skipped"].items()):
        print(f"esap: skipped {entry_id}: {reason}", file=sys.stderr)
    print(f"esap: published {len(index['published'])} tools to {args.out} "
          f"({len(index['skipped'])} entries skipped; see {args.out}/index.yaml)", file=sys.stderr)
    return 0


def import_sites_command(args: argparse.Namespace) -> int:
    from ..sites import Catalogue
    from .facilities import import_facilities, render

    if not args.esap:
        raise BadInput(f"give --esap URL (or set {GATEWAY_ENV})", field="--esap")
    gateway = EsapGateway(args.esap, token=platform_token)
    facilities = [facility for catalogue in CATALOGUES for facility in gateway.facilities(catalogue)]
    existing = set(Catalogue.load(args.sites).names())
    sys.stdout.write(render(import_facilities(facilities, existing), gateway.base))
    return 0
