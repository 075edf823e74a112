"""`esap`: run and follow batch jobs on the sites of the catalogue."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..auth.redact import redact
from ..errors import BadInput, EsapError
from ..formats.printable import escaped, is_utf8, shortened

MESSAGE_LIMIT = 600  # characters of one error line: a 100 kB value is not echoed whole
MAX_EXPLANATION_LINES = 20


class OneLineParser(argparse.ArgumentParser):
    """argparse's errors as one line (no usage block): `esap: error: argument --limit: ...`."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {user_text(message)} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def user_text(message: str) -> str:
    """An error message as printed: secrets masked, control characters escaped, bounded; one line,
    but for the indented explanation lines esap writes under some (`  site: fails ...`)."""
    lines = redact(message).split("\n")
    kept = [lines[0]]
    for line in lines[1:]:
        if line.startswith("  ") and len(kept) < MAX_EXPLANATION_LINES:
            kept.append(line)
        else:
            kept[-1] += "\n" + line  # escaped below: an embedded newline cannot start a line
    return "\n".join(shortened(escaped(line), MESSAGE_LIMIT) for line in kept)


def check_invocation(argv: Sequence[str]) -> None:
    """What every command needs before its options are read: text arguments and a working directory."""
    for position, argument in enumerate(argv, 1):
        if not is_utf8(argument):
            raise BadInput(f"argument {position} ({escaped(shortened(argument))}) is not valid UTF-8 text",
                           field="command line")
    try:
        os.getcwd()
    except FileNotFoundError:
        raise BadInput("the current working directory was deleted; cd to an existing directory",
                       field="working directory") from None

COMMAND_MODULES = [
    "esap_executors.cli.site_commands",
    "esap_executors.cli.job_commands",
    "esap_executors.cli.auth_commands",
    "esap_executors.cli.profile_commands",
    "esap_executors.cli.jdl_commands",
    "esap_executors.cli.usage_commands",
    "esap_executors.cli.run_commands",
    "esap_executors.cli.report_commands",
    "esap_executors.cli.stage_commands",
    "esap_executors.esap.cli",  # after site_commands: adds `esap sites import`
    "esap_executors.esap.uws_cli",
]


def global_options() -> argparse.ArgumentParser:
    """--sites and --debug, accepted before or after the subcommand."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--sites", default=argparse.SUPPRESS, metavar="FILE",
                        help="site catalogue (default: $ESAP_SITES, then ~/.config/esap/sites.yaml)")
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug logs")
    return parent


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="esap",
        description="Run batch jobs unattended on ESCAPE computing sites (local, SLURM, HTCondor).",
        parents=[global_options()],
    )
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken install must not silently lose commands
            raise CommandModuleBroken(module_name, exc) from exc
        module.register(subparsers)
    return parser


class CommandModuleBroken(Exception):
    def __init__(self, module_name: str, cause: Exception) -> None:
        super().__init__(f"esap: error: command module {module_name} cannot be imported "
                         f"({type(cause).__name__}: {cause}); the installation is broken")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except CommandModuleBroken as exc:
        if "--debug" in (sys.argv[1:] if argv is None else argv):
            raise
        print(exc, file=sys.stderr)
        return 1
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        check_invocation(arguments)
    except BadInput as exc:
        print(f"esap: error: {user_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(arguments)
    args.sites = getattr(args, "sites", None)
    args.debug = getattr(args, "debug", False)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="esap: %(levelname)s: %(message)s")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        from ..disk_space import full_disk_reported  # imported here: the imports above change often

        with full_disk_reported():
            code: int = handler(args)
        return code
    except EsapError as exc:
        if args.debug:
            raise
        print(f"esap: error: {user_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("esap: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except Exception as exc:
        if args.debug:
            raise
        print(f"esap: internal error: {type(exc).__name__}: {user_text(str(exc))} "
              "(run with --debug for the traceback)",
              file=sys.stderr)
        return 1


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
