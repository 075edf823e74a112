"""`esap output ID` (a JDL job's output sandbox) and `esap jdl2cwl job.jdl`."""

from __future__ import annotations

import argparse
from typing import Any

from .arguments import add_id_argument
from .main import global_options


def register(subparsers: Any) -> None:
    output = subparsers.add_parser("output", parents=[global_options()],
                                   help="retrieve a JDL job's output sandbox")
    add_id_argument(output, "esap job id (or the scheduler's id)")
    output.add_argument("--dir", help="where to put the files (default: the folder chosen at submission)")
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.set_defaults(handler=_output)

    convert = subparsers.add_parser("jdl2cwl", parents=[global_options()],
                                    help="write a CWL CommandLineTool and job file equivalent to a JDL job")
    convert.add_argument("jdl", help="the .jdl file")
    convert.add_argument("-o", "--output-dir", default=".", help="where to write NAME.cwl and NAME.job.yml")
    convert.set_defaults(handler=_jdl2cwl)


def _output(args: argparse.Namespace) -> int:
    from ..jdl.cli import output_command

    return output_command(args)


def _jdl2cwl(args: argparse.Namespace) -> int:
    from ..jdl.cwl import jdl2cwl_command

    return jdl2cwl_command(args)
