"""Where the time of N trivial jobs goes on HTCondor and on the local site, against each one's floor
(issue 21; SLURM: `benchmarks/slurm_submit.py --phases`).

    .venv/bin/python benchmarks/backend_phases.py --backend htcondor|local [--jobs 200] [--rounds 1] [--write]

HTCondor (site htcondor-local, the pool of scripts/services/htcondor.sh): the floor is one cluster
of N `/bin/true` procs, submitted in one transaction with the site's owner and submit keys and
waited on through its own job event log (followed, not polled); esap runs the same N jobs through
the Run API. Scheduler times come from the event logs on both sides (submit, execute and
terminate events, whole seconds): the floor's own log, and the one log of esap's run.
Local (site local): the floor is `xargs -P <max_cores>` running N `true`; esap's times come from
its store (queued, running and final transitions, recorded by the supervisor that runs the jobs),
so "end -> seen" is 0 there by construction and "run span" is the supervisor's.

Floor and esap alternate in each round; the median timeline of each is reported, in the columns of
benchmarks/phases.py. --write replaces the "## htcondor phases" or "## local phases" section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from phases import SchedulerTimes, Timeline, final_times, median_timeline, table, timeline  # noqa: E402

from esap_executors.job import make_spec  # noqa: E402
from esap_executors.runs import JobRequest, Run  # noqa: E402
from esap_executors.sites import Catalogue  # noqa: E402
from esap_executors.sqlite_store import open_store  # noqa: E402

SITES = {"htcondor": "htcondor-local", "local": "local"}
FINAL = ("completed", "failed", "cancelled")


def catalogue_in(work_root: str) -> Catalogue:
    catalogue = Catalogue.load(ROOT / "examples" / "sites.yaml")
    for name in SITES.values():
        catalogue.sites[name] = dataclasses.replace(catalogue.get(name), work_root=work_root)
    return catalogue


# ---------------------------------------------------------------- HTCondor
def event_times(log_path: str) -> dict[str, SchedulerTimes]:
    """"cluster.proc" -> submit / execute / terminate times from a job event log."""
    import htcondor2 as htcondor

    stamps: dict[str, dict[str, float]] = {}
    kinds = {htcondor.JobEventType.SUBMIT: "submit", htcondor.JobEventType.EXECUTE: "start",
             htcondor.JobEventType.JOB_TERMINATED: "end"}
    for event in htcondor.JobEventLog(log_path).events(stop_after=0):
        kind = kinds.get(event.type)
        if kind:
            stamps.setdefault(f"{event.cluster}.{event.proc}", {})[kind] = float(event.timestamp)
    return {job: SchedulerTimes(s["submit"], s["start"], s["end"]) for job, s in stamps.items()
            if len(s) == 3}


def htcondor_floor(catalogue: Catalogue, count: int) -> Timeline:
    """One cluster of `count` /bin/true procs, its event log followed until all terminated."""
    import htcondor2 as htcondor

    from esap_executors.backends.htcondor import HTCondorBackend

    backend = HTCondorBackend(catalogue.get(SITES["htcondor"]))
    run_id = "floor" + uuid.uuid4().hex[:8]
    settings = backend._settings(backend._prepare_run_dir(run_id))  # noqa: SLF001 - the site's owner and log
    keys = {"universe": "vanilla", "executable": "/bin/true", "transfer_executable": "false",
            "initialdir": str(Path(settings.event_log).parent), "log": settings.event_log,
            "output": "/dev/null", "error": "/dev/null", "should_transfer_files": "NO", "request_cpus": "1",
            "batch_name": run_id, **settings.extra}
    if settings.owner:
        keys["My.Owner"] = f'"{settings.owner}"'
    t0 = time.time()
    backend.connection.run("floor submit", lambda schedd: schedd.submit(htcondor.Submit(keys), count=count),
                           idempotent=False)
    submitted = time.time()
    ended = 0
    for event in htcondor.JobEventLog(settings.event_log).events(stop_after=None):
        if event.type in (htcondor.JobEventType.JOB_TERMINATED, htcondor.JobEventType.JOB_ABORTED):
            ended += 1
            if ended == count:
                break
    returned = time.time()
    backend.close()
    return timeline(t0, submitted, returned, event_times(settings.event_log), None, returned)


def htcondor_esap(catalogue: Catalogue, count: int) -> Timeline:
    from esap_executors.backends.htcondor import EVENT_LOG_NAME

    site = catalogue.get(SITES["htcondor"])
    with Run.open(f"bench-phases-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store()) as run:
        t0, submitted, returned, final = _run_jobs(run, site.name, count)
        natives = {r.job_id: r.native_id or "" for r in final.values()}
        seen = final_times(run.store.transitions_of_run(run.run_id), natives, FINAL)
        log = Path(site.work_root) / run.run_id / EVENT_LOG_NAME
        return timeline(t0, submitted, returned, event_times(str(log)), seen, None)


# ---------------------------------------------------------------- local
def local_floor(catalogue: Catalogue, count: int) -> Timeline:
    cores = int(catalogue.get(SITES["local"]).options.get("max_cores") or os.cpu_count() or 1)
    t0 = time.time()
    subprocess.run(["xargs", "-P", str(cores), "-n", "1", "true"], input="\n".join(map(str, range(count))),
                   text=True, check=True)
    returned = time.time()
    # no per-job times: every job counts as started at once and ended when xargs returned
    span = {str(i): SchedulerTimes(t0, t0, returned) for i in range(count)}
    return timeline(t0, t0, returned, span, None, returned)


def local_esap(catalogue: Catalogue, count: int) -> Timeline:
    with Run.open(f"bench-phases-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store()) as run:
        t0, submitted, returned, final = _run_jobs(run, SITES["local"], count)
        transitions = run.store.transitions_of_run(run.run_id)
        times = {}
        for job_id, rows in transitions.items():
            when = {new: at for _, new, at, _ in rows}
            end = next((when[s] for s in FINAL if s in when), None)
            if end is not None:
                first = min(at for _, _, at, _ in rows)
                times[job_id] = SchedulerTimes(first, when.get("running", first), end)
        seen = {job_id: t.end for job_id, t in times.items()}
        return timeline(t0, submitted, returned, times, seen, None)


def _run_jobs(run: Run, site: str, count: int) -> tuple[float, float, float, dict[str, Any]]:
    spec = make_spec(["true"])
    t0 = time.time()
    run.submit([JobRequest(f"j{i}", spec, site=site) for i in range(count)])
    submitted = time.time()
    final = run.wait(timeout=1800)
    returned = time.time()
    bad = [r for r in final.values() if r.state.value != "completed"]
    if bad:
        raise SystemExit(f"{len(bad)} job(s) did not complete: {bad[0]}")
    return t0, submitted, returned, final


MEASURES: dict[str, tuple[tuple[str, Callable[[Catalogue, int], Timeline]], ...]] = {
    "htcondor": (("floor: one cluster of N /bin/true, its event log followed", htcondor_floor),
                 ("esap htcondor-local", htcondor_esap)),
    "local": (("floor: xargs -P max_cores true", local_floor), ("esap local", local_esap)),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(SITES), required=True)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="replace this backend's section of RESULTS.md")
    args = parser.parse_args()
    state = tempfile.mkdtemp(prefix="esap-bench-state-", dir="/tmp")
    os.environ["ESAP_STATE_DIR"] = state
    work_root = tempfile.mkdtemp(prefix="esap-bench-phases-", dir="/tmp")
    os.chmod(work_root, 0o755)
    catalogue = catalogue_in(work_root)
    load = os.getloadavg()
    rounds: dict[str, list[Timeline]] = {}
    for _ in range(args.rounds):
        for label, measure in MEASURES[args.backend]:
            found = measure(catalogue, args.jobs)
            rounds.setdefault(label, []).append(found)
            print(f"{label:<60} " + " ".join(found.cells()), flush=True)
    medians = [(label, median_timeline(values)) for label, values in rounds.items()]
    end_load = os.getloadavg()
    lines = [
        f"## {args.backend} phases",
        "",
        f"`benchmarks/backend_phases.py --backend {args.backend} --jobs {args.jobs} --rounds {args.rounds}`, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average at start {load[0]:.1f} / "
        f"{load[1]:.1f}, at the end {end_load[0]:.1f} / {end_load[1]:.1f} on {os.cpu_count()} cores "
        "(LOADED MACHINE when these exceed 2: compare the rows of one table, not tables); median of the "
        "rounds, field by field. Columns as in \"slurm phases\"; " + (
            "scheduler times from the job event logs (whole seconds)."
            if args.backend == "htcondor" else
            "esap's job times from its store (the supervisor records them: end -> seen is 0 by "
            "construction), the floor as one span."),
        "",
        *table(medians, medians[0][1]),
        "",
    ]
    text = "\n".join(lines)
    print()
    print(text)
    if args.write:
        replace_section(lines[0], text)
    return 0


def replace_section(heading: str, text: str) -> None:
    results = ROOT / "benchmarks" / "RESULTS.md"
    current = results.read_text()
    start = current.find(heading + "\n")
    if start < 0:
        results.write_text(current.rstrip("\n") + "\n\n" + text)
        return
    end = current.find("\n## ", start + 1)
    results.write_text(current[:start] + text + ("" if end < 0 else current[end + 1:]))


if __name__ == "__main__":
    sys.exit(main())
