"""`esap-cwltool`: cwltool plus `--executor esap|local`, `--site` and the `--esap-*` options.

Stock cwltool has no `--executor` option and no plugin mechanism, so this is a separate
command (never installed as `cwltool`). `--executor local` is stock cwltool, unchanged.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from cwltool.argparser import arg_parser
from cwltool.context import LoadingContext, RuntimeContext
from cwltool.main import _signal_handler, _terminate_processes
from cwltool.main import main as cwltool_main

from ..cli.main import check_invocation, user_text
from ..errors import BadInput, EsapError
from ..esap.basket_cli import add_source_options
from ..stores import open_store
from .executor import EsapJobExecutor, select_resources
from .input_errors import HeldErrors, check_documents, located
from .run_metadata import cwl_run_metadata
from .session import EsapSettings
from .tool import esap_make_tool

ESAP_DESTS = ("executor", "site", "esap_sites", "esap_run_id", "esap_workdir", "esap_report", "esap_notify",
              "esap_notify_token", "inputs_from_basket", "basket_gateway", "basket_rucio",
              "esap_outputs_to", "esap_right_size")


def esap_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("esap-executors (esap-cwltool only)")
    group.add_argument("--executor", choices=("esap", "local"), default="esap",
                       help="esap: every CommandLineTool step is a job on a site (default); "
                            "local: exactly stock cwltool")
    group.add_argument("--site", metavar="NAME", default=None,
                       help="run every step on this site (an esap:Site hint of a step wins); "
                            "default: requirements-based choice, else 'local'")
    group.add_argument("--esap-sites", metavar="FILE", default=None,
                       help="the site catalogue (default: $ESAP_SITES, else ~/.config/esap/sites.yaml)")
    group.add_argument("--esap-run-id", metavar="KEY", default=None,
                       help="resume key of the run (default: derived from workflow, inputs, working "
                            "directory and --outdir, so rerunning the same command resumes)")
    group.add_argument("--esap-workdir", metavar="DIR", default=None,
                       help="directory for the steps' working directories; must be visible on the "
                            "sites at the same path (default: the directory of --tmp-outdir-prefix)")
    group.add_argument("--esap-report", metavar="FILE", default=None,
                       help="at the end, write the run's HTML report (timeline, usage) to FILE")
    group.add_argument("--esap-notify", "--notify", dest="esap_notify", metavar="URL", default=None,
                       help="at the end, POST the run's summary as JSON to this http(s) URL (retried)")
    group.add_argument("--esap-notify-token", action="store_true",
                       help="send the platform token (esap login, $BEARER_TOKEN) with the notice")
    group.add_argument("--inputs-from-basket", metavar="INPUT", default=None,
                       help="give the files of your ESAP shopping basket to the workflow input INPUT "
                            "(File[]: every item; File: a basket of one); every item is checked first")
    add_source_options(group, prefix="esap-")
    group.add_argument("--esap-right-size", action="store_true",
                       help="each step's memory and time from what it used in earlier runs on its site "
                            "(a high percentile of the recorded peaks with a margin, never above its own request)")
    group.add_argument("--esap-outputs-to", metavar="URL", default=None,
                       help="at the end, upload the final outputs under this https:// or davs:// URL "
                            "(atomic and checksummed; the write scope is checked before the run)")


def split_arguments(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our own options, and everything else in its original order (for cwltool)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    esap_options(parser)
    return parser.parse_known_args(list(argv))


def full_parser() -> argparse.ArgumentParser:
    parser = arg_parser()
    parser.prog = "esap-cwltool"
    parser.description = (parser.description or "") + (
        " -- esap-cwltool: cwltool with --executor esap (steps as jobs on SLURM, HTCondor or local sites)."
    )
    esap_options(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if "-h" in arguments or "--help" in arguments:
        full_parser().print_help()
        return 0
    try:
        check_invocation(arguments)  # text arguments, a working directory that still exists
    except BadInput as exc:
        print(f"esap-cwltool: error: {user_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    own, rest = split_arguments(arguments)
    signal.signal(signal.SIGTERM, _signal_handler)
    with ExitStack() as cleanup:
        if own.inputs_from_basket:
            from .basket import private_scratch

            try:
                rest = _basket_arguments(own, rest, Path(cleanup.enter_context(private_scratch())))
            except EsapError as exc:
                print(f"esap-cwltool: {user_text(str(exc))}", file=sys.stderr)
                return exc.exit_code
        try:
            if own.executor == "local":
                if own.esap_outputs_to:
                    print("esap-cwltool: --esap-outputs-to: needs --executor esap (--executor local is stock "
                          "cwltool)", file=sys.stderr)
                    return 2
                return int(cwltool_main(argsl=rest))
            return run_esap(own, rest)
        finally:
            _terminate_processes()


def _basket_arguments(own: argparse.Namespace, rest: list[str], scratch: Path) -> list[str]:
    from ..esap.basket_cli import basket_inputs
    from .basket import with_basket_inputs

    inputs = basket_inputs(own)
    return with_basket_inputs(rest, own.inputs_from_basket, inputs, scratch)


def run_esap(own: argparse.Namespace, rest: list[str]) -> int:
    # imported here, not at start: the notice and the uploads are needed only for some options,
    # and esap-cwltool's start-up is part of every run's wall time
    from ..notify import Notifier
    from . import remote_io, schema_cache

    schema_cache.install()
    try:
        notifier = (Notifier.for_url(own.esap_notify, with_token=own.esap_notify_token, field="--esap-notify")
                    if own.esap_notify else None)
        store = open_store()
        if own.esap_outputs_to:
            remote_io.check_destination(own.esap_outputs_to)
    except EsapError as exc:
        print(f"esap-cwltool: {user_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    args = parse_cwltool_arguments(rest)
    job_order = list(getattr(args, "job_order", None) or [])
    try:
        for flag, value in (("--site", own.site), ("--esap-sites", own.esap_sites), ("--esap-run-id", own.esap_run_id),
                            ("--esap-workdir", own.esap_workdir)):
            if value is not None and not value.strip():
                raise BadInput("is empty: give a value or leave the option out", field=flag)
        check_documents(str(getattr(args, "workflow", "") or ""), job_order)
    except BadInput as exc:
        print(f"esap-cwltool: error: {user_text(str(exc))}", file=sys.stderr)
        return exc.exit_code
    settings = EsapSettings(
        sites_file=own.esap_sites,
        default_site=own.site,
        run_key=own.esap_run_id,
        work_dir=own.esap_workdir,
        right_size=own.esap_right_size,
        job_order_file=job_order[0] if len(job_order) == 1 and not job_order[0].startswith("-") else None,
    )
    runtime_context = RuntimeContext(vars(args))
    runtime_context.select_resources = select_resources
    runtime_context.esap_final_outdir = args.outdir  # type: ignore[attr-defined]
    loading_context = LoadingContext(vars(args))
    loading_context.singularity = runtime_context.singularity
    loading_context.podman = runtime_context.podman
    loading_context.construct_tool_object = esap_make_tool
    executor = EsapJobExecutor(settings, store)
    workflow = str(getattr(args, "workflow", "") or "")  # cwltool's main consumes it
    held = HeldErrors()
    try:
        code = int(cwltool_main(args=args, executor=executor, loadingContext=loading_context,
                                runtimeContext=runtime_context, logger_handler=held))
    except Exception as exc:  # cwltool raises some input errors (a document it cannot find) instead of logging
        held.errors.append(f"{type(exc).__name__}: {exc}")
        code = 1
    finally:
        logging.getLogger("cwltool").removeHandler(held)
    session = executor.session
    problem = held.input_problem() if code != 0 and executor.esap_error is None else None
    if problem is not None and (session is None or not session.run.store.jobs_of_run(session.run.run_id)):
        print(f"esap-cwltool: error: {user_text(located(problem, workflow, args))}", file=sys.stderr)
        return 2
    if executor.esap_error is None or code == 0:
        held.print_held()  # esap's own error is printed below, as one line
    if session is not None:
        run = session.run
        outputs = executor.final_output[0] if executor.final_output else None
        try:
            run.store.update_run_metadata(run.run_id, cwl_run_metadata(workflow, executor.job_order, outputs))
        except Exception as exc:  # the run has ended: its outcome stands
            print(f"esap-cwltool: warning: the run's files not recorded for its RO-Crate ({user_text(str(exc))})",
                  file=sys.stderr)
        if own.esap_report is not None or notifier is not None:
            from ..report.at_end import end_of_run  # the report's modules: only when it is asked for

            end_of_run(run.store, run.catalogue, run.run_id, html=own.esap_report, notifier=notifier)
    if executor.esap_error is not None and code != 0:
        print(f"esap-cwltool: {user_text(str(executor.esap_error))}", file=sys.stderr)
        return executor.esap_error.exit_code
    if code == 0 and own.esap_outputs_to and executor.final_output:
        try:
            written = remote_io.upload_outputs(executor.final_output[0], args.outdir, own.esap_outputs_to)
        except EsapError as exc:
            print(f"esap-cwltool: the outputs were not all uploaded: {user_text(str(exc))}", file=sys.stderr)
            return exc.exit_code
        print(f"esap-cwltool: {len(written)} output file(s) uploaded to {own.esap_outputs_to}", file=sys.stderr)
    return code


def parse_cwltool_arguments(rest: list[str]) -> argparse.Namespace:
    """As cwltool's main() does it: $CWLTOOL_OPTIONS first, then the command line."""
    import os

    extra = [x for x in os.environ.get("CWLTOOL_OPTIONS", "").split(" ") if x]
    args = arg_parser().parse_args(extra + rest)
    if args.record_container_id:
        if not args.cidfile_dir:
            args.cidfile_dir = os.getcwd()
        del args.record_container_id
    return args
