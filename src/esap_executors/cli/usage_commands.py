"""`esap usage`: CPU and memory each finished job used, against its request."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..formats.printable import escaped
from ..sites import Catalogue
from ..stores import open_store
from ..tracker import tracker_for
from ..usage import LOW_SHARE as LOW
from ..usage import JobUsage, usage_of
from .arguments import add_id_argument, job_or_run
from .main import global_options

SETTLE_S = 10.0  # jobs that just ended: how long to wait for the site's accounting of them


def register(subparsers: Any) -> None:
    usage = subparsers.add_parser(
        "usage", parents=[global_options()],
        help="CPU and memory finished jobs used, against their requests",
    )
    add_id_argument(usage, "a run id, or a job id (or the scheduler's id)")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(handler=usage_command)


def usage_command(args: argparse.Namespace) -> int:
    store = open_store()
    catalogue = Catalogue.load(args.sites)
    records = job_or_run(store, args.id, prefix=args.prefix)
    with tracker_for(store, catalogue) as tracker:  # jobs that ended since the last look count too
        records = tracker.refresh(records)
    rows = usage_of(store, catalogue, records, settle_s=SETTLE_S)
    if args.json:
        print(json.dumps([_as_dict(row) for row in rows], indent=2))
        return 0
    print(f"{'ID':<22} {'SITE':<16} {'NAME':<20} {'CORES':>5} {'WALL':>8} {'CPU':>8} {'CPU-EFF':>7} "
          f"{'MEM-PEAK':>9} {'MEM-REQ':>8} {'MEM-EFF':>7}")
    for row in rows:
        r, u = row.record, row.usage
        print(f"{r.job_id:<22} {r.site:<16} {escaped(r.name)[:20]:<20} {r.spec.cores:>5} "
              f"{_seconds(u.wall_s if u else None):>8} {_seconds(u.cpu_s if u else None):>8} "
              f"{_share(row.cpu_efficiency):>7} {_mib(u.max_memory_mib if u else None):>9} "
              f"{_mib(r.spec.memory_mib):>8} {_share(row.memory_efficiency):>7}")
    _advice(rows)
    return 0


def _advice(rows: list[JobUsage]) -> None:
    unaccounted = [row for row in rows if row.usage is None]
    if unaccounted:
        print(f"esap: {len(unaccounted)} job(s) without an account of their usage "
              "(not ended, or the site keeps none)")
    low_cpu = [row for row in rows if row.cpu_efficiency is not None and row.cpu_efficiency < LOW
               and row.record.spec.cores > 1]
    low_memory = [row for row in rows if row.memory_efficiency is not None and row.memory_efficiency < LOW]
    if low_cpu:
        print(f"esap: {len(low_cpu)} job(s) used less than {LOW:.0%} of their cores: ask for fewer")
    if low_memory:
        print(f"esap: {len(low_memory)} job(s) used less than {LOW:.0%} of their memory: ask for less")


def _as_dict(row: JobUsage) -> dict[str, Any]:
    r, u = row.record, row.usage
    return {
        "id": r.job_id, "run": r.run_id, "name": r.name, "site": r.site, "native_id": r.native_id,
        "state": r.state.value, "cores": r.spec.cores, "memory_mib": r.spec.memory_mib,
        "wall_s": u.wall_s if u else None, "cpu_s": u.cpu_s if u else None,
        "max_memory_mib": u.max_memory_mib if u else None,
        "cpu_efficiency": row.cpu_efficiency, "memory_efficiency": row.memory_efficiency,
    }


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}s" if value < 600 else f"{value / 60:.0f}m"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value}M"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
