"""`esap uws submit|status|results|abort`: workflows as ESAP asynchronous (UWS) jobs, run by the
gateway's `esap-executors` worker."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..cli.main import global_options
from ..errors import BadInput, Unreachable
from .http import GATEWAY_ENV, get_bytes
from .uws_client import UwsGateway
from .uws_parameters import (
    FRONTS,
    STATUS_RESULT,
    URL_SCHEMES,
    Source,
    UwsJobRequest,
    binding,
    catalogue_source,
    plain_name,
    to_parameters,
)
from .uws_seal import PUBLIC_KEY_ENV, new_key_pair, seal, worker_public_key


def register(subparsers: Any) -> None:
    parents = [global_options()]
    gateway = argparse.ArgumentParser(add_help=False)
    gateway.add_argument("--esap", "--gateway", dest="gateway", metavar="URL", default=os.environ.get(GATEWAY_ENV),
                         help=f"the ESAP API gateway (default: ${GATEWAY_ENV}; --gateway is the same)")
    uws = subparsers.add_parser("uws", parents=parents, help="workflows as ESAP asynchronous (UWS) jobs")
    commands = uws.add_subparsers(dest="uws_command", metavar="COMMAND", required=True)

    submit = commands.add_parser("submit", parents=[*parents, gateway], help="submit and start a workflow")
    submit.add_argument("--front", choices=FRONTS, required=True)
    submit.add_argument("--site", help="a site of the worker's catalogue")
    submit.add_argument("--requirements", help="a ClassAd expression choosing the site (snakemake)")
    submit.add_argument("--file", action="append", default=[], metavar="PATH",
                        help="a further file beside the workflow (repeatable)")
    submit.add_argument("--run-id", help="the UWS runId (default: the workflow's file name)")
    submit.add_argument("--worker-key", metavar="PEM", default=os.environ.get(PUBLIC_KEY_ENV),
                        help=f"the worker's public key, a file or URL (default: ${PUBLIC_KEY_ENV})")
    submit.add_argument("--catalogue-entry", metavar="ENTRY",
                        help="run a software-catalogue entry (ossr/<record>, ida/<name>, batch/<name>) as the "
                             "worker's catalogue describes it, instead of WORKFLOW (front cwl; INPUTS its job order)")
    submit.add_argument("--image", help="with --catalogue-entry: the container image the software runs in")
    submit.add_argument("workflow", metavar="WORKFLOW", nargs="?", help="a local file, or an http(s)/file URL")
    submit.add_argument("inputs", metavar="INPUTS", nargs="?", help="CWL inputs or Snakemake config")
    submit.set_defaults(handler=submit_command)

    status = commands.add_parser("status", parents=[*parents, gateway], help="a job's phase and its run's jobs")
    status.add_argument("id", metavar="ID")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=status_command)

    results = commands.add_parser("results", parents=[*parents, gateway], help="a job's results")
    results.add_argument("id", metavar="ID")
    results.add_argument("--download", metavar="DIR", help="copy the output files into DIR")
    results.set_defaults(handler=results_command)

    keygen = commands.add_parser("keygen", parents=parents,
                                 help="a worker's key pair (the private key 0600; publish the public one)")
    keygen.add_argument("private", metavar="PRIVATE_PEM")
    keygen.add_argument("public", metavar="PUBLIC_PEM")
    keygen.set_defaults(handler=keygen_command)

    abort = commands.add_parser("abort", parents=[*parents, gateway], help="abort a job (its scheduler jobs too)")
    abort.add_argument("id", metavar="ID")
    abort.set_defaults(handler=abort_command)


def _platform_token() -> str:
    from ..auth.config import load_config
    from ..auth.tokens import find_token

    return find_token(load_config()).token


def _gateway(args: argparse.Namespace, token: str | None = None) -> UwsGateway:
    if not args.gateway:
        raise BadInput(f"no ESAP gateway: give --esap URL or set ${GATEWAY_ENV}", field="--esap")
    if urlsplit(args.gateway).scheme not in ("http", "https"):
        raise BadInput(f"{args.gateway!r} is not an http(s) URL", field="--esap")
    return UwsGateway(args.gateway, token or _platform_token())


def _job_id(text: str) -> int:
    if not text.isdigit():
        raise BadInput(f"{text!r} is not a UWS job id (a number)", field="ID")
    return int(text)


def _source(text: str, what: str) -> Source:
    if urlsplit(text).scheme in URL_SCHEMES:
        return Source(name=Path(urlsplit(text).path).name or what, url=text)
    path = Path(text)
    if not path.is_file():
        raise BadInput("no such file", source=text, field=what)
    try:
        return Source(name=plain_name(path.name, what), content=path.read_text())
    except UnicodeDecodeError:
        raise BadInput("not a text file", source=text, field=what) from None


def _workflow(args: argparse.Namespace) -> tuple[Source, Source | None]:
    """The workflow and inputs: WORKFLOW [INPUTS], or --catalogue-entry ENTRY [INPUTS]."""
    if args.catalogue_entry is None:
        if args.image:
            raise BadInput("only with --catalogue-entry ENTRY", field="--image")
        if args.workflow is None:
            raise BadInput("missing: give WORKFLOW or --catalogue-entry ENTRY", field="WORKFLOW")
        return _source(args.workflow, "WORKFLOW"), _source(args.inputs, "INPUTS") if args.inputs else None
    if args.front != "cwl":
        raise BadInput(f"a catalogue entry is a CWL tool: give --front cwl, not {args.front}",
                       field="--catalogue-entry")
    if args.inputs is not None:
        raise BadInput("with --catalogue-entry, give only INPUTS (the tool's job order)", field="INPUTS")
    try:
        workflow = catalogue_source(args.catalogue_entry, args.image)
    except BadInput as exc:
        raise BadInput(exc.detail, field="--catalogue-entry") from None
    # with --catalogue-entry the one positional argument is the job order
    return workflow, _source(args.workflow, "INPUTS") if args.workflow else None


def submit_command(args: argparse.Namespace) -> int:
    workflow, inputs = _workflow(args)
    files = tuple(_source(path, "--file") for path in args.file)
    worker_key = worker_public_key(args.worker_key)
    token = _platform_token()  # looked up once the input is known to be good
    gateway = _gateway(args, token)
    request = UwsJobRequest(front=args.front, workflow=workflow, inputs=inputs, files=files, site=args.site,
                            requirements=args.requirements)
    # the worker checks the site policy against this token's groups; only it can open the seal
    request = replace(request, sealed_token=seal(token, worker_key, binding(request)))
    job = gateway.create(args.run_id or workflow.name, to_parameters(request))
    job_id = int(job["jobId"])
    gateway.start(job_id)
    print(job_id)
    return 0


def _run_status(job: dict[str, Any]) -> dict[str, Any] | None:
    """The run's jobs, from the status file the worker's result points to (on a shared filesystem)."""
    for result in job.get("results") or []:
        if result.get("key") == STATUS_RESULT:
            try:
                data = json.loads(_read(str(result.get("value"))))
            except (OSError, ValueError, Unreachable):
                return None
            return data if isinstance(data, dict) else None
    return None


def _read(uri: str) -> bytes:
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(unquote(parts.path)).read_bytes()
    return get_bytes(uri, what="the job's result")


def status_command(args: argparse.Namespace) -> int:
    job_id = _job_id(args.id)
    job = _gateway(args).job(job_id)
    run = _run_status(job)
    if args.json:
        print(json.dumps({"jobId": job_id, "runId": job.get("runId"), "phase": job.get("phase"),
                          "errorSummary": job.get("errorSummary"), "run": run}, indent=1))
        return 0
    print(f"job {job_id} ({job.get('runId')}): {job.get('phase')}")
    if job.get("errorSummary"):
        print(f"  error: {job['errorSummary']}")
    if run:
        print(f"  run {run.get('run')}")
        for item in run.get("jobs") or []:
            reason = f" ({item['reason']})" if item.get("reason") else ""
            print(f"  {item.get('id')}  {item.get('name')}  {item.get('site')}  "
                  f"{item.get('scheduler_id') or '-'}  {item.get('state')}{reason}")
    return 0


def results_command(args: argparse.Namespace) -> int:
    job_id = _job_id(args.id)
    job = _gateway(args).job(job_id)
    outputs = [r for r in job.get("results") or [] if r.get("key") != STATUS_RESULT]
    target = Path(args.download) if args.download else None
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
    for result in outputs:
        size = result.get("size")
        print(f"{result.get('key')}\t{result.get('value')}\t{size if size is not None else '-'}\t"
              f"{result.get('mimeType') or '-'}")
        if target is not None:
            name = Path(urlsplit(str(result.get("value"))).path).name or str(result.get("key"))
            destination = target / plain_name(name, "result")
            parts = urlsplit(str(result.get("value")))
            if parts.scheme == "file":
                shutil.copyfile(unquote(parts.path), destination)
            else:
                destination.write_bytes(_read(str(result.get("value"))))
    if target is not None:
        print(f"esap: {len(outputs)} file(s) in {target}", file=sys.stderr)
    return 0


def abort_command(args: argparse.Namespace) -> int:
    job_id = _job_id(args.id)
    job = _gateway(args).abort(job_id)
    print(f"job {job_id}: {job.get('phase')}")
    return 0


def keygen_command(args: argparse.Namespace) -> int:
    private, public = Path(args.private), Path(args.public)
    if private.exists():
        raise BadInput("exists: a worker's key is never overwritten", source=args.private, field="PRIVATE_PEM")
    new_key_pair(private, public)
    print(f"esap: the worker's private key in {private} (0600), its public key in {public}", file=sys.stderr)
    return 0
