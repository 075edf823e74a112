"""`esap report RUN`: what each job of a run did, as text, JSON, an HTML page or an RO-Crate."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import BadInput
from ..formats.printable import escaped, shown
from ..report import RunReport, collect_report, write_html
from ..sites import Catalogue
from ..stores import open_store
from .arguments import exact_id
from .main import global_options


def register(subparsers: Any) -> None:
    report = subparsers.add_parser(
        "report", parents=[global_options()],
        help="a run's jobs: times, sites, outcome and usage against requests (text, JSON, HTML, RO-Crate)",
    )
    report.add_argument("run", metavar="RUN", type=exact_id, help="a run id (see `esap runs`), matched exactly")
    report.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with a timeline")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--ro-crate", metavar="DIR",
                        help="write a Workflow Run RO-Crate of the run (workflow, inputs and outputs with "
                             "checksums, one action per job) into DIR")
    report.add_argument("--no-accounting", action="store_true",
                        help="only what the store recorded: no accounting query to the sites")
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> int:
    store = open_store()
    if store.run(args.run) is None:
        raise BadInput(f"no run {shown(args.run)} in the state store {store.describe()} (see `esap runs`)", field="RUN")
    catalogue = None if args.no_accounting else Catalogue.load(args.sites)
    report = collect_report(store, args.run, catalogue)
    if args.html:
        try:
            write_html(report, args.html)
        except OSError as exc:
            raise BadInput(f"cannot write {args.html}: {exc.strerror}", field="--html") from None
        print(f"esap: report of {args.run} written to {args.html}", file=sys.stderr)
    if args.ro_crate:
        from ..report.crate import write_crate

        try:
            written = write_crate(report, store.run_metadata(args.run), args.ro_crate)
        except OSError as exc:
            raise BadInput(f"cannot write the RO-Crate into {args.ro_crate}: {exc.strerror}",
                           field="--ro-crate") from None
        print(f"esap: RO-Crate of {args.run} written to {written}", file=sys.stderr)
    if args.json:
        # indented for people; compact (C-encoded, several times faster) into a pipe or file
        print(json.dumps(report.as_dict(), indent=2 if sys.stdout.isatty() else None))
    elif not args.html and not args.ro_crate:
        print_text(report)
    return 0


def print_text(report: RunReport) -> None:
    s = report.summary
    states = ", ".join(f"{n} {state}" for state, n in s.states.items())
    print(f"run {s.run_id} ({s.front}): {s.jobs} jobs, {states or 'none'}")
    print(f"wall time {_seconds(s.wall_s)}; CPU-hours used {_hours(s.cpu_hours_used)}, reserved "
          f"{_hours(s.cpu_hours_reserved)}, requested {_hours(s.cpu_hours_requested)}; CPU efficiency "
          f"{'-' if s.efficiency is None else f'{s.efficiency:.0%}'}")
    print(f"{'ID':<22} {'NAME':<20} {'SITE':<14} {'SCHED-ID':<10} {'STATE':<9} {'EXIT':>4} {'WAITED':>8} "
          f"{'RAN':>8} {'CPU-EFF':>7}  REASON")
    for j in report.jobs:
        waited = None if j.started is None else j.started - j.queued
        eff = "-" if j.cpu_efficiency is None else f"{j.cpu_efficiency:.0%}"
        print(f"{j.job_id:<22} {escaped(j.name)[:20]:<20} {j.site[:14]:<14} {(j.native_id or '-')[:10]:<10} "
              f"{j.state:<9} {'' if j.exit_code is None else j.exit_code:>4} {_seconds(waited):>8} "
              f"{_seconds(j.run_s):>8} {eff:>7}  {escaped(j.reason or '')}")
        for number, segment in enumerate(j.segments, start=1):
            print(f"  segment {number}/{len(j.segments)}: {segment.job_id} {segment.native_id or '-'} "
                  f"{segment.state} (exit {'-' if segment.exit_code is None else segment.exit_code}), "
                  f"ran {_seconds(segment.run_s)}")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
