"""SLURM submission and end-to-end benchmark: esap (CLI and slurmrestd paths) against plain sbatch.

    .venv/bin/python benchmarks/slurm_submit.py [--cluster host|24.11|26.05] [--singles 100] [--array 500]
        [--e2e 200] [--rounds 3] [--write]

Measured on one cluster of scripts/services/slurm.sh (the host's, or the Slurm 24.11 / 26.05 one,
whose commands are the wrappers its sites name), all in one run:
  * submission rate (jobs/s) of single jobs: a plain `sbatch` loop (bash), esap CLI, esap REST;
  * submission rate of same-shaped jobs, which esap sends as one job array (CLI and REST);
  * wall time of N trivial jobs end to end (submit -> all seen completed) with esap, against the
    scheduler's floor: the same N as one `sbatch --array` and a tight (0.2 s) squeue wait loop.
The cluster is drained between phases (not timed); jobs of the submission-rate phases are
cancelled right after submission (only the submission is measured). --write replaces the "## slurm"
section (host) or "## slurm 24.11" / "## slurm 26.05" of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from esap_executors.backends.base import Submission  # noqa: E402
from esap_executors.backends.slurm import SlurmBackend  # noqa: E402
from esap_executors.backends.slurm.mapping import array_dir  # noqa: E402
from esap_executors.job import make_spec  # noqa: E402
from esap_executors.runs import JobRequest, Run  # noqa: E402
from esap_executors.sites import Catalogue  # noqa: E402
from esap_executors.sqlite_store import open_store  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from phases import SchedulerTimes, Timeline, final_times, median_timeline, table, timeline  # noqa: E402

SITES = ROOT / "examples" / "sites.yaml"


NAMES: list[str] = ["bench-plain", "bench-plain-array", "bench-floor"]  # jobs this benchmark made
# the cluster measured: its sites (CLI, REST) and its client commands (None: those on PATH)
CLUSTERS = {
    "host": (("slurm-local", "slurm-rest"), None),
    "24.11": (("slurm-2411", "slurm-2411-rest"), "/var/lib/slurm-ci-2411/bin"),
    "26.05": (("slurm-2605", "slurm-2605-rest"), "/var/lib/slurm-ci-2605/bin"),
}
COMMANDS: str | None = None
PHASES = False  # --phases: the end-to-end runs only, each with its timeline


def cmd(name: str) -> str:
    return os.path.join(COMMANDS, name) if COMMANDS else name


def cancel_all() -> None:
    """Submission-rate phases only measure sbatch/REST: their jobs need not run."""
    ids = subprocess.run([cmd("squeue"), "-h", f"--name={','.join(NAMES)}", "-o", "%A"], capture_output=True,
                         text=True).stdout.split()
    if ids:  # (scancel --name takes one name only)
        subprocess.run([cmd("scancel"), *sorted(set(ids))], check=False)


def drain() -> None:
    """Wait until none of this benchmark's jobs is queued or running (not timed)."""
    names = ",".join(NAMES)
    while subprocess.run([cmd("squeue"), "-h", f"--name={names}", "-o", "%i"], capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.5)


def plain_sbatch_loop(n: int, workdir: str) -> float:
    sbatch = shlex.quote(cmd("sbatch"))
    script = (f'for i in $(seq {n}); do {sbatch} --parsable -J bench-plain -o /dev/null -D {workdir} '
              f'--wrap true >/dev/null || exit 1; done')
    start = time.perf_counter()
    subprocess.run(["bash", "-c", script], check=True)
    return time.perf_counter() - start


def plain_sbatch_array(n: int, workdir: str) -> float:
    start = time.perf_counter()
    subprocess.run([cmd("sbatch"), "--parsable", "-J", "bench-plain-array", "-o", "/dev/null", "-D", workdir,
                    f"--array=0-{n - 1}", "--wrap", "true"], check=True, capture_output=True)
    return time.perf_counter() - start


def submissions(n: int, work: Path, distinct: bool) -> list[Submission]:
    run_id = "rbench" + uuid.uuid4().hex[:6]
    NAMES.append(f"esap-{run_id}")
    subs = []
    for i in range(n):
        workdir = work / run_id / f"{i}"
        workdir.mkdir(parents=True, exist_ok=True)
        # distinct shapes (a different memory request each) can never share an array
        spec = make_spec(["true"], memory=f"{16 + i}M" if distinct else "16M", partition="debug")
        subs.append(Submission(job_id=f"{run_id}.{i:08x}", run_id=run_id, name="bench", spec=spec,
                               workdir=str(workdir), stdout=str(workdir / "out"), stderr=str(workdir / "err")))
    return subs


def esap_submit(catalogue: Catalogue, site_name: str, subs: list[Submission]) -> float:
    site = catalogue.get(site_name)
    site = replace(site, work_root=str(Path(subs[0].workdir).parent.parent))
    backend = SlurmBackend(site)
    backend.validate(subs)  # reads the cluster once (a run does this before submitting)
    start = time.perf_counter()
    backend.submit(subs)
    elapsed = time.perf_counter() - start
    backend.close()
    return elapsed


def floor_end_to_end(n: int, workdir: str) -> float:
    return floor_timeline(n, workdir)[0]


def floor_timeline(n: int, workdir: str) -> tuple[float, Timeline | None]:
    t0 = time.time()
    start = time.perf_counter()
    job = subprocess.run([cmd("sbatch"), "--parsable", "-J", "bench-floor", "-o", "/dev/null", "-D", workdir,
                          f"--array=0-{n - 1}", "--wrap", "true"], check=True, capture_output=True,
                         text=True).stdout.strip()
    submitted = time.time()
    while subprocess.run([cmd("squeue"), "-h", "-j", job, "-o", "%i"], capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if not PHASES:
        return elapsed, None
    returned = time.time()
    return elapsed, timeline(t0, submitted, returned, scheduler_times([job], n), None, returned)


def scheduler_times(job_ids: list[str], count: int) -> dict[str, SchedulerTimes]:
    """Submit/Start/End of every task from SLURM's accounting (whole seconds), once all are there
    (accounting lags the controller: waited for, not timed)."""
    deadline = time.monotonic() + 60
    while True:
        out = subprocess.run([cmd("sacct"), "-n", "-P", "-X", "-j", ",".join(job_ids),
                              "-o", "JobID,Submit,Start,End"], capture_output=True, text=True).stdout
        found = {}
        for line in out.splitlines():
            native, *stamps = line.split("|")
            if "[" in native or any(not s[:1].isdigit() for s in stamps):
                continue
            found[native] = SchedulerTimes(*(time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%S")) for s in stamps))
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(1)


def script_to_command_gaps(natives: dict[str, str], stdouts: dict[str, str],
                           array_dirs: dict[str, Path]) -> list[float]:
    """Per array task: its stream file's mtime (the task opened it, just before exec'ing the
    command; `true` writes nothing) minus that of the array's own stream file (SLURM opens it
    just before the job script starts)."""
    gaps = []
    for job_id, native in natives.items():
        array, _, task = native.partition("_")
        directory = array_dirs.get(job_id)
        if not task or directory is None:
            continue
        try:
            gaps.append(os.stat(stdouts[job_id]).st_mtime - os.stat(directory / f"slurm-{array}_{task}.out").st_mtime)
        except OSError:
            continue
    return gaps


def esap_end_to_end(catalogue: Catalogue, site_name: str, n: int) -> float:
    return esap_timeline(catalogue, site_name, n)[0]


def esap_timeline(catalogue: Catalogue, site_name: str, n: int) -> tuple[float, Timeline | None]:
    run = Run.open(f"bench-e2e-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store())
    NAMES.append(f"esap-{run.run_id}")
    spec = make_spec(["true"])
    t0 = time.time()
    start = time.perf_counter()
    run.submit([JobRequest(f"j{i}", spec, site=site_name) for i in range(n)])
    submitted = time.time()
    final = run.wait(timeout=1800)
    elapsed = time.perf_counter() - start
    returned = time.time()
    bad = [r for r in final.values() if r.state.value != "completed"]
    if bad:
        run.close()
        raise SystemExit(f"{len(bad)} job(s) did not complete: {bad[0]}")
    result = None
    if PHASES:
        natives = {r.job_id: r.native_id or "" for r in final.values()}
        seen = final_times(run.store.transitions_of_run(run.run_id), natives, ["completed"])
        arrays = sorted({native.partition("_")[0] for native in natives.values()})
        array_dirs = {job_id: directory for directory in array_dir(catalogue.get(site_name), run.run_id).glob("*")
                      for job_id in _task_ids(directory)}
        gaps = script_to_command_gaps(natives, {r.job_id: r.stdout for r in final.values()}, array_dirs)
        result = timeline(t0, submitted, returned, scheduler_times(arrays, n), seen, None, gaps)
    run.close()
    return elapsed, result


def _task_ids(directory: Path) -> list[str]:
    try:
        return [str(j) for j in json.loads((directory / "tasks.json").read_text())]
    except (OSError, ValueError):
        return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", choices=sorted(CLUSTERS), default="host")
    parser.add_argument("--singles", type=int, default=100)
    parser.add_argument("--array", type=int, default=500)
    parser.add_argument("--e2e", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="repetitions (the median is reported)")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--phases", action="store_true",
                        help="only the end-to-end runs (floor, CLI, REST), each with where its time went")
    args = parser.parse_args()
    global COMMANDS, PHASES
    PHASES = args.phases
    (cli, rest), COMMANDS = CLUSTERS[args.cluster]

    state = tempfile.mkdtemp(prefix="esap-bench-state-", dir="/tmp")
    os.environ["ESAP_STATE_DIR"] = state
    os.chmod(state, 0o755)
    work = Path(state) / "work"
    work.mkdir()
    catalogue = Catalogue.load(SITES)
    version = subprocess.run([cmd("sinfo"), "-V"], capture_output=True, text=True).stdout.strip()
    results: dict[str, float] = {}

    def note(label: str, seconds: float, jobs: int) -> None:
        results[label] = seconds
        print(f"{label:<44} {jobs:5d} jobs {seconds:8.2f} s {jobs / seconds:9.1f} jobs/s", flush=True)

    # Each measurement is repeated --rounds times, the kinds interleaved so that load from
    # other processes on the machine hits all of them alike; the median is reported.
    samples: dict[str, list[float]] = {}

    def sample(label: str, seconds: float, *, run_jobs: bool = True) -> None:
        samples.setdefault(label, []).append(seconds)
        if not run_jobs:
            cancel_all()
        drain()

    drain()
    if PHASES:
        return phases_mode(args, catalogue, work, cli, rest, version)
    for _ in range(args.rounds):
        sample("floor: sbatch --array + 0.2 s squeue loop", floor_end_to_end(args.e2e, str(work)))
        sample(f"esap end to end, {cli} (CLI)", esap_end_to_end(catalogue, cli, args.e2e))
        sample(f"esap end to end, {rest} (REST)", esap_end_to_end(catalogue, rest, args.e2e))
    for _ in range(args.rounds):
        sample("plain sbatch loop (bash), single jobs", plain_sbatch_loop(args.singles, str(work)), run_jobs=False)
        sample("esap CLI, single jobs",
               esap_submit(catalogue, cli, submissions(args.singles, work, True)), run_jobs=False)
        sample("esap REST, single jobs",
               esap_submit(catalogue, rest, submissions(args.singles, work, True)), run_jobs=False)
    for _ in range(args.rounds):
        sample("plain sbatch --array", plain_sbatch_array(args.array, str(work)), run_jobs=False)
        sample("esap CLI, same-shaped jobs (one array)",
               esap_submit(catalogue, cli, submissions(args.array, work, False)), run_jobs=False)
        sample("esap REST, same-shaped jobs (one array)",
               esap_submit(catalogue, rest, submissions(args.array, work, False)), run_jobs=False)
    jobs_of = {label: (args.e2e if "end to end" in label or "floor" in label else
                       args.singles if "single" in label else args.array) for label in samples}
    for label, values in samples.items():
        note(label, statistics.median(values), jobs_of[label])

    def rate(label: str, jobs: int) -> float:
        return jobs / results[label]

    loop = rate("plain sbatch loop (bash), single jobs", args.singles)
    floor = results["floor: sbatch --array + 0.2 s squeue loop"]
    lines = [
        "## slurm" + ("" if args.cluster == "host" else f" {args.cluster}"),
        "",
        f"`benchmarks/slurm_submit.py` on {version}, scripts/services/slurm.sh cluster (2 fake nodes x 16 "
        f"CPUs on {os.cpu_count()} cores, {platform.system()} {platform.release()}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; median of {args.rounds} interleaved rounds "
        "(other projects' tests may share the machine).",
        "",
        "| measurement | jobs | seconds | jobs/s | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    table = [
        ("plain sbatch loop (bash), single jobs", args.singles, "1.00 (reference)"),
        ("esap CLI, single jobs", args.singles, f"{rate('esap CLI, single jobs', args.singles) / loop:.2f} x loop"),
        ("esap REST, single jobs", args.singles,
         f"{rate('esap REST, single jobs', args.singles) / loop:.2f} x loop"),
        ("plain sbatch --array", args.array, f"{rate('plain sbatch --array', args.array) / loop:.1f} x loop"),
        ("esap CLI, same-shaped jobs (one array)", args.array,
         f"{rate('esap CLI, same-shaped jobs (one array)', args.array) / loop:.1f} x loop"),
        ("esap REST, same-shaped jobs (one array)", args.array,
         f"{rate('esap REST, same-shaped jobs (one array)', args.array) / loop:.1f} x loop"),
        ("floor: sbatch --array + 0.2 s squeue loop", args.e2e, "1.00 (floor)"),
        (f"esap end to end, {cli} (CLI)", args.e2e,
         f"{results[f'esap end to end, {cli} (CLI)'] / floor:.2f} x floor"),
        (f"esap end to end, {rest} (REST)", args.e2e,
         f"{results[f'esap end to end, {rest} (REST)'] / floor:.2f} x floor"),
    ]
    for label, jobs, ratio in table:
        lines.append(f"| {label} | {jobs} | {results[label]:.2f} | {jobs / results[label]:.1f} | {ratio} |")
    lines += [
        "",
        "Targets (issue 3): single-job submission at least as fast as the plain sbatch loop (>= 1.00 x loop), "
        ">= 10x with arrays, end to end <= 1.2 x floor. esap's single jobs go out through "
        "`submit_workers` parallel sbatch calls / HTTP requests; same-shaped jobs as one array. End to end "
        "includes the run's bookkeeping (SQLite store, workdirs, one status query per poll cycle with the "
        "site's poll settings: start 1 s, floor 0.5 s, the floor while jobs are ending): the controller on "
        "both paths (squeue on the CLI path; on REST GET jobs/state on 24.05+, GET job/<id> before), "
        "accounting only for what the controller no longer shows.",
        "",
    ]
    write_section(lines, args.write)
    return 0


def phases_mode(args: argparse.Namespace, catalogue: Catalogue, work: Path, cli: str, rest: str,
                version: str) -> int:
    """Floor, CLI, REST interleaved in each round; the median timeline of each."""
    rounds: dict[str, list[Timeline]] = {}
    load = os.getloadavg()
    for _ in range(args.rounds):
        for label, measure in (
            ("floor: sbatch --array + 0.2 s squeue loop", lambda: floor_timeline(args.e2e, str(work))),
            (f"esap {cli} (CLI)", lambda: esap_timeline(catalogue, cli, args.e2e)),
            (f"esap {rest} (REST)", lambda: esap_timeline(catalogue, rest, args.e2e)),
        ):
            elapsed, found = measure()
            assert found is not None
            rounds.setdefault(label, []).append(found)
            print(f"{label:<44} {elapsed:8.2f} s  " + " ".join(found.cells()), flush=True)
            drain()
    medians = [(label, median_timeline(values)) for label, values in rounds.items()]
    lines = [
        "## slurm" + ("" if args.cluster == "host" else f" {args.cluster}") + " phases",
        "",
        f"`benchmarks/slurm_submit.py --phases --e2e {args.e2e} --rounds {args.rounds}` on {version}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at start "
        f"{load[0]:.1f} / {load[1]:.1f} on {os.cpu_count()} cores (a shared, loaded machine: compare "
        "the rows of one table, not tables); median of the rounds, field by field. Seconds from the "
        "start of submission: submit = the submit call returned; to 1st start = until the scheduler "
        "started the first job; run span = first start to last end (scheduler, whole seconds); last "
        "end -> seen = until the last final state was recorded in the store (the floor: its squeue loop "
        "saw the queue empty); seen -> returned = bookkeeping until wait() returned. Per job: queued "
        "(Start - Submit), the scheduler's span per job in ms, end -> recorded, and job script start -> "
        "command start of esap's array tasks (stream files' mtimes).",
        "",
        *table(medians, medians[0][1]),
        "",
    ]
    write_section(lines, args.write)
    return 0


def write_section(lines: list[str], write: bool) -> None:
    text = "\n".join(lines)
    print()
    print(text)
    if write:
        results_md = ROOT / "benchmarks" / "RESULTS.md"
        current = results_md.read_text() if results_md.exists() else "# Benchmark results\n\n"
        start = current.find(lines[0] + "\n")
        if start >= 0:
            end = current.find("\n## ", start + 1)
            current = current[:start] + text + ("" if end < 0 else current[end + 1:])
        else:
            current = current.rstrip("\n") + "\n\n" + text
        results_md.write_text(current)


if __name__ == "__main__":
    sys.exit(main())
