"""`esap report` and `esap status --watch` on a 10,000-job run.

    python benchmarks/report_speed.py [--jobs 10000] [--no-append]

The run is the one benchmarks/core_overhead.py builds for its RSS part (N trivial jobs `true`
on the built-in local site, in a private state directory). Then, each as a user runs it (a new
`esap` process, Python start-up included): `esap report RUN --json`, `--html FILE` (with the
file's size) and `--ro-crate DIR`, each with the local site's accounting query. For `--watch`,
the CPU time of one refresh (store read + table) over the 10,000 jobs, in-process, when jobs
changed (all re-read) and while it waits (the store unchanged), as a share of one core at the
default 2 s interval. Results go to benchmarks/RESULTS.md, section "report".
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from results_file import append_to_section

HERE = Path(__file__).resolve().parent
SECTION = "## report"
INTRO = ("`python benchmarks/report_speed.py`: `esap report` of the 10,000-job run that\n"
         "benchmarks/core_overhead.py builds (local site), and the CPU of one `esap status --watch` refresh.")
REPORT_TARGET_S = 5.0
HTML_TARGET_MB = 5.0
WATCH_TARGET_SHARE = 0.02
WATCH_INTERVAL_S = 2.0

BUILD = """
import sys
sys.path.insert(0, {here!r})
import core_overhead
run, states = core_overhead.submit_and_wait(int(sys.argv[1]), "bench-report")
print(run.run_id, states)
"""

WATCH = """
import sys, time
from esap_executors.cli.watch import render, take_snapshot
from esap_executors.sqlite_store import open_store
from rich.console import Console
store = open_store()
run_id, key, front, created = store.run(sys.argv[1])
console = Console(file=open("/dev/null", "w"), width=160)
snapshot = take_snapshot(store, None, run_id, front, created)
start = time.process_time()
for _ in range(10):  # something changed: the jobs are read again
    console.print(render(take_snapshot(store, None, run_id, front, created)))
changed = (time.process_time() - start) / 10
start = time.process_time()
for _ in range(10):  # waiting: nothing changed in the store
    snapshot = take_snapshot(store, None, run_id, front, created, snapshot)
    console.print(render(snapshot))
print(changed, (time.process_time() - start) / 10)
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of the command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def measure(jobs: int) -> dict[str, Any]:
    esap = str(Path(sys.executable).parent / "esap")
    with tempfile.TemporaryDirectory(prefix="esap-bench-report-") as state:
        env = dict(os.environ, ESAP_STATE_DIR=state, ESAP_POLL_START="0.5", ESAP_POLL_FLOOR="0.2",
                   ESAP_POLL_CEILING="2", XDG_CONFIG_HOME=state)
        env.pop("ESAP_SITES", None)
        start = time.monotonic()
        built = subprocess.run([sys.executable, "-c", BUILD.format(here=str(HERE)), str(jobs)], env=env,
                               capture_output=True, text=True, check=True)
        build_s = time.monotonic() - start
        run_id, states = built.stdout.strip().splitlines()[-1].split(" ", 1)
        html = Path(state) / "report.html"
        results: dict[str, Any] = {"jobs": jobs, "states": states, "build_s": round(build_s, 1)}
        for name, extra in (("json", ["--json"]), ("html", ["--html", str(html)]),
                            ("crate", ["--ro-crate", str(Path(state) / "crate")])):
            wall, cpu = timed([esap, "report", run_id, *extra], env)
            results[f"{name}_s"], results[f"{name}_cpu_s"] = round(wall, 2), round(cpu, 2)
        results["html_mb"] = round(html.stat().st_size / 1e6, 2)
        watch = subprocess.run([sys.executable, "-c", WATCH, run_id], env=env, capture_output=True, text=True,
                               check=True)
        changed_cpu, waiting_cpu = map(float, watch.stdout.strip().splitlines()[-1].split())
        results["watch_changed_cpu_ms"] = round(1000 * changed_cpu, 1)
        results["watch_waiting_cpu_ms"] = round(1000 * waiting_cpu, 1)
        results["watch_core_share"] = round(waiting_cpu / WATCH_INTERVAL_S, 4)
        results["watch_changed_core_share"] = round(changed_cpu / WATCH_INTERVAL_S, 4)
    return results


def entry(r: dict[str, Any]) -> str:
    def meets(ok: bool) -> str:
        return "meets" if ok else "MISSES"

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    return "\n".join([
        f"### {when}", "",
        f"{r['jobs']} jobs ({r['states']}), built in {r['build_s']} s; load average {load:.2f} on "
        f"{os.cpu_count()} cores (other work shares the machine).", "",
        "| measure | value | target |", "|---|---:|---|",
        f"| `esap report RUN --json`, wall (CPU) | **{r['json_s']} s** ({r['json_cpu_s']} s) | <= {REPORT_TARGET_S} s "
        f"({meets(r['json_s'] <= REPORT_TARGET_S)}) |",
        f"| `esap report RUN --html FILE`, wall (CPU) | **{r['html_s']} s** ({r['html_cpu_s']} s) | "
        f"<= {REPORT_TARGET_S} s ({meets(r['html_s'] <= REPORT_TARGET_S)}) |",
        f"| HTML size | **{r['html_mb']} MB** | <= {HTML_TARGET_MB} MB ({meets(r['html_mb'] <= HTML_TARGET_MB)}) |",
        f"| `esap report RUN --ro-crate DIR`, wall (CPU) | {r['crate_s']} s ({r['crate_cpu_s']} s) | |",
        f"| `esap status --watch`: CPU per refresh, jobs changed (all re-read) | {r['watch_changed_cpu_ms']} ms "
        f"({r['watch_changed_core_share']:.2%} of a core every {WATCH_INTERVAL_S:.0f} s) | |",
        f"| `--watch` while it waits (store unchanged): CPU per refresh | {r['watch_waiting_cpu_ms']} ms | |",
        f"| `--watch` share of a core while it waits ({WATCH_INTERVAL_S:.0f} s refreshes) | "
        f"**{r['watch_core_share']:.2%}** | < {WATCH_TARGET_SHARE:.0%} "
        f"({meets(r['watch_core_share'] < WATCH_TARGET_SHARE)}) |",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    results = measure(args.jobs)
    print(json.dumps(results))
    text = entry(results)
    print(text)
    if not args.no_append:
        append_to_section(SECTION, text, INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
