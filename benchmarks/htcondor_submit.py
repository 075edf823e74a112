"""HTCondor submission: one transaction per batch (esap) vs one submit per job (the anchor).

    python benchmarks/htcondor_submit.py [--jobs 200] [--anchor-jobs 200] [--e2e 200] [--no-append]

Runs against the project's personal pool (scripts/services/htcondor.sh start), site
`htcondor-local` of examples/sites.yaml (work root moved to a fresh directory under /tmp).

Part `submit`: the same N job descriptions (built by the backend, `true`, submitted on hold so
that nothing runs and the pool stays idle) go to the schedd, over the same warm security session:
  - esap: one `Schedd.submit` with item data (one cluster), what `HTCondorBackend.submit` sends:
    with late materialization (the schedd makes the procs; the default) and without;
  - anchor: what snakemake-executor-plugin-htcondor 0.3 does, per job a fresh `Schedd()`
    and one `Schedd.submit` (one cluster per job);
  - and the whole `HTCondorBackend.submit` (work directories, event log, descriptions too).
The jobs are removed afterwards. Reported: jobs/s for each and the ratio.
Part `e2e`: M trivial jobs (`true`) through the Run API, from submit until every job is
final: wall time, and the schedd queries the status tracking made (0 expected: the job event
log is read instead).
Results are appended to benchmarks/RESULTS.md, section "htcondor".
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "RESULTS.md"
SECTION = "## htcondor"
SITE = "htcondor-local"
TARGET_RATIO = 10.0

sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("ESAP_STATE_DIR", tempfile.mkdtemp(prefix="esap-bench-state-", dir="/tmp"))
os.environ.setdefault("ESAP_POLL_START", "0.5")
os.environ.setdefault("ESAP_POLL_FLOOR", "0.2")
os.environ.setdefault("ESAP_POLL_CEILING", "2")

import htcondor2 as htcondor  # noqa: E402
from results_file import append_to_section  # noqa: E402

from esap_executors.backends.base import Submission  # noqa: E402
from esap_executors.backends.htcondor import HTCondorBackend, _submit_cluster, description  # noqa: E402
from esap_executors.job import make_spec  # noqa: E402
from esap_executors.runs import JobRequest, Run  # noqa: E402
from esap_executors.sites import Catalogue  # noqa: E402
from esap_executors.sqlite_store import open_store  # noqa: E402


def catalogue_in(work_root: str) -> Catalogue:
    catalogue = Catalogue.load(ROOT / "examples" / "sites.yaml")
    catalogue.sites[SITE] = dataclasses.replace(catalogue.get(SITE), work_root=work_root)
    return catalogue


def submissions(run_id: str, work_root: str, count: int) -> list[Submission]:
    jobs = []
    for i in range(count):
        workdir = f"{work_root}/{run_id}/{i}"
        jobs.append(Submission(job_id=f"{run_id}.{i:05d}", run_id=run_id, name="bench", spec=make_spec(["true"]),
                               workdir=workdir, stdout=f"{workdir}/esap.out", stderr=f"{workdir}/esap.err"))
    return jobs


def remove_run(backend: HTCondorBackend, run_id: str) -> None:
    constraint = f'{description.RUN_ATTRIBUTE} == "{run_id}"'
    backend.connection.run("cleanup", lambda schedd: schedd.act(htcondor.JobAction.Remove, constraint))


def prepared(backend: HTCondorBackend, site: Any, run_id: str, work_root: str, count: int) -> list[dict[str, str]]:
    """The submit descriptions the backend builds (work directories made, event log created)."""
    jobs = submissions(run_id, work_root, count)
    settings = backend._settings(backend._prepare_run_dir(run_id))
    for job in jobs:
        backend._prepare_workdir(job)
    return [description.job_description(job, site, settings) for job in jobs]


def part_submit(work_root: str, count: int, anchor_count: int, repeat: int) -> dict[str, Any]:
    """Schedd interaction only, same descriptions, same warm security session; the modes take
    turns `repeat` times and each reports its median (the machine's load varies)."""
    site = catalogue_in(work_root).get(SITE)
    held = dataclasses.replace(site, options={**site.options, "submit": {"hold": "true"}})
    backend = HTCondorBackend(held)
    backend.connection.run("warm-up", lambda schedd: schedd.query("ClusterId == 0", ["ClusterId"]))

    def transaction(late: bool) -> tuple[float, int, int]:
        run_id = "rbench" + uuid.uuid4().hex[:6]
        clusters = description.clusters(prepared(backend, held, run_id, work_root, count))

        def send(schedd: Any) -> None:
            for cluster in clusters:
                _submit_cluster(schedd, cluster=cluster, late=late)

        started = time.perf_counter()
        backend.connection.run("esap submit", send, idempotent=False)
        elapsed = time.perf_counter() - started
        remove_run(backend, run_id)
        return elapsed, count, len(clusters)

    def anchor() -> tuple[float, int, int]:
        run_id = "rbench" + uuid.uuid4().hex[:6]
        texts = prepared(backend, held, run_id, work_root, anchor_count)

        def one_by_one(_schedd: Any) -> None:
            for keys in texts:
                schedd = htcondor.Schedd()  # the anchor makes a fresh Schedd() for each job
                schedd.submit(htcondor.Submit(keys))

        started = time.perf_counter()
        backend.connection.run("anchor-style submit", one_by_one, idempotent=False)
        elapsed = time.perf_counter() - started
        remove_run(backend, run_id)
        return elapsed, anchor_count, anchor_count

    def whole_backend() -> tuple[float, int, int]:
        # work directories, event log, descriptions and the transaction
        run_id = "rbench" + uuid.uuid4().hex[:6]
        jobs = submissions(run_id, work_root, count)
        started = time.perf_counter()
        natives = backend.submit(jobs)
        elapsed = time.perf_counter() - started
        remove_run(backend, run_id)
        return elapsed, count, len({n.split(".")[0] for n in natives})

    modes = {"esap": lambda: transaction(True), "esap_client": lambda: transaction(False),
             "anchor": anchor, "backend": whole_backend}
    samples: dict[str, list[tuple[float, int, int]]] = {name: [] for name in modes}
    for _ in range(repeat):
        for name, measure in modes.items():
            samples[name].append(measure())
    backend.close()
    result: dict[str, Any] = {}
    for name, values in samples.items():
        elapsed, jobs, clusters = sorted(values)[len(values) // 2]
        result[name] = {"jobs": jobs, "seconds": elapsed, "jobs_per_s": jobs / elapsed, "clusters": clusters}
    result["ratio"] = result["esap"]["jobs_per_s"] / result["anchor"]["jobs_per_s"]
    result["ratio_backend"] = result["backend"]["jobs_per_s"] / result["anchor"]["jobs_per_s"]
    result["ratio_client"] = result["esap_client"]["jobs_per_s"] / result["anchor"]["jobs_per_s"]
    result["repeat"] = repeat
    return result


def part_e2e(work_root: str, count: int) -> dict[str, Any]:
    catalogue = catalogue_in(work_root)
    requests = [JobRequest(key=f"j{i}", spec=make_spec(["true"])) for i in range(count)]
    with Run.open(f"bench-e2e-{uuid.uuid4()}", catalogue=catalogue, store=open_store(), default_site=SITE) as run:
        started = time.perf_counter()
        run.submit(requests)
        submitted = time.perf_counter() - started
        final = run.wait(timeout=1800)
        elapsed = time.perf_counter() - started
        backend = run.backend(SITE)
        states: dict[str, int] = {}
        for record in final.values():
            states[record.state.value] = states.get(record.state.value, 0) + 1
        return {"jobs": count, "submit_seconds": submitted, "wall_seconds": elapsed,
                "schedd_queries": backend.query_count, "schedd_actions": backend.action_count, "states": states}


def pool_description() -> str:
    site = catalogue_in("/tmp").get(SITE)
    backend = HTCondorBackend(site)
    try:
        values = backend.describe()
    finally:
        backend.close()
    return (f"HTCondor {values.get('GlueCEInfoLRMSVersion', '?')}, {values.get('GlueCEInfoTotalCPUs', '?')} slots, "
            f"bindings {htcondor.version().split()[1]}")


def row(label: str, values: dict[str, Any]) -> str:
    return (f"| {label} | {values['jobs']} | {values['seconds']:.3f} | {values['jobs_per_s']:.0f} "
            f"| {values['clusters']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="jobs submitted in one transaction")
    parser.add_argument("--anchor-jobs", type=int, default=200, help="jobs submitted one by one")
    parser.add_argument("--e2e", type=int, default=200, help="trivial jobs run end to end")
    parser.add_argument("--repeat", type=int, default=3, help="turns of the submit modes (median reported)")
    parser.add_argument("--no-append", action="store_true", help="print, do not append to RESULTS.md")
    args = parser.parse_args()
    work_root = tempfile.mkdtemp(prefix="esap-bench-htc-", dir="/tmp")
    os.chmod(work_root, 0o755)
    load_before = os.getloadavg()[0]
    try:
        pool = pool_description()
        submit = part_submit(work_root, args.jobs, args.anchor_jobs, args.repeat)
        e2e = part_e2e(work_root, args.e2e)
    finally:
        shutil.rmtree(work_root, ignore_errors=True)
    esap, anchor = submit["esap"], submit["anchor"]
    verdict = "met" if submit["ratio"] >= TARGET_RATIO else "NOT met"
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    entry = f"""### {when} — {platform.node()} ({os.cpu_count()} cores), {pool}

| submission | jobs | seconds | jobs/s | clusters |
|---|---:|---:|---:|---:|
{row("esap: one transaction, item data, late materialization (default)", esap)}
{row("esap: one transaction, item data, procs made by the client", submit["esap_client"])}
{row("anchor: fresh `Schedd()` + one submit per job", anchor)}
{row("esap `backend.submit` (+ work dirs, event log, descriptions)", submit["backend"])}

Medians of {submit['repeat']} turns. Ratio of jobs/s, schedd interaction only (same descriptions,
warm security session): **{submit['ratio']:.1f}x** with one transaction (target >= {TARGET_RATIO:.0f}x: {verdict});
{submit['ratio_client']:.1f}x when the client makes the procs; {submit['ratio_backend']:.1f}x for the whole
`backend.submit` against the anchor's submits alone. Load average (1 min) before and after:
{load_before:.1f}, {os.getloadavg()[0]:.1f} (other work shared the machine and the pool).

End to end, {e2e['jobs']} trivial jobs (`true`) through the Run API: submitted in
{e2e['submit_seconds']:.2f} s, all final after **{e2e['wall_seconds']:.1f} s** ({e2e['states']});
status tracking made {e2e["schedd_queries"]} schedd queries (0: the job event log alone) and
{e2e['schedd_actions']} schedd submission(s).
"""
    print(entry)
    if not args.no_append:
        append_to_section(SECTION, entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
