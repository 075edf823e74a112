"""Core overhead on the local site: executor CPU time per job and peak memory.

    python benchmarks/core_overhead.py [--jobs 1000] [--tracked 10000] [--no-append]

Part `cpu`: one run submits N trivial jobs (`true`) to the local site and waits for all.
CPU is counted honestly where it is spent:
  - the executor process (Run API, store, poller thread): getrusage(RUSAGE_SELF);
  - its reaped children (the short-lived process that starts the detached supervisor):
    getrusage(RUSAGE_CHILDREN);
  - the detached supervisor (reparented to init, so in nobody's RUSAGE_CHILDREN): its own
    RUSAGE_SELF, which it records in the state store when it exits (the jobs' own CPU is
    not overhead and is not included).
Part `rss`: one run tracks M jobs through to completion (records in the store, the run's
snapshot, the poller's one query per cycle over all of them); peak RSS of the executor
(ru_maxrss) and of the supervisor (VmHWM, sampled while it runs).

Each part runs in a fresh process with a private state directory. Polling uses the test
settings (start 0.5 s, floor 0.2 s, ceiling 2 s), more frequent than a site's defaults, so
the executor CPU is an upper bound. Results are appended to benchmarks/RESULTS.md, section
"core".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from results_file import append_to_section

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## core"
INTRO = (
    "`python benchmarks/core_overhead.py`: executor CPU time per job for 1,000 trivial jobs on\n"
    "the local site, split into the executor process and the detached supervisor (which runs\n"
    "the jobs; the jobs' own CPU is not counted), and peak RSS while 10,000 jobs are tracked\n"
    "(store records, the run's snapshot, one poll query per cycle over all of them). CPU times\n"
    "include kernel time; creating each job's directory and output files is a large part of it\n"
    "on this machine's filesystem, so that cost is measured on its own for reference."
)
CPU_TARGET_MS = 5.0
RSS_TARGET_MB = 150.0


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def submit_and_wait(count: int, key: str) -> tuple[Any, dict[str, Any]]:
    from esap_executors.job import make_spec
    from esap_executors.runs import JobRequest, Run
    from esap_executors.sites import Catalogue
    from esap_executors.sqlite_store import open_store

    spec = make_spec(["true"])
    requests = [JobRequest(key=f"j{i}", spec=spec, site="local") for i in range(count)]
    run = Run.open(key, catalogue=Catalogue.load(None), store=open_store())
    run.submit(requests)
    final = run.wait(timeout=3600)
    run.close()
    states: dict[str, int] = {}
    for record in final.values():
        states[record.state.value] = states.get(record.state.value, 0) + 1
    return run, states


def supervisors(db_path: Path) -> list[tuple[int | None, float | None]]:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT supervisor_pid, cpu_s FROM local_batches").fetchall()
    finally:
        db.close()
    return [(r[0], r[1]) for r in rows]


def wait_for_supervisors(db_path: Path, timeout: float = 60) -> list[tuple[int | None, float | None]]:
    deadline = time.monotonic() + timeout
    rows = supervisors(db_path)
    while any(cpu is None for _, cpu in rows) and time.monotonic() < deadline:
        time.sleep(0.1)
        rows = supervisors(db_path)
    return rows


def part_cpu(count: int) -> dict[str, Any]:
    import esap_executors.runs  # noqa: F401 - imports are not per-job overhead
    from esap_executors.paths import state_dir

    wall0 = time.monotonic()
    self0, children0 = cpu_seconds(resource.RUSAGE_SELF), cpu_seconds(resource.RUSAGE_CHILDREN)
    _, states = submit_and_wait(count, "bench-cpu")
    executor = cpu_seconds(resource.RUSAGE_SELF) - self0
    starter = cpu_seconds(resource.RUSAGE_CHILDREN) - children0
    wall = time.monotonic() - wall0
    batches = wait_for_supervisors(state_dir() / "state.db")
    supervisor = sum(cpu or 0.0 for _, cpu in batches)
    total = executor + starter + supervisor
    return {
        "file_creation_ms_per_job": round(file_creation_ms(state_dir() / "baseline"), 3),
        "jobs": count,
        "states": states,
        "wall_s": round(wall, 2),
        "executor_cpu_s": round(executor, 3),
        "starter_cpu_s": round(starter, 3),
        "supervisor_cpu_s": round(supervisor, 3),
        "supervisors": len(batches),
        "ms_per_job": round(1000 * total / count, 3),
        "executor_ms_per_job": round(1000 * (executor + starter) / count, 3),
        "supervisor_ms_per_job": round(1000 * supervisor / count, 3),
    }


def file_creation_ms(where: Path, count: int = 500) -> float:
    """Kernel cost of what every job needs on disk: a directory and two output files."""
    start = cpu_seconds(resource.RUSAGE_SELF)
    for i in range(count):
        directory = where / str(i)
        directory.mkdir(parents=True)
        for name in ("esap.out", "esap.err"):
            open(directory / name, "ab").close()  # noqa: SIM115
    return 1000 * (cpu_seconds(resource.RUSAGE_SELF) - start) / count


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def part_rss(count: int) -> dict[str, Any]:
    from esap_executors.paths import state_dir

    db_path = state_dir() / "state.db"
    peak_supervisor = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            try:
                pids = [pid for pid, cpu in supervisors(db_path) if pid and cpu is None]
            except sqlite3.Error:
                continue
            for pid in pids:
                peak_supervisor[0] = max(peak_supervisor[0], vm_hwm_kib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    wall0 = time.monotonic()
    self0 = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    run, states = submit_and_wait(count, "bench-rss")
    executor = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - self0
    tracked = len(run.snapshot())
    wall = time.monotonic() - wall0
    done.set()
    sampler.join()
    supervisor = sum(cpu or 0.0 for _, cpu in wait_for_supervisors(db_path))
    return {
        "jobs": count,
        "tracked": tracked,
        "states": states,
        "wall_s": round(wall, 2),
        "executor_ms_per_job": round(1000 * executor / count, 3),
        "supervisor_ms_per_job": round(1000 * supervisor / count, 3),
        "executor_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "supervisor_peak_rss_mb": round(peak_supervisor[0] / 1024, 1),
        "store_mb": round(sum(p.stat().st_size for p in db_path.parent.glob("state.db*")) / 1e6, 1),
    }


def run_part(part: str, count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="esap-bench-") as state:
        env = dict(os.environ, ESAP_STATE_DIR=state, ESAP_POLL_START="0.5", ESAP_POLL_FLOOR="0.2",
                   ESAP_POLL_CEILING="2")
        env.pop("ESAP_SITES", None)
        env["XDG_CONFIG_HOME"] = state  # the built-in local site, not a user's catalogue
        result = subprocess.run(
            [sys.executable, __file__, "--part", part, "--count", str(count)],
            env=env, capture_output=True, text=True, check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"part {part} failed:\n{result.stdout}\n{result.stderr}")
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def machine() -> str:
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{platform.node()}: {os.cpu_count()} cores ({model}), {ram_gib:.0f} GiB RAM, "
            f"Linux {platform.release()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}")


def states_text(states: dict[str, int]) -> str:
    return ", ".join(f"{count} {state}" for state, count in sorted(states.items()))


def load_average() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def report(cpu: dict[str, Any], rss: dict[str, Any]) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu_ok = "meets" if cpu["ms_per_job"] <= CPU_TARGET_MS else "MISSES"
    rss_peak = max(rss["executor_peak_rss_mb"], rss["supervisor_peak_rss_mb"])
    rss_ok = "meets" if rss_peak <= RSS_TARGET_MB else "MISSES"
    return "\n".join([
        f"### {date}",
        "",
        f"Machine: {machine()}. Local site, built-in (max_cores = {os.cpu_count()}), "
        "jobs `true`, polling start 0.5 s / floor 0.2 s / ceiling 2 s.",
        "",
        "| measure | value | target |",
        "|---|---|---|",
        f"| CPU per job, {cpu['jobs']} jobs (executor + supervisor) | **{cpu['ms_per_job']} ms** "
        f"| <= {CPU_TARGET_MS:g} ms ({cpu_ok}) |",
        f"| of which executor process (+ supervisor starter) | {cpu['executor_ms_per_job']} ms "
        f"({cpu['executor_cpu_s']} s + {cpu['starter_cpu_s']} s) | |",
        f"| of which detached supervisor ({cpu['supervisors']} for the batch) "
        f"| {cpu['supervisor_ms_per_job']} ms ({cpu['supervisor_cpu_s']} s) | |",
        f"| for reference: creating a job's directory and 2 output files | "
        f"{cpu['file_creation_ms_per_job']} ms (kernel, this filesystem) | |",
        f"| wall time for {cpu['jobs']} jobs | {cpu['wall_s']} s ({states_text(cpu['states'])}) | |",
        f"| peak RSS, executor, {rss['tracked']} tracked jobs | **{rss['executor_peak_rss_mb']} MB** "
        f"| <= {RSS_TARGET_MB:g} MB ({rss_ok}) |",
        f"| peak RSS, supervisor of those jobs | {rss['supervisor_peak_rss_mb']} MB | |",
        f"| state store on disk after {rss['jobs']} jobs | {rss['store_mb']} MB | |",
        f"| CPU per job at {rss['jobs']} jobs: executor / supervisor | "
        f"{rss['executor_ms_per_job']} ms / {rss['supervisor_ms_per_job']} ms | |",
        f"| wall time for {rss['jobs']} jobs | {rss['wall_s']} s ({states_text(rss['states'])}) | |",
        f"| load average (1, 5, 15 min) at the end | {load_average()} | |",
        "",
    ])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="trivial jobs for the CPU measure")
    parser.add_argument("--tracked", type=int, default=10000, help="jobs tracked for the RSS measure")
    parser.add_argument("--no-append", action="store_true", help="print, do not append to RESULTS.md")
    parser.add_argument("--part", choices=["cpu", "rss"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "cpu":
        print(json.dumps(part_cpu(args.count)))
        return 0
    if args.part == "rss":
        print(json.dumps(part_rss(args.count)))
        return 0
    cpu = run_part("cpu", args.jobs)
    print("cpu:", json.dumps(cpu), flush=True)
    rss = run_part("rss", args.tracked)
    print("rss:", json.dumps(rss), flush=True)
    entry = report(cpu, rss)
    print(entry)
    if not args.no_append:
        append_to_section(SECTION, entry, INTRO)
    ok = cpu["ms_per_job"] <= CPU_TARGET_MS and max(
        rss["executor_peak_rss_mb"], rss["supervisor_peak_rss_mb"]) <= RSS_TARGET_MB
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
