"""`esap runs`: the recent runs of every front, with how many of their jobs are in each state."""

from __future__ import annotations

import argparse
import json
import logging
import time
from typing import Any

from ..sites import Catalogue
from ..store import Store
from ..stores import open_store
from ..tracker import tracker_for
from .arguments import MAX_LISTED, whole_number
from .main import global_options

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    runs = subparsers.add_parser("runs", parents=[global_options()],
                                 help="recent runs (esap, esap-cwltool, Snakemake, JDL) and their jobs' states")
    runs.add_argument("--limit", type=whole_number(1, MAX_LISTED), default=20, help="how many runs, newest first")
    runs.add_argument("--json", action="store_true")
    runs.set_defaults(handler=runs_command)


def runs_command(args: argparse.Namespace) -> int:
    store = open_store()
    runs = store.latest_runs(args.limit)
    _refresh_live_jobs(store, Catalogue.load(args.sites), [run_id for run_id, *_ in runs])
    states = store.run_states([run_id for run_id, *_ in runs])
    if args.json:
        print(json.dumps([
            {"run": run_id, "front": front, "key": key, "created": created, "jobs": states[run_id]}
            for run_id, key, front, created in runs
        ], indent=2))
        return 0
    print(f"{'RUN':<14} {'FRONT':<10} {'CREATED':<20} {'JOBS':>5}  STATES")
    for run_id, _key, front, created in runs:
        counts = states[run_id]
        summary = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        print(f"{run_id:<14} {front:<10} {when:<20} {sum(counts.values()):>5}  {summary or '-'}")
    return 0


def _refresh_live_jobs(store: Store, catalogue: Catalogue, run_ids: list[str]) -> None:
    """Ask the sites about the jobs not final yet, one query per run and site; a site that
    cannot be reached leaves its jobs as last recorded."""
    live = store.live_jobs(run_ids)
    with tracker_for(store, catalogue) as tracker:
        for site_name in sorted({r.site for r in live}):
            try:
                tracker.refresh([r for r in live if r.site == site_name])
            except Exception as exc:
                log.warning("site %s not asked about its jobs: %s", site_name, exc)
