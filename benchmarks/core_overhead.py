"""Core overhead on the local site: executor CPU time per job and peak memory.

    python benchmarks/core_overhead.py [--jobs 1000] [--tracked 10000] [--no-append]
    python benchmarks/core_overhead.py --engines postgresql://USER@HOST/DB?passfile=F [--jobs 1000]
        [--store-jobs 10000] [--no-append]

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

Part `store` (with --engines): the state store's share of a run of N jobs without running them:
the calls the submitter and the tracker make (job ids and records in batches of 1,000, the
scheduler ids, two state changes of every job with the re-read that follows each, a watch's
read of the run's states after each batch); CPU of the process and, on PostgreSQL, of the
server's backend process of the connection (when the server is on this machine).
--engines URL runs parts `cpu` and `store` on SQLite and on the PostgreSQL server of URL (a
fresh schema, dropped afterwards) and appends the comparison to section "core on PostgreSQL".

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
    from esap_executors.stores import open_store

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


def queue_db() -> Path:
    """The SQLite file of the local backend's queue: state.db, or local-queue.db beside a server's store."""
    from esap_executors.paths import state_dir

    return state_dir() / ("local-queue.db" if os.environ.get("ESAP_STATE_URL") else "state.db")


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
    batches = wait_for_supervisors(queue_db())
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


STORE_BATCH = 1000


def backend_cpu_s(store: Any) -> float | None:
    """CPU time of the server process serving the store's connection (PostgreSQL on this machine)."""
    connect = getattr(store, "connect", None)
    if connect is None or not hasattr(store, "url"):
        return None
    pid = connect().execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def part_store(count: int) -> dict[str, Any]:
    from esap_executors.job import make_spec
    from esap_executors.states import JobState, JobStatus
    from esap_executors.store import JobRecord
    from esap_executors.stores import open_store

    store = open_store()
    spec = make_spec(["true"])
    run_id = "rbench0store"
    server0 = backend_cpu_s(store)
    wall0, self0 = time.monotonic(), cpu_seconds(resource.RUSAGE_SELF)
    phases: dict[str, float] = {}

    def phase(name: str, started: float) -> None:
        phases[name] = round(phases.get(name, 0.0) + time.monotonic() - started, 3)

    store.ensure_run(run_id, "bench-store", "bench")
    for first in range(0, count, STORE_BATCH):
        size = min(STORE_BATCH, count - first)
        t = time.monotonic()
        ids = store.new_job_ids(run_id, size)
        now = time.time()
        store.add_jobs([JobRecord(job_id=i, run_id=run_id, key=f"j{first + n}", name="true", site="local",
                                  native_id=None, state=JobState.QUEUED, spec=spec, location="/w", created=now,
                                  updated=now)
                        for n, i in enumerate(ids)])
        store.set_native_ids([(i, str(first + n)) for n, i in enumerate(ids)])
        phase("submit", t)
        t = time.monotonic()
        store.job_states_of_run(run_id)
        phase("watch", t)
    for state in (JobState.RUNNING, JobState.COMPLETED):
        records = store.live_jobs([run_id])
        for first in range(0, len(records), STORE_BATCH):
            chunk = [r.job_id for r in records[first:first + STORE_BATCH]]
            t = time.monotonic()
            store.update_states([(i, JobStatus(state, exit_code=0 if state.is_final else None)) for i in chunk])
            store.jobs_by_ids(chunk)
            phase("poll", t)
            t = time.monotonic()
            store.job_states_of_run(run_id)
            phase("watch", t)
    t = time.monotonic()
    final = store.jobs_of_run(run_id)
    phase("read run", t)
    executor = cpu_seconds(resource.RUSAGE_SELF) - self0
    wall = time.monotonic() - wall0
    server1 = backend_cpu_s(store)
    states: dict[str, int] = {}
    for record in final:
        states[record.state.value] = states.get(record.state.value, 0) + 1
    return {
        "jobs": count,
        "states": states,
        "wall_s": round(wall, 2),
        "phases_s": phases,
        "executor_cpu_s": round(executor, 3),
        "server_cpu_s": None if server0 is None or server1 is None else round(server1 - server0, 3),
        "store": store.describe(),
    }


def run_part(part: str, count: int, state_url: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="esap-bench-") as state:
        env = dict(os.environ, ESAP_STATE_DIR=state, ESAP_POLL_START="0.5", ESAP_POLL_FLOOR="0.2",
                   ESAP_POLL_CEILING="2")
        env.pop("ESAP_SITES", None)
        env.pop("ESAP_STATE_URL", None)
        if state_url:
            env["ESAP_STATE_URL"] = state_url
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


ENGINES_SECTION = "## core on PostgreSQL"
ENGINES_INTRO = (
    "`python benchmarks/core_overhead.py --engines URL`: the same measures with the state store on\n"
    "SQLite (the default) and on a PostgreSQL server (ESAP_STATE_URL; here scripts/services/postgres.sh\n"
    "on this machine, synchronous_commit=off as SQLite's WAL with synchronous=NORMAL): part `cpu` runs\n"
    "trivial jobs on the local site; part `store` makes the store calls of a run of 10,000 jobs\n"
    "without running them (the submitter's ids, records and scheduler ids in batches of 1,000; two\n"
    "state changes of every job by the tracker with its re-read; a watch's read after each batch)."
)


def fresh_schema_url(url: str) -> tuple[str, str]:
    import uuid

    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"CREATE SCHEMA {schema}")
    return schema, f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f"DROP SCHEMA {schema} CASCADE")


def engines(url: str, jobs: int, store_jobs: int) -> dict[str, dict[str, dict[str, Any]]]:
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for engine in ("sqlite", "postgresql"):
        results[engine] = {}
        for part, count in (("store", store_jobs), ("cpu", jobs)):
            schema, state_url = fresh_schema_url(url) if engine == "postgresql" else ("", None)
            try:
                results[engine][part] = run_part(part, count, state_url)
            finally:
                if schema:
                    drop_schema(url, schema)
            print(f"{engine} {part}:", json.dumps(results[engine][part]), flush=True)
    return results


def engines_report(results: dict[str, dict[str, dict[str, Any]]]) -> str:
    from esap_executors.postgres_store import redacted_url

    sqlite_store, pg_store = results["sqlite"]["store"], results["postgresql"]["store"]
    sqlite_cpu, pg_cpu = results["sqlite"]["cpu"], results["postgresql"]["cpu"]
    n = sqlite_store["jobs"]

    def per_job(part: dict[str, Any], key: str) -> str:
        value = part.get(key)
        return "n/a" if value is None else f"{1000 * value / part['jobs']:.3f} ms"

    def ratio(a: float, b: float) -> str:
        return f"{b / a:.2f}x" if a else "n/a"

    phases = sorted(set(sqlite_store["phases_s"]) | set(pg_store["phases_s"]))
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### {date}",
        "",
        f"Machine: {machine()}; PostgreSQL at {redacted_url(pg_store['store'].split('?')[0])}. Local site, built-in, "
        "jobs `true`, polling start 0.5 s / floor 0.2 s / ceiling 2 s.",
        "",
        "| measure | SQLite | PostgreSQL | PostgreSQL / SQLite |",
        "|---|---|---|---|",
        f"| store calls of a {n}-job run: wall | {sqlite_store['wall_s']} s | {pg_store['wall_s']} s "
        f"| {ratio(sqlite_store['wall_s'], pg_store['wall_s'])} |",
    ]
    for name in phases:
        a, b = sqlite_store["phases_s"].get(name, 0.0), pg_store["phases_s"].get(name, 0.0)
        lines.append(f"| of which {name} | {a} s | {b} s | {ratio(a, b)} |")
    lines += [
        f"| CPU per job, executor process | {per_job(sqlite_store, 'executor_cpu_s')} "
        f"| {per_job(pg_store, 'executor_cpu_s')} "
        f"| {ratio(sqlite_store['executor_cpu_s'], pg_store['executor_cpu_s'])} |",
        f"| CPU per job, PostgreSQL server process | - | {per_job(pg_store, 'server_cpu_s')} | |",
        f"| {sqlite_cpu['jobs']} trivial jobs run: CPU per job (executor + supervisor) "
        f"| {sqlite_cpu['ms_per_job']} ms | {pg_cpu['ms_per_job']} ms "
        f"| {ratio(sqlite_cpu['ms_per_job'], pg_cpu['ms_per_job'])} |",
        f"| of which executor process | {sqlite_cpu['executor_ms_per_job']} ms | {pg_cpu['executor_ms_per_job']} ms "
        f"| {ratio(sqlite_cpu['executor_ms_per_job'], pg_cpu['executor_ms_per_job'])} |",
        f"| wall time of that run | {sqlite_cpu['wall_s']} s ({states_text(sqlite_cpu['states'])}) "
        f"| {pg_cpu['wall_s']} s ({states_text(pg_cpu['states'])}) | |",
        f"| load average (1, 5, 15 min) at the end | {load_average()} | | |",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000, help="trivial jobs for the CPU measure")
    parser.add_argument("--tracked", type=int, default=10000, help="jobs tracked for the RSS measure")
    parser.add_argument("--no-append", action="store_true", help="print, do not append to RESULTS.md")
    parser.add_argument("--engines", metavar="URL",
                        help="compare the SQLite store with the PostgreSQL server of URL (parts cpu and store)")
    parser.add_argument("--store-jobs", type=int, default=10000, help="jobs of part store (with --engines)")
    parser.add_argument("--part", choices=["cpu", "rss", "store"], help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "cpu":
        print(json.dumps(part_cpu(args.count)))
        return 0
    if args.part == "rss":
        print(json.dumps(part_rss(args.count)))
        return 0
    if args.part == "store":
        print(json.dumps(part_store(args.count)))
        return 0
    if args.engines:
        entry = engines_report(engines(args.engines, args.jobs, args.store_jobs))
        print(entry)
        if not args.no_append:
            append_to_section(ENGINES_SECTION, entry, ENGINES_INTRO)
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
