"""`esap profiles list|install`: the Snakemake profiles esap-hpc, esap-htc and esap-local.

pip cannot write to ~/.config/snakemake, so the profiles ship as package data and this
command copies them where Snakemake looks for `--profile NAME`.
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from ..errors import BadInput
from .main import global_options

PROFILE_FILE = "config.yaml"


def register(subparsers: Any) -> None:
    profiles = subparsers.add_parser(
        "profiles", parents=[global_options()], help="Snakemake profiles for the esap executor"
    )
    actions = profiles.add_subparsers(dest="profiles_action", metavar="ACTION")
    lister = actions.add_parser("list", parents=[global_options()], help="list the bundled profiles")
    lister.set_defaults(handler=list_profiles)
    installer = actions.add_parser(
        "install", parents=[global_options()],
        help="copy the profiles where Snakemake finds them (`snakemake --profile esap-hpc`)",
    )
    installer.add_argument("names", nargs="*", metavar="NAME", help="profiles to install (default: all)")
    installer.add_argument("--dir", metavar="DIR",
                           help="target directory (default: $XDG_CONFIG_HOME/snakemake, ~/.config/snakemake)")
    installer.add_argument("--force", action="store_true", help="replace profiles changed since installed")
    installer.set_defaults(handler=install_profiles)
    profiles.set_defaults(handler=lambda args: _usage(profiles))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def bundled_profiles() -> dict[str, Traversable]:
    root = resources.files("esap_executors").joinpath("data", "snakemake_profiles")
    return {
        entry.name: entry
        for entry in sorted(root.iterdir(), key=lambda e: e.name)
        if entry.is_dir() and entry.joinpath(PROFILE_FILE).is_file()
    }


def snakemake_config_dir() -> Path:
    """Where Snakemake looks up `--profile NAME` for this user (platformdirs' user_config_dir)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "snakemake"


def profile_site(profile: Traversable) -> str:
    for line in profile.joinpath(PROFILE_FILE).read_text().splitlines():
        if line.startswith("esap-site:"):
            return line.split(":", 1)[1].split("#", 1)[0].strip()
    return "?"


def list_profiles(args: argparse.Namespace) -> int:
    target = snakemake_config_dir()
    for name, profile in bundled_profiles().items():
        installed = target / name / PROFILE_FILE
        where = f"installed in {installed.parent}" if installed.is_file() else "not installed"
        print(f"{name:12} site {profile_site(profile):16} {where}")
    return 0


def install_profiles(args: argparse.Namespace) -> int:
    available = bundled_profiles()
    names = args.names or list(available)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise BadInput(f"unknown profile(s) {', '.join(unknown)} (known: {', '.join(available)})",
                       field="profiles install")
    target = Path(args.dir).expanduser() if args.dir else snakemake_config_dir()
    kept = 0
    for name in names:
        text = available[name].joinpath(PROFILE_FILE).read_text()
        destination = target / name / PROFILE_FILE
        if destination.is_file() and destination.read_text() != text and not args.force:
            print(f"{name}: kept {destination} (changed since installed; --force replaces it)")
            kept += 1
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text)
        print(f"{name}: installed {destination} (snakemake --profile {name})")
    return 1 if kept else 0
