"""End to end against the scheduler's floor, in one run, with where esap's time goes.

    .venv/bin/python benchmarks/e2e_phases.py [--site slurm-local] [--jobs 100] [--write]

On one SLURM site of examples/sites.yaml (CLI or REST path) and its cluster:
  * the floor: the same N jobs as one bare `sbatch --array`, waited on with squeue every 0.2 s;
  * esap: one run of N jobs, submit -> all seen completed.
Every job (both sides) runs `date +%s.%N`, so its stdout says when its command started. esap's
time is then split per job, from the scheduler's own timestamps (sacct Submit/Start/End, whole
seconds), the command's start (nanoseconds) and the state store's transitions (when esap saw
each state):
  submit      esap's submit() call (validate, record, sbatch / REST), for the whole batch
  queued      sacct Submit -> Start            (the scheduler's queue)
  to command  sacct Start -> command start     (batch script, srun, environment; >= 0 clipped)
  command     command start -> sacct End
  seen        sacct End -> esap's store records the job completed (polling, store writes)
  after       the last job recorded completed -> wait() returns (bookkeeping)
Medians over the jobs (sacct's whole seconds make each of them uncertain by up to 1 s; the
jobs stage nothing out), and for the run as a whole the wall time against the floor's. The
run uses a private state directory. --write appends to the "## phases" section of
benchmarks/RESULTS.md. The floor needs sbatch: SLURM sites only, for now.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import append_to_section  # noqa: E402

from esap_executors.job import make_spec  # noqa: E402
from esap_executors.runs import JobRequest, Run  # noqa: E402
from esap_executors.sites import Catalogue  # noqa: E402
from esap_executors.stores import open_store  # noqa: E402

SITES = ROOT / "examples" / "sites.yaml"
SECTION = "## phases"
INTRO = ("`python benchmarks/e2e_phases.py`: N trivial jobs end to end with esap against the scheduler's floor "
         "(one bare job array), in the same run, and where esap's time goes per job (sacct timestamps, the "
         "command's own start, the state store's transitions).")
COMMAND = ["date", "+%s.%N"]


def commands_of(catalogue: Catalogue, site_name: str) -> str | None:
    commands = catalogue.get(site_name).options.get("commands")
    return str(commands) if commands else None


def tool(commands: str | None, name: str) -> str:
    return os.path.join(commands, name) if commands else name


def floor(commands: str | None, n: int, work: Path) -> tuple[float, str]:
    """The bare array, `date` in each task, waited on with squeue every 0.2 s."""
    out = work / "floor"
    out.mkdir()
    start = time.perf_counter()
    job = subprocess.run([tool(commands, "sbatch"), "--parsable", "-J", "bench-phases-floor", "-D", str(out),
                          "-o", str(out / "%a.out"), f"--array=0-{n - 1}", "--wrap", " ".join(COMMAND)],
                         check=True, capture_output=True, text=True).stdout.strip()
    while subprocess.run([tool(commands, "squeue"), "-h", "-j", job, "-o", "%i"], capture_output=True,
                         text=True).stdout.strip():
        time.sleep(0.2)
    return time.perf_counter() - start, job


def sacct_times(commands: str | None, name: str) -> dict[str, tuple[float, float, float]]:
    """native id -> (Submit, Start, End) in epoch seconds, from accounting."""
    env = dict(os.environ, SLURM_TIME_FORMAT="%s")
    deadline = time.monotonic() + 60
    while True:  # accounting lags the controller by a moment
        out = subprocess.run([tool(commands, "sacct"), "-n", "-P", "-X", f"--name={name}",
                              "--starttime=now-1hour", "--format=JobID,Submit,Start,End,State"],
                             capture_output=True, text=True, env=env, check=True).stdout
        rows = [line.split("|") for line in out.splitlines() if line.strip()]
        times = {r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in rows
                 if all(v.isdigit() for v in r[1:4])}
        if rows and len(times) == len(rows) or time.monotonic() > deadline:
            return times
        time.sleep(1)


def esap(catalogue: Catalogue, site_name: str, n: int) -> dict[str, object]:
    store = open_store()
    run = Run.open(f"bench-phases-{uuid.uuid4().hex}", catalogue=catalogue, store=store)
    spec = make_spec(COMMAND)
    start_epoch = time.time()
    start = time.perf_counter()
    run.submit([JobRequest(f"j{i}", spec, site=site_name) for i in range(n)])
    submitted = time.perf_counter()
    final = run.wait(timeout=1800)
    wall = time.perf_counter() - start
    run.close()
    bad = [r for r in final.values() if r.state.value != "completed"]
    if bad:
        raise SystemExit(f"{len(bad)} job(s) did not complete: {bad[0]}")
    seen = {job_id: next(t for _, new, t, _ in reversed(changes) if new == "completed")
            for job_id, changes in store.transitions_of_run(run.run_id).items()}
    accounted = sacct_times(commands_of(catalogue, site_name), f"esap-{run.run_id}")
    phases: dict[str, list[float]] = {"queued": [], "to command": [], "command": [], "seen": []}
    for record in final.values():
        times = accounted.get(record.native_id or "")
        if times is None:
            continue
        submit, begin, end = times
        command = float(Path(record.stdout).read_text().split()[0])
        phases["queued"].append(begin - submit)
        phases["to command"].append(max(0.0, command - begin))
        phases["command"].append(max(0.0, end - command))
        phases["seen"].append(seen[record.job_id] - end)
    last_seen = max(seen.values()) - start_epoch
    return {"wall": wall, "submit": submitted - start, "phases": phases, "accounted": len(accounted),
            "last_seen": last_seen, "run_id": run.run_id}


def report(site: str, n: int, floor_s: float, result: dict[str, object]) -> str:
    phases = result["phases"]
    assert isinstance(phases, dict)
    wall = float(str(result["wall"]))
    lines = [
        f"### {datetime.now(UTC):%Y-%m-%d %H:%M UTC} — {site}, {n} jobs",
        "",
        f"Load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in os.getloadavg())}.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| floor: one bare array of {n} `date` tasks, squeue every 0.2 s | {floor_s:.1f} s |",
        f"| esap: {n} jobs, submit -> all seen completed | {wall:.1f} s ({wall / floor_s:.2f}x the floor) |",
        f"| esap submit() for the batch | {float(str(result['submit'])):.2f} s |",
    ]
    for name, values in phases.items():
        if values:
            lines.append(f"| per job, median (max): {name} | {statistics.median(values):.2f} s "
                         f"({max(values):.2f} s) |")
    after = wall - float(str(result["last_seen"]))
    lines += [f"| the last job recorded completed -> wait() returns | {after:.2f} s |",
              f"| jobs with accounting timestamps | {result['accounted']} of {n} |", ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="slurm-local", help="a SLURM site of examples/sites.yaml")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--write", action="store_true", help="append to benchmarks/RESULTS.md")
    args = parser.parse_args()
    catalogue = Catalogue.load(str(SITES))
    os.environ["ESAP_STATE_DIR"] = tempfile.mkdtemp(prefix="esap-bench-phases-state-")
    if catalogue.get(args.site).backend != "slurm":
        raise SystemExit(f"{args.site}: this benchmark measures SLURM sites (floor: sbatch --array)")
    with tempfile.TemporaryDirectory(prefix="esap-bench-phases-", dir="/tmp") as work:
        floor_s, _ = floor(commands_of(catalogue, args.site), args.jobs, Path(work))
        result = esap(catalogue, args.site, args.jobs)
    entry = report(args.site, args.jobs, floor_s, result)
    print(entry)
    if args.write:
        append_to_section(SECTION, entry, INTRO)
    return 0


if __name__ == "__main__":
    sys.exit(main())
