"""Rosetta overhead: the same N trivial steps on rosetta-slurm (Rosetta tasks of the runner
image, sbatch through Rosetta over SSH) and on slurm-local (sbatch directly), each in one run.

    .venv/bin/python benchmarks/rosetta_overhead.py [--steps 20] [--workers N] [--write]

Needs scripts/services/slurm.sh, containers.sh and rosetta.sh running. Reports the wall time
of each run (submit to the last step final), their ratio, the extra seconds per step, and the
Rosetta requests: in total, per step, and per poll cycle split into status queries (what must
not grow with the number of steps) and per-step actions (upload, start, download, stop,
delete); --workers overrides the site's `workers` (steps started at once).
--write appends the table to benchmarks/RESULTS.md, section "rosetta".
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("ESAP_STATE_DIR", tempfile.mkdtemp(prefix="esap-bench-rosetta-"))

from esap_executors.job import make_spec  # noqa: E402
from esap_executors.runs import JobRequest, Run  # noqa: E402
from esap_executors.sites import Catalogue  # noqa: E402
from esap_executors.sqlite_store import open_store  # noqa: E402
from esap_executors.states import JobState  # noqa: E402

SITES = ROOT / "examples" / "sites.yaml"


def one_run(catalogue: Catalogue, site: str, steps: int) -> dict[str, float]:
    run = Run.open(f"bench-rosetta-{uuid.uuid4().hex}", catalogue=catalogue, store=open_store())
    backend = run.backend(site)
    cycles: list[tuple[int, int]] = []
    if site.startswith("rosetta"):
        original = backend.poll

        def counting(native_ids, *, run_id, since):  # type: ignore[no-untyped-def]
            queries, actions = backend.query_count, backend.action_count  # type: ignore[attr-defined]
            result = original(native_ids, run_id=run_id, since=since)
            cycles.append((backend.query_count - queries, backend.action_count - actions))  # type: ignore[attr-defined]
            return result

        backend.poll = counting  # type: ignore[method-assign]
    requests = [JobRequest(f"s{i}", make_spec(["sh", "-c", f"echo step {i}"]), site=site) for i in range(steps)]
    start = time.monotonic()
    run.submit(requests)
    submitted = time.monotonic() - start
    final = run.wait(timeout=1800)
    wall = time.monotonic() - start
    completed = sum(1 for r in final.values() if r.state is JobState.COMPLETED)
    result = {"wall": wall, "submit": submitted, "completed": completed}
    if site.startswith("rosetta"):
        client = backend.client  # type: ignore[attr-defined]
        result["requests"] = client.requests_made
        result["cycles"] = len(cycles)
        result["max_queries_per_cycle"] = max((q for q, _ in cycles), default=0)
        result["queries"] = sum(q for q, _ in cycles)
        result["actions"] = backend.action_count  # type: ignore[attr-defined]
    run.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, help="the Rosetta site's `workers` option (default: the site's)")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    catalogue = Catalogue.load(SITES)
    if args.workers:
        site = catalogue.get("rosetta-slurm")
        catalogue = Catalogue({**catalogue.sites, site.name: replace(
            site, options={**site.options, "workers": args.workers})}, catalogue.source)
    slurm = one_run(catalogue, "slurm-local", args.steps)
    rosetta = one_run(catalogue, "rosetta-slurm", args.steps)
    n = args.steps
    rows = [
        ("steps (completed: slurm-local / rosetta-slurm)",
         f"{n} ({int(slurm['completed'])} / {int(rosetta['completed'])})"),
        ("wall time slurm-local", f"{slurm['wall']:.1f} s (submit {slurm['submit']:.1f} s)"),
        ("wall time rosetta-slurm", f"{rosetta['wall']:.1f} s (submit {rosetta['submit']:.1f} s)"),
        ("ratio rosetta / slurm", f"**{rosetta['wall'] / slurm['wall']:.2f}**"),
        ("extra wall time per step (run total / steps)", f"{(rosetta['wall'] - slurm['wall']) / n:.2f} s"),
        ("Rosetta requests in total / per step", f"{int(rosetta['requests'])} / {rosetta['requests'] / n:.1f}"),
        ("poll cycles; status queries per cycle (max)",
         f"{int(rosetta['cycles'])}; {int(rosetta['max_queries_per_cycle'])}"),
        ("per-step actions (script bundle upload, start, result download, delete)",
         f"{int(rosetta['actions'])} ({rosetta['actions'] / n:.1f} per step)"),
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, load average {load}"
    lines = [f"### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "", f"Machine: {machine}. "
             f"Steps `sh -c 'echo step N'`; rosetta-slurm heartbeat 5 s, polling as in examples/sites.yaml, "
             f"workers {catalogue.get('rosetta-slurm').options.get('workers') or 4}.", "",
             "| measure | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = ROOT / "benchmarks" / "RESULTS.md"
        content = results.read_text()
        if "\n## rosetta\n" not in content:
            content += ("\n## rosetta\n\n`python benchmarks/rosetta_overhead.py`: the same trivial steps on "
                        "rosetta-slurm and slurm-local, each in one run (Rosetta requests counted by the "
                        "client).\n\n")
        results.write_text(content.rstrip("\n") + "\n\n" + text)


if __name__ == "__main__":
    main()
