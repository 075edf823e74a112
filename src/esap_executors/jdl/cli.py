"""`esap run job.jdl` / `esap submit job.jdl`, and `esap output ID`."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..cli.interactive import open_interactive
from ..cli.progress import RunProgress
from ..errors import BadInput, EsapError
from ..esap.basket_cli import basket_inputs
from ..formats.printable import escaped
from ..paths import state_dir
from ..retry_policy import parse_cli
from ..runs import JobRequest, Run
from ..sites import Catalogue
from ..states import JobState, JobStatus
from ..store import JobRecord
from ..stores import open_store
from ..tracker import tracker_for
from . import records
from .basket import with_basket_sandbox
from .placement import choose_site, fit_to_site
from .sandbox import Retrieval, check_destinations, copy_present, prefetch, register_transfers, retrieve
from .translate import JdlDescription, JdlJob, load

# core job options that a JDL file sets itself
_NOT_FOR_JDL = {
    "cores": "CpuNumber", "mem": "Requirements on GlueHostMainMemoryRAMSize", "walltime": "CPUTime",
    "gpus": None, "scratch": None, "container": "Image", "image": "Image", "requirements": "Requirements",
    "rank": "Rank", "name": "JobName", "max_retries": "RetryCount or ShallowRetryCount", "checkpoint": None,
    "right_size": None,
}


def run_jdl(args: argparse.Namespace, wait: bool) -> int:
    path = _jdl_path(args)
    register_transfers()
    description = load(path)
    for warning in description.warnings:
        print(f"esap: warning: {warning}", file=sys.stderr)
    basket = basket_inputs(args) if getattr(args, "inputs_from_basket", None) else []
    catalogue = Catalogue.load(args.sites)
    site = choose_site(catalogue, description, getattr(args, "site", None))
    jobs = with_basket_sandbox(fit_to_site(description, site), basket)
    key = getattr(args, "run_key", None) or f"jdl-{uuid.uuid4()}"
    run = Run.open(key, catalogue=catalogue, store=open_store(), front="jdl")
    quiet = bool(getattr(args, "json", False))
    progress: RunProgress | None = None
    try:
        jobs = _with_storage_checked(path, jobs, run.run_id, snapshot_local=not site.shared_filesystem)
        jobs = _with_billing(jobs, args)
        jobs = _with_retry_rules(jobs, args)
        # an interactive session is not waited for: esap prints where to open it, or one error line
        interactive = jobs[0].spec.interactive
        progress = RunProgress(len(jobs), sys.stderr, _progress) if wait and not quiet and not interactive else None
        if progress is not None:
            run.add_listener(progress.on_change)
        requests = [JobRequest(key=job.key, spec=job.spec, site=site.name, name=job.name) for job in jobs]
        submitted = run.submit(requests)
        if interactive:  # one session: where to open it, and return
            return open_interactive(run, submitted[0], quiet=quiet)
        first_ids = _first_job_ids(run)
        output_dirs = _output_dirs(args, {job.key: first_ids[job.key] for job in jobs})
        records.save(run.store, [
            records.JdlRecord(run.run_id, job.key, str(Path(path).resolve()), job.outputs, output_dirs[job.key],
                              description.perusal_interval)
            for job in jobs
        ])
        if not wait:
            _print_submitted(submitted, quiet)
            return 0
        if not quiet:
            print(f"esap: submitted {len(submitted)} job(s) to {site.name}"
                  + (f" ({submitted[0].job_id})" if len(submitted) == 1 else ""), file=sys.stderr, flush=True)
        final = _wait(run, description, submitted, output_dirs)
    finally:
        if progress is not None:
            progress.close()
        run.close()
    by_key = {job.key: job for job in jobs}
    results = []
    code = 0
    for record in final:
        outcome = retrieve(Path(record.workdir), by_key[record.key].outputs, output_dirs[record.key])
        results.append((record, outcome, output_dirs[record.key]))
        if record.state is not JobState.COMPLETED or outcome.failed:
            code = 1
    _report(results, quiet)
    run.store.update_run_metadata(run.run_id, _sandbox_metadata(jobs, results))
    return code


def _sandbox_metadata(jobs: Sequence[JdlJob],
                      results: Sequence[tuple[JobRecord, Retrieval, Path]]) -> dict[str, object]:
    """The run's input and output sandboxes on this machine, for its provenance (esap report --ro-crate)."""
    inputs: dict[str, dict[str, str]] = {}
    for job in jobs:
        for item in job.spec.stage_in:
            if "://" not in item.source and item.source not in inputs:
                inputs[item.source] = {"path": str(Path(item.source).resolve()), "name": item.dest}
    outputs = [{"path": location, "name": Path(location).name}
               for _, outcome, _ in results for location in outcome.retrieved if "://" not in location]
    return {"inputs": list(inputs.values()), "outputs": outputs}


def _trailing_options(args: argparse.Namespace, extra: list[str]) -> None:
    """Options written after the file (`esap run job.jdl --output-dir D`) are read too."""
    parser = argparse.ArgumentParser(prog="esap run FILE.jdl", add_help=False, exit_on_error=False)
    parser.add_argument("--site")
    parser.add_argument("--output-dir")
    parser.add_argument("--run-id", dest="run_key")
    parser.add_argument("--json", action="store_true", default=None)
    parser.add_argument("--inputs-from-basket", action="store_true", default=None)
    parser.add_argument("--esap", dest="basket_gateway")
    parser.add_argument("--rucio", dest="basket_rucio")
    try:
        found, unknown = parser.parse_known_args(extra)
    except argparse.ArgumentError as exc:
        raise BadInput(str(exc), field="command") from None
    if unknown:
        raise BadInput(f"a JDL file takes no further arguments (got {' '.join(unknown)}); "
                       "set Arguments in the file", field="command")
    for name, value in vars(found).items():
        if value is not None:
            setattr(args, name, value)


def _jdl_path(args: argparse.Namespace) -> str:
    command = [c for c in args.command if c != "--"]
    _trailing_options(args, command[1:])
    for option, attribute in _NOT_FOR_JDL.items():
        if getattr(args, option, None):
            hint = f": set {attribute} in the file" if attribute else ""
            flag = "--" + option.replace("_", "-")
            raise BadInput(f"{flag} does not apply to a JDL job{hint}", field=flag)
    if getattr(args, "env", None):
        raise BadInput("--env does not apply to a JDL job: set Environment in the file", field="--env")
    return command[0]


def _with_storage_checked(path: str, jobs: Sequence[JdlJob], run_id: str, *,
                          snapshot_local: bool) -> list[JdlJob]:
    """Before anything is submitted: output destinations writable (by the token's scopes), inputs fetched.

    A missing input URL, a refused token or a checksum mismatch stops the whole run, named with
    the JDL file and attribute.
    """
    try:
        for job in jobs:
            check_destinations(job.outputs)
    except EsapError as exc:
        raise exc.with_prefix(f"{path}: OutputSandboxDestURI: ") from None
    try:
        return _with_inputs_fetched(jobs, run_id, snapshot_local=snapshot_local)
    except BadInput as exc:
        raise BadInput(str(exc), source=path, field="InputSandbox") from None
    except EsapError as exc:
        raise exc.with_prefix(f"{path}: InputSandbox: ") from None


def _with_inputs_fetched(jobs: Sequence[JdlJob], run_id: str, *, snapshot_local: bool) -> list[JdlJob]:
    """URL inputs are downloaded before anything is submitted: a bad URL or certificate stops all."""
    cache = state_dir() / "jdl-inputs" / run_id
    return [
        replace(job, spec=job.spec.with_changes(
            stage_in=prefetch(job.spec.stage_in, cache, snapshot_local=snapshot_local)))
        for job in jobs
    ]


def _with_retry_rules(jobs: Sequence[JdlJob], args: argparse.Namespace) -> list[JdlJob]:
    """--retry rules by cause; RetryCount and ShallowRetryCount keep retrying any failure as is."""
    policy = parse_cli(getattr(args, "retry", None) or [], None)
    if policy is None:
        return list(jobs)
    return [replace(job, spec=job.spec.with_changes(retry_policy=policy)) for job in jobs]


def _with_billing(jobs: Sequence[JdlJob], args: argparse.Namespace) -> list[JdlJob]:
    changes = {name: getattr(args, name) for name in ("account", "partition", "qos") if getattr(args, name, None)}
    if not changes:
        return list(jobs)
    return [replace(job, spec=job.spec.with_changes(**changes)) for job in jobs]


def _first_job_ids(run: Run) -> dict[str, str]:
    """The id of each job's first attempt: its output directory keeps that name across retries."""
    first: dict[str, JobRecord] = {}
    for record in run.store.jobs_of_run(run.run_id):
        if record.key not in first or record.attempt < first[record.key].attempt:
            first[record.key] = record
    return {key: record.job_id for key, record in first.items()}


def _output_dirs(args: argparse.Namespace, job_ids: dict[str, str]) -> dict[str, Path]:
    chosen = getattr(args, "output_dir", None)
    dirs = {}
    for key, job_id in job_ids.items():
        if chosen is None:
            dirs[key] = (Path.cwd() / "esap-output" / job_id).resolve()
        elif len(job_ids) > 1:
            dirs[key] = (Path(chosen) / job_id).resolve()
        else:
            dirs[key] = Path(chosen).resolve()
    return dirs


def _progress(record: JobRecord, status: JobStatus) -> None:
    print(f"esap: {record.job_id} {escaped(record.name)} ({record.site}:{record.native_id}) {status.describe()}",
          file=sys.stderr, flush=True)


def _print_submitted(submitted: Sequence[JobRecord], quiet: bool) -> None:
    if quiet:
        print(json.dumps([{"id": r.job_id, "name": r.name, "site": r.site, "native_id": r.native_id}
                          for r in submitted]))
        return
    for record in submitted:
        print(f"{record.job_id}  {record.site}:{record.native_id}")
    print("esap: follow with `esap status ID`; fetch the output sandbox with `esap output ID`", file=sys.stderr)


def _wait(run: Run, description: JdlDescription, submitted: Sequence[JobRecord],
          output_dirs: dict[str, Path]) -> list[JobRecord]:
    ids = [r.job_id for r in submitted]
    perusal = description.perusal_interval
    step = float(perusal) if perusal else 5.0
    outputs = {job.key: [o.name for o in job.outputs] for job in description.jobs}
    expired: set[str] = set()
    try:
        while True:
            timeout = step
            if description.expiry and time.time() < description.expiry:
                timeout = max(0.5, min(step, description.expiry - time.time() + 0.5))
            latest = run.wait(ids, timeout=timeout)
            if all(run.settled(r) for r in latest.values()):
                break
            live = [r for r in latest.values() if not r.state.is_final]
            if perusal:
                for record in live:
                    if record.state is JobState.RUNNING:
                        copy_present(Path(record.workdir), outputs[record.key], output_dirs[record.key])
            if description.expiry and time.time() > description.expiry:
                late = [r.job_id for r in live if r.state is JobState.QUEUED and r.job_id not in expired]
                if late:
                    expired.update(late)
                    print(f"esap: ExpiryTime passed: cancelling {len(late)} job(s) that never started",
                          file=sys.stderr)
                    run.cancel(late)
    except KeyboardInterrupt:
        print("esap: interrupted: cancelling the job(s)", file=sys.stderr)
        run.cancel(ids)
        latest = run.wait(ids, timeout=60)
    order = {r.key: i for i, r in enumerate(submitted)}
    return sorted(latest.values(), key=lambda r: order.get(r.key, 0))


def _report(results: Sequence[tuple[JobRecord, Retrieval, Path]], quiet: bool) -> None:
    if quiet:
        print(json.dumps([_as_dict(record, outcome, folder) for record, outcome, folder in results]))
        return
    for record, outcome, folder in results:
        print(f"{record.job_id} {escaped(record.name)}: {record.status().describe()} on {record.site}")
        if outcome.retrieved:
            print(f"  output sandbox in {folder}: " + ", ".join(_shown(p, folder) for p in outcome.retrieved))
        for name in outcome.missing:
            print(f"  missing: {name} (in OutputSandbox, not produced by the job)")
        for failure in outcome.failed:
            print(f"  not retrieved: {failure}")


def _shown(location: str, folder: Path) -> str:
    path = Path(location)
    return str(path.relative_to(folder)) if path.is_absolute() and path.is_relative_to(folder) else location


def _as_dict(record: JobRecord, outcome: Retrieval, folder: Path) -> dict[str, Any]:
    return {
        "id": record.job_id, "name": record.name, "site": record.site, "native_id": record.native_id,
        "state": record.state.value, "exit_code": record.exit_code, "reason": record.reason,
        "cause": record.cause, "retry_note": record.retry_note,
        "attempt": record.attempt, "workdir": record.workdir, "output_dir": str(folder),
        "retrieved": outcome.retrieved, "missing": outcome.missing,
        "failed": outcome.failed,
    }


# --- esap output ------------------------------------------------------------------------------
def output_command(args: argparse.Namespace) -> int:
    register_transfers()
    store = open_store()
    record = store.job(args.id, prefix=args.prefix)
    meta = records.find(store, record.run_id, record.key)
    if meta is None:
        raise BadInput(f"{record.job_id} is not a JDL job: it has no output sandbox (see `esap logs`)", field="ID")
    attempts = [r for r in store.jobs_of_run(record.run_id) if r.key == record.key]
    record = max(attempts, key=lambda r: r.attempt)
    with tracker_for(store, Catalogue.load(args.sites)) as tracker:
        record = tracker.refresh([record])[0]
    folder = Path(args.dir).resolve() if args.dir else meta.output_dir
    if not record.state.is_final:
        if meta.perusal_interval is None:
            print(f"esap: {record.job_id} is {record.state.value}; its output sandbox comes back when it ends",
                  file=sys.stderr)
            return 1
        copied = copy_present(Path(record.workdir), [o.name for o in meta.outputs], folder)
        print(f"{record.job_id} {escaped(record.name)}: {record.state.value}; perusal copy in {folder}: "
              + (", ".join(copied) or "no file yet"))
        return 0
    outcome = retrieve(Path(record.workdir), meta.outputs, folder)
    _report([(record, outcome, folder)], bool(getattr(args, "json", False)))
    return 1 if outcome.failed else 0
