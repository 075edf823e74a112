"""Runs several Snakemake jobs in one scheduler job, paying Snakemake's start-up once.

    python bundle_runner.py MANIFEST.json

Started by a bundle's scheduler job with the site's execute-side Python; needs only the standard
library and Snakemake. Snakemake is imported once, then each member runs in a forked child (a
descendant of the scheduler job, so cancelling or killing the job stops it) with its own log
files. Snakemake imports much of itself lazily (plugins, parser, scheduler): the Snakemake
modules a member loaded are imported into the runner before the next fork, so later members
start warm. Each member's exit code is written to its status file as soon as it ends, so the
submitting Snakemake learns of it while the rest of the bundle runs. Exits 1 if any member failed.
Members with a "shell" entry (plain shell rules, direct.py) run their command without Snakemake;
a bundle of only those never imports it.
"""

import importlib
import json
import logging
import os
import subprocess
import sys
from typing import Any

# Snakemake's modules and every top-level package a member imported (Snakemake's lazily imported
# dependencies, a workflow's own imports); their submodules load with them or in the members.
WARM_PREFIX = "snakemake"


def run_member(member: dict[str, Any], report_modules: int) -> None:
    """In the forked child: the member's logs on fd 1 and 2, then Snakemake; never returns."""
    for fd, path in ((1, member["stdout"]), (2, member["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    code = 1
    try:
        import snakemake.cli

        snakemake.cli.main(member["args"])  # ends with SystemExit, like `python -m snakemake`
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        # Snakemake registers no exit handlers: flushing is all a normal exit would do here, and
        # skipping the interpreter's teardown of a large heap saves a good part of a member's CPU.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        send_module_names(report_modules)
        os._exit(code)


def run_shell(member: dict[str, Any]) -> int:
    """Prepare as Snakemake's prepare() does (old outputs and logs removed, their directories
    made), then the member's shell command with its own log files; its exit code."""
    shell = member["shell"]
    with open(member["stdout"], "wb") as out, open(member["stderr"], "wb") as err:
        try:
            for path in shell["remove"]:
                if os.path.lexists(path):
                    os.unlink(path)
            for directory in shell["directories"]:
                os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            err.write(f"esap: cannot prepare the job's outputs: {exc}\n".encode())
            return 1
        err.write(f"{shell['header']}\n".encode())
        err.flush()
        return subprocess.run(shell["argv"], stdout=out, stderr=err, check=False).returncode


def send_module_names(fd: int) -> None:
    names = "\n".join(name for name in sys.modules if "." not in name or name.startswith(WARM_PREFIX))
    with os.fdopen(fd, "w") as pipe:
        pipe.write(names)


def warm_up(names: list[str]) -> None:
    """Import what a member loaded, and build Snakemake's plugin registries (singletons) once."""
    for name in names:
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - a module that only loads in its context stays cold
                pass
    cli = sys.modules.get("snakemake.cli")
    if cli is not None:
        try:
            cli.get_argument_parser()
        except Exception:  # noqa: BLE001 - the members build it themselves then
            pass


def write_status(path: str, code: int) -> None:
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(partial, path)


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def main() -> int:
    with open(sys.argv[1]) as handle:
        manifest = json.load(handle)
    os.chdir(manifest["workdir"])
    if any("args" in member for member in manifest["members"]):
        import snakemake.cli  # noqa: F401  -- the expensive part, once for all members

    failures = 0
    members = manifest["members"]
    for index, member in enumerate(members):
        if "shell" in member:
            code = run_shell(member)
            write_status(member["status"], code)
            print(f"esap bundle: {member['name']} exit code {code} (shell command)", flush=True)
            failures += code != 0
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            run_member(member, write_end)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            loaded = pipe.read().split()  # until the member exits: never blocks it on a full pipe
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        write_status(member["status"], code)
        print(f"esap bundle: {member['name']} exit code {code} (CPU {cpu_seconds():.2f} s so far)", flush=True)
        failures += code != 0
        if index + 1 < len(members):  # after the last member the job ends at once: its end is the bundle's
            warm_up(loaded)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
