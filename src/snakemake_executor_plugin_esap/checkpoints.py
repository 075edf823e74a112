"""The `esap_checkpoint` resource: a rule's checkpoint signal, as esap run's --checkpoint.

A Snakemake job is Snakemake running the rule's shell. The signal (from SLURM, or the job
wrapper's timer elsewhere) reaches the job's own shell, not the rule's: this shell runs Snakemake
in the background and passes the signal on to the processes Snakemake started (the rule's shell,
which traps it and exits with the agreed code). Snakemake then ends with an error of its own;
a job that was signalled and did not succeed reports the agreed code, and the Tracker continues
it in the same directory, where the rule finds what it saved.
"""

from __future__ import annotations

import shlex

from esap_executors.checkpoint import Checkpoint, parse_checkpoint
from esap_executors.errors import BadInput

# POSIX sh. Snakemake's children are read from /proc (no procps needed on the node); `wait` is
# repeated because a trapped signal interrupts it before the child has ended.
_FORWARDER = """_sm=
_signalled=0
_pass_on() {{
  _signalled=1
  for _c in $(cat /proc/"$_sm"/task/*/children 2>/dev/null); do kill -s {signal} "$_c" 2>/dev/null; done
}}
trap _pass_on {signal}
(cd {workdir} && exec {command}) &
_sm=$!
while :; do wait "$_sm"; _code=$?; kill -0 "$_sm" 2>/dev/null || break; done
if [ "$_signalled" = 1 ] && [ "$_code" != 0 ]; then exit {exit_code}; fi
exit "$_code"
"""


def snakemake_checkpoint(text: str | None, rule: str, walltime_s: int | None, *,
                         moves_files: bool = False) -> Checkpoint | None:
    """`esap_checkpoint="USR1@60s[:85]"`; the rule needs a runtime for the signal to come before,
    and a shared filesystem, where the continuation finds what the rule saved."""
    if not text:
        return None
    field = f"rule {rule}: resources.esap_checkpoint"
    if moves_files:
        raise BadInput("the site moves the job's files: a checkpoint needs a shared filesystem to continue in",
                       field=field)
    if not walltime_s:
        raise BadInput("a checkpoint signal comes before the walltime: give resources.runtime", field=field)
    return parse_checkpoint(text, field=field)


def forwarding(workdir: str, command: str, checkpoint: Checkpoint) -> str:
    """The job's shell lines: Snakemake's `command` (a simple command: `exec` makes it the process
    whose children get the signal) in `workdir`, the signal passed on to what it runs."""
    return _FORWARDER.format(signal=shlex.quote(checkpoint.signal), workdir=shlex.quote(workdir),
                             command=command, exit_code=checkpoint.exit_code)
