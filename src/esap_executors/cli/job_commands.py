"""`esap run`, `submit`, `status`, `cancel`, `logs`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..checkpoint import Checkpoint, parse_checkpoint
from ..errors import BadInput, EsapError
from ..esap.basket_cli import add_source_options
from ..formats.expressions import parse_classad_expression
from ..formats.printable import escaped, shown
from ..job import Container, make_spec
from ..notify import Notifier
from ..report.at_end import end_of_run
from ..retry_policy import parse_cli
from ..right_size import remember_usage, right_size, step_of
from ..runs import JobRequest, Run, run_id_for
from ..segments import Step, segment_outcome, steps_of
from ..sites import Catalogue
from ..states import JobState, JobStatus
from ..store import JobRecord, Store
from ..stores import open_store
from ..tracker import tracker_for
from .arguments import MAX_LISTED, add_id_argument, job_or_run, seconds_between, whole_number
from .interactive import open_interactive
from .main import global_options

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    for name, helptext in (("run", "submit a job (or a JDL file) and wait for it"),
                           ("submit", "submit a job (or a JDL file) and print its id")):
        parser = subparsers.add_parser(name, parents=[global_options()], help=helptext)
        add_job_options(parser)
        if name == "run":
            add_end_options(parser)
            parser.add_argument("--interactive", action="store_true",
                                help="start the software of --image as a session to open (a site with "
                                     "interactive jobs, e.g. Rosetta), print where to open it, and return")
            parser.add_argument("--image", help="--interactive: the software to open (a name the site lists)")
        parser.set_defaults(handler=run_command if name == "run" else submit_command)

    status = subparsers.add_parser("status", parents=[global_options()], help="state of jobs")
    add_id_argument(status, "esap job id (or the scheduler's id), or a run id", optional=True)
    status.add_argument("--json", action="store_true")
    status.add_argument("--limit", type=whole_number(1, MAX_LISTED), default=20,
                        help="how many recent jobs without an ID")
    status.add_argument("--watch", action="store_true",
                        help="a live view of the run (default: the latest) until it is final")
    status.add_argument("--interval", type=seconds_between(0.1, 86400), default=2.0,
                        help="--watch: seconds between refreshes")
    status.set_defaults(handler=status_command)

    cancel = subparsers.add_parser("cancel", parents=[global_options()],
                                   help="cancel a job, or every job of a run")
    add_id_argument(cancel, "esap job id (or the scheduler's id), or a run id")
    cancel.set_defaults(handler=cancel_command)

    logs = subparsers.add_parser("logs", parents=[global_options()], help="print a job's stdout and stderr")
    add_id_argument(logs, "esap job id (or the scheduler's id)")
    logs.set_defaults(handler=logs_command)


def add_job_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", help="site name; default: matchmaking, which picks 'local' without requirements")
    parser.add_argument("--cores", default=None, help="CPU cores of the whole job (default 1, or one per task)")
    parser.add_argument("--tasks", default=None,
                        help="MPI tasks: the command starts them with srun or mpirun (SLURM: --ntasks)")
    parser.add_argument("--mem", default=None, help="memory, e.g. 512M, 2G (a bare number is MiB)")
    parser.add_argument("--walltime", default=None, help="e.g. 10m, 2h, 30:00, 1-00:00:00")
    parser.add_argument("--gpus", default=None)
    parser.add_argument("--scratch", default=None, help="local scratch space, e.g. 10G")
    parser.add_argument("--container", help="image name from the site's image map")
    parser.add_argument("--requirements", help="ClassAd expression on the site (other.X)")
    parser.add_argument("--rank", help="ClassAd expression ranking matching sites")
    parser.add_argument("--account")
    parser.add_argument("--partition")
    parser.add_argument("--qos")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--retry", action="append", default=[], metavar="CAUSE[:CHANGE,...]",
                        help="retry a failure of this cause (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, PREEMPTED, HELD, "
                             "EXIT_CODE) with changes, e.g. OUT_OF_MEMORY:memory=x2,up_to=64G, "
                             "TIMEOUT:walltime=x1.5, NODE_FAIL:avoid_node (repeatable)")
    parser.add_argument("--max-retries", type=int, default=None, metavar="N",
                        help="at most N retries (alone: any failure is retried unchanged up to N times)")
    parser.add_argument("--checkpoint", metavar="SIGNAL@BEFORE[:CODE]",
                        help="send SIGNAL this long before the walltime (e.g. USR1@2m); an exit with CODE "
                             "(default 85) continues the job in the same directory")
    parser.add_argument("--right-size", action="store_true",
                        help="memory and walltime from what earlier runs of this job (its --name) used on the site")
    parser.add_argument("--name", help="a name for the job")
    parser.add_argument("--run-id", dest="run_key", help="run key: the same key reattaches instead of resubmitting")
    parser.add_argument("--output-dir", help="JDL: where the output sandbox goes")
    parser.add_argument("--inputs-from-basket", action="store_true", default=None,
                        help="JDL: every file of your ESAP shopping basket becomes an InputSandbox entry "
                             "(each item is checked first; --esap URL or $ESAP_GATEWAY_URL)")
    add_source_options(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ARGS... or a .jdl file")


def add_end_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--notify", metavar="URL",
                        help="when the run ends, POST its summary as JSON to this http(s) URL (retried)")
    parser.add_argument("--notify-token", action="store_true",
                        help="send the platform token (esap login, $BEARER_TOKEN) with the notice")


def _notifier(args: argparse.Namespace) -> Notifier | None:
    url = getattr(args, "notify", None)
    return Notifier.for_url(url, with_token=args.notify_token) if url is not None else None


def _command(args: argparse.Namespace) -> list[str]:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise BadInput("no command given (esap run [options] -- COMMAND ARGS...)", field="command")
    return command


def _is_jdl(args: argparse.Namespace) -> bool:
    command = [c for c in args.command if c != "--"]
    return bool(command) and command[0].endswith(".jdl")


# options naming something: an empty value names nothing (it would silently mean "the default")
_NAME_OPTIONS = ("site", "name", "account", "partition", "qos", "container", "run_key", "output_dir")


def check_named_options(args: argparse.Namespace) -> None:
    for option in _NAME_OPTIONS:
        value = getattr(args, option, None)
        flag = "--" + ("run-id" if option == "run_key" else option.replace("_", "-"))
        if value is not None and not value.strip():
            raise BadInput("is empty: give a name or leave the option out", field=flag)
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise BadInput(f"{shown(value)} contains control characters", field=flag)


def _check_command(command: list[str]) -> None:
    program = command[0]
    if not program:
        raise BadInput("the command is an empty string", field="command")
    if "/" in program:
        path = Path(program)
        if path.is_dir():
            raise BadInput(f"{shown(program)} is a directory, not a program", field="command")
        if path.exists() and not os.access(path, os.X_OK):
            raise BadInput(f"{shown(program)} is not executable (chmod +x, or run it with its interpreter)",
                           field="command")


def _request(args: argparse.Namespace, command: list[str]) -> JobRequest:
    if args.inputs_from_basket:
        raise BadInput("applies to JDL jobs (esap run job.jdl); for CWL see esap-cwltool --inputs-from-basket",
                       field="--inputs-from-basket")
    check_named_options(args)
    _check_command(command)
    for option in ("requirements", "rank"):
        if getattr(args, option) is not None:
            parse_classad_expression(getattr(args, option), field=f"--{option}")
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise BadInput(f"{shown(item)} is not NAME=VALUE", field="--env")
        env[name] = value
    spec = make_spec(
        command,
        cores=args.cores,
        tasks=args.tasks,
        memory=args.mem,
        walltime=args.walltime,
        gpus=args.gpus,
        scratch=args.scratch,
        env=env,
        cwd=os.getcwd(),
        container=Container(args.container) if args.container else None,
        requirements=args.requirements,
        rank=args.rank,
        account=args.account,
        partition=args.partition,
        qos=args.qos,
        labels={"front": "cli"},
        retry_policy=parse_cli(args.retry, args.max_retries),
        checkpoint=_checkpoint(args),
        retries=args.max_retries if args.max_retries is not None and not args.retry else 0,
    )
    return JobRequest(key="job", spec=spec, site=args.site, name=args.name or Path(command[0]).name)


def _interactive(args: argparse.Namespace) -> int:
    """`esap run --interactive --image I`: the session is a job of its own run (status, cancel);
    esap waits until the site runs it, prints where to open it and the stop command, and returns."""
    if _is_jdl(args):  # (the file says JobType = "Interactive" and its Image)
        from ..jdl.cli import run_jdl

        return run_jdl(args, wait=False)
    if not args.interactive:
        raise BadInput("--image names the software of an interactive job: add --interactive", field="--image")
    if not args.image:
        raise BadInput("an interactive job needs the software it opens: --image NAME", field="--image")
    command = [c for c in args.command if c != "--"]
    if command:
        raise BadInput("an interactive job runs its software, not a command: drop the command after --",
                       field="command")
    spec = make_spec(
        (), cores=args.cores, memory=args.mem, walltime=args.walltime, env={}, interactive=True,
        container=Container(args.image), requirements=args.requirements, rank=args.rank,
        account=args.account, partition=args.partition, qos=args.qos, labels={"front": "cli"},
    )
    run = _open_run(args)
    try:
        record = run.submit([JobRequest(key="interactive", spec=spec, site=args.site,
                                        name=args.name or args.image)])[0]
        return open_interactive(run, record, quiet=args.json)
    finally:
        run.close()


def _open_run(args: argparse.Namespace) -> Run:
    key = args.run_key or f"cli-{uuid.uuid4()}"
    return Run.open(key, catalogue=Catalogue.load(args.sites), store=open_store(), front="cli")


def submit_command(args: argparse.Namespace) -> int:
    check_named_options(args)
    if _is_jdl(args):
        from ..jdl.cli import run_jdl

        return run_jdl(args, wait=False)
    request = _request(args, _command(args))
    run = _open_run(args)
    try:
        record = run.submit([request])[0]
    finally:
        run.close()
    if args.json:
        print(json.dumps(_as_dict(record)))
    else:
        print(f"{record.job_id}  {record.site}:{record.native_id}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    check_named_options(args)
    if args.interactive or args.image:
        return _interactive(args)
    notifier = _notifier(args)
    if _is_jdl(args):
        from ..jdl.cli import run_jdl

        args.run_key = args.run_key or f"jdl-{uuid.uuid4()}"
        code = run_jdl(args, wait=True)
        jdl = Path(next(c for c in args.command if c != "--")).resolve()
        store = open_store()
        store.update_run_metadata(run_id_for(args.run_key), {"workflow": {"path": str(jdl), "language": "jdl"}})
        if notifier is not None:
            end_of_run(store, Catalogue.load(args.sites), run_id_for(args.run_key), notifier=notifier)
        return code
    request = _request(args, _command(args))
    run = _open_run(args)
    quiet = args.json

    def progress(record: JobRecord, status: JobStatus) -> None:
        if not quiet:
            note = f" [attempt {record.attempt + 1}, {record.retry_note}]" if record.retry_note else ""
            print(f"esap: {record.job_id} ({record.site}:{record.native_id}) {status.describe()}{note}",
                  file=sys.stderr, flush=True)

    run.add_listener(progress)
    try:
        if args.right_size:
            request = _right_sized(run, request, quiet)
        record = run.submit([request])[0]
        if not quiet:
            sent = (f"as {record.native_id}" if record.native_id
                    else "(recorded; sent when the site's submission limits allow)")
            print(f"esap: submitted {record.job_id} to {record.site} {sent}", file=sys.stderr, flush=True)
        try:
            final = run.wait([record.job_id])
        except KeyboardInterrupt:
            run.cancel([record.job_id])
            print(f"esap: cancelling {record.job_id}", file=sys.stderr)
            final = run.wait([record.job_id], timeout=60)
        record = next(iter(final.values()))
    finally:
        run.close()
    try:  # what it used, for the next run's --right-size
        remember_usage(run.store, run.catalogue, [record])
    except EsapError as exc:
        log.info("usage of %s not recorded: %s", record.job_id, exc)
    if notifier is not None:
        end_of_run(run.store, run.catalogue, run.run_id, notifier=notifier)
    if args.json:
        print(json.dumps(_as_dict(record)))
    else:
        _print_file(record.stdout, sys.stdout)
        _print_file(record.stderr, sys.stderr)
        print(f"esap: {record.job_id} {record.status().describe()}", file=sys.stderr)
        if record.retry_note:
            print(f"esap: {record.job_id} (attempt {record.attempt + 1}) {record.retry_note}", file=sys.stderr)
    return 0 if record.state is JobState.COMPLETED else 1


def explanation(record: JobRecord) -> str:
    """The REASON column: cause, the scheduler's reason, and what the retry policy did."""
    words = []
    if record.cause and record.cause not in (record.reason or ""):
        words.append(record.cause + ":")
    if record.reason:
        words.append(record.reason)
    if record.retry_note:
        words.append(f"[{record.retry_note}]")
    return " ".join(words)


def _checkpoint(args: argparse.Namespace) -> Checkpoint | None:
    if not args.checkpoint:
        return None
    if not args.walltime:
        raise BadInput("a checkpoint signal comes before the walltime: give --walltime", field="--checkpoint")
    return parse_checkpoint(args.checkpoint)


def _right_sized(run: Run, request: JobRequest, quiet: bool) -> JobRequest:
    site = run.choose_site(request).name
    spec, note = right_size(run.store, request.spec, step_of(request.spec, request.name), site)
    if note and not quiet:
        print(f"esap: {note}", file=sys.stderr, flush=True)
    return replace(request, spec=spec, site=site)


def _print_file(path: str, stream: Any) -> None:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return
    stream.write(text)
    stream.flush()


def _as_dict(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.job_id,
        "run": record.run_id,
        "name": record.name,
        "site": record.site,
        "native_id": record.native_id,
        "state": record.state.value,
        "exit_code": record.exit_code,
        "signal": record.signal,
        "reason": record.reason,
        "cause": record.cause,
        "node": record.node,
        "attempt": record.attempt,
        "retry_note": record.retry_note,
        "workdir": record.workdir,
        "stdout": record.stdout,
        "stderr": record.stderr,
        "missing_outputs": list(record.missing_outputs),
        "submitted": record.created,
        "updated": record.updated,
    }


def status_command(args: argparse.Namespace) -> int:
    store = open_store()
    catalogue = Catalogue.load(args.sites)
    if args.watch:
        return watch_command(store, catalogue, args)
    if args.id:
        records = job_or_run(store, args.id, prefix=args.prefix)  # a run id lists the run's jobs
    else:
        records = store.latest_jobs(args.limit)
    single = bool(args.id) and len(records) == 1 and records[0].run_id != args.id
    with tracker_for(store, catalogue) as tracker:
        records = tracker.refresh(records)
    records.sort(key=lambda r: (r.created, r.job_id))
    steps = steps_of(records)  # a checkpointed step's segments: one row, its segments inside
    if args.json:
        payload: Any = [_step_dict(step) for step in steps]
        print(json.dumps(payload[0] if single else payload, indent=2))
        return 0
    print(f"{'ID':<22} {'SITE':<18} {'SCHEDULER-ID':<14} {'STATE':<10} {'EXIT':<5} {'NAME':<20} REASON")
    for step in steps:
        r = step.record
        exit_text = "" if r.exit_code is None else str(r.exit_code)
        missing = f" missing outputs: {', '.join(r.missing_outputs)}" if r.missing_outputs else ""
        print(f"{r.job_id:<22} {r.site:<18} {r.native_id or '-':<14} {r.state.value:<10} {exit_text:<5} "
              f"{escaped(r.name)[:20]:<20} {escaped(explanation(r))}{escaped(missing)}")
        for number, segment in enumerate(step.segments, start=1):
            print(f"  segment {number}/{len(step.segments)}: {segment.job_id} "
                  f"{segment.site}:{segment.native_id or '-'} {segment_outcome(segment)}")
    return 0


def _step_dict(step: Step) -> dict[str, Any]:
    data = _as_dict(step.record)
    if step.segments:
        data["segments"] = [_as_dict(segment) for segment in step.segments]
    return data


def watch_command(store: Store, catalogue: Catalogue, args: argparse.Namespace) -> int:
    from .watch import watch

    if args.interval <= 0:
        raise BadInput(f"{args.interval} is not a positive number of seconds", field="--interval")
    if args.id:
        run = store.run(args.id)
        if run is None:
            raise BadInput(f"no run {args.id!r} in the state store {store.describe()} (see `esap runs`)", field="RUN")
    else:
        latest = store.latest_runs(1)
        if not latest:
            raise BadInput(f"no run in the state store {store.describe()}", field="RUN")
        run = latest[0]
    run_id, _key, front, created = run
    watch(store, catalogue, run_id, front, created, interval=args.interval, stream=sys.stdout,
          terminal=sys.stdout.isatty())
    return 0


def cancel_command(args: argparse.Namespace) -> int:
    """Cancel a job, or every live job of a run (one scheduler call per site)."""
    store = open_store()
    catalogue = Catalogue.load(args.sites)
    records = job_or_run(store, args.id, prefix=args.prefix)
    live = [r for r in records if not r.state.is_final]
    if not live:
        for record in records:
            print(f"{record.job_id} is already {record.state.value}")
        return 0
    with tracker_for(store, catalogue) as tracker:
        tracker.cancel(live)
        deadline = time.monotonic() + 30
        while True:
            live = [r for r in tracker.refresh(live) if not r.state.is_final]
            if not live or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    for record in store.jobs_by_ids([r.job_id for r in records]):
        print(f"{record.job_id} {record.state.value}")
    return 0


def logs_command(args: argparse.Namespace) -> int:
    store = open_store()
    record = store.job(args.id, prefix=args.prefix)
    for label, path, stream in (("stdout", record.stdout, sys.stdout), ("stderr", record.stderr, sys.stderr)):
        if not Path(path).exists():
            print(f"esap: no {label} yet at {path}", file=sys.stderr)
            continue
        _print_file(path, stream)
    return 0
