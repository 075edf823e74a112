"""Runs several Snakemake jobs in one scheduler job, paying Snakemake's start-up once.

    python bundle_runner.py MANIFEST.json

Started by a bundle's scheduler job with the site's execute-side Python; needs only the standard
library and Snakemake. Snakemake is imported once, then each member runs in a forked child (a
descendant of the scheduler job, so cancelling or killing the job stops it) with its own log
files. Each member's exit code is written to its status file as soon as it ends, so the
submitting Snakemake learns of it while the rest of the bundle runs. Exits 1 if any member failed.
"""

import json
import os
import sys
from typing import Any


def run_member(member: dict[str, Any]) -> None:
    """In the forked child: the member's logs on fd 1 and 2, then Snakemake; never returns."""
    for fd, path in ((1, member["stdout"]), (2, member["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    import snakemake.cli

    snakemake.cli.main(member["args"])  # exits through SystemExit, like `python -m snakemake`
    sys.exit(0)


def write_status(path: str, code: int) -> None:
    partial = f"{path}.partial"
    with open(partial, "w") as handle:
        handle.write(f"{code}\n")
    os.replace(partial, path)


def main() -> int:
    with open(sys.argv[1]) as handle:
        manifest = json.load(handle)
    os.chdir(manifest["workdir"])
    import snakemake.cli  # noqa: F401  -- the expensive part, once for all members

    failures = 0
    for member in manifest["members"]:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            run_member(member)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        write_status(member["status"], code)
        print(f"esap bundle: {member['name']} exit code {code}", flush=True)
        failures += code != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
