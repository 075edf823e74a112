"""`esap stage get|put|ls|stat`: a storage by hand, through the same layer, tokens and checksums as jobs."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .main import global_options


def register(subparsers: Any) -> None:
    stage = subparsers.add_parser(
        "stage", parents=[global_options()],
        help="copy files to and from storage URLs (https://, davs://) with the platform token, like gfal-copy",
    )
    commands = stage.add_subparsers(dest="stage_command", metavar="ACTION", required=True)
    get = commands.add_parser("get", parents=[global_options()], help="download URL to PATH (a file or directory)")
    get.add_argument("url")
    get.add_argument("path")
    get.add_argument("--checksum", metavar="ALG:HEX", help="expected checksum, e.g. adler32:0a1b2c3d")
    get.set_defaults(handler=get_command)
    put = commands.add_parser("put", parents=[global_options()],
                              help="upload PATH to URL (a URL ending in / takes the file's name)")
    put.add_argument("path")
    put.add_argument("url")
    put.add_argument("--checksum", metavar="ALG:HEX", help="expected checksum of PATH")
    put.set_defaults(handler=put_command)
    ls = commands.add_parser("ls", parents=[global_options()], help="list a WebDAV collection")
    ls.add_argument("url")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=ls_command)
    stat = commands.add_parser("stat", parents=[global_options()],
                               help="size, ETag and the checksums the storage offers for URL")
    stat.add_argument("url")
    stat.add_argument("--json", action="store_true")
    stat.set_defaults(handler=stat_command)


def get_command(args: argparse.Namespace) -> int:
    from ..staging.remote import fetch

    target = Path(args.path)
    if target.is_dir() or args.path.endswith("/"):
        name = Path(urllib.parse.unquote(urllib.parse.urlsplit(args.url).path.rstrip("/"))).name
        if not name:
            raise BadInput(f"{args.url}: names no file", field="url")
        target = target / name
    done = fetch(args.url, target, checksum=args.checksum)
    print(f"{args.url} -> {done.path} ({done.size} bytes, adler32:{done.adler32}"
          f"{', ' + str(done.attempts) + ' attempts' if done.attempts > 1 else ''})")
    return 0


def put_command(args: argparse.Namespace) -> int:
    from ..staging.remote import upload

    done = upload(args.path, args.url, checksum=args.checksum)
    print(f"{args.path} -> {done.url} ({done.size} bytes, adler32:{done.adler32})")
    return 0


def ls_command(args: argparse.Namespace) -> int:
    from ..staging.remote import listdir

    entries = listdir(args.url)
    if args.json:
        print(json.dumps([{"url": e.url, "name": e.name, "size": e.size, "etag": e.etag, "is_dir": e.is_dir,
                           "modified": e.modified} for e in entries], indent=1))
        return 0
    for entry in entries:
        size = "-" if entry.size is None else str(entry.size)
        print(f"{size:>14}  {entry.modified or '-':<25}  {entry.name}{'/' if entry.is_dir else ''}")
    return 0


def stat_command(args: argparse.Namespace) -> int:
    from ..staging.remote import stat

    info = stat(args.url)
    if args.json:
        print(json.dumps({"url": info.url, "size": info.size, "etag": info.etag, "modified": info.modified,
                          "checksums": [str(c) for c in info.checksums]}, indent=1))
        return 0
    print(f"url:       {info.url}\nsize:      {info.size if info.size is not None else '-'}\n"
          f"etag:      {info.etag or '-'}\nmodified:  {info.modified or '-'}\n"
          f"checksums: {' '.join(str(c) for c in info.checksums) or '-'}")
    return 0
