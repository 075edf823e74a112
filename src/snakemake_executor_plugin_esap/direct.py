"""Shell rules whose command Snakemake has fully formatted run without starting a Snakemake.

A remote Snakemake job costs about a second of CPU to import Snakemake and parse the workflow
before it runs a command that often takes milliseconds. For a plain shell rule the remote
Snakemake only prepares the job (removes old outputs and logs, creates their directories, sets
the thread variables), then runs the command through its shell (bash with `set -euo pipefail;`);
the submitting Snakemake checks the outputs, records metadata and retries. A job whose rule needs
nothing else from the remote Snakemake (no conda, container, environment modules, benchmark,
shadow directory, storage files, pipes, directory or update outputs, precommand) is prepared and
run here by the job script itself: the same command, the same shell, its own log files, its own
exit code and the same retries. Anything else keeps the remote Snakemake.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Any

# Output flags the submitting Snakemake handles itself (after the job), or that change nothing here.
HARMLESS_FLAGS = frozenset({"temp", "protected", "multiext", "ensure"})
# Snakemake's own shell() exports these as the job's thread count.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "GOTO_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
# Longer commands go through a script file in Snakemake's shell(); leave those to it.
MAX_COMMAND_CHARS = 16 * 4096 - 1


@dataclass(frozen=True)
class DirectShell:
    """What the job script does instead of `python -m snakemake`."""

    rule: str
    jobid: int
    argv: tuple[str, ...]  # the shell and its -c command, prefix and suffix included
    remove: tuple[str, ...]  # old outputs and logs, removed first as Snakemake's prepare() does
    directories: tuple[str, ...]  # their parent directories, created
    env: dict[str, str] = field(default_factory=dict)

    @property
    def header(self) -> str:
        return f"esap: rule {self.rule}, jobid {self.jobid}: its shell command, run without a Snakemake start"

    def script(self, workdir: str) -> str:
        """A POSIX job script: prepare, name the job in its log, then exec the shell."""
        steps = [f"cd {shlex.quote(workdir)}"]
        if self.remove:
            steps.append(shlex.join(["rm", "-f", "--", *self.remove]))
        if self.directories:
            steps.append(shlex.join(["mkdir", "-p", "--", *self.directories]))
        steps.append(f"printf '%s\\n' {shlex.quote(self.header)} >&2")
        steps.append("exec " + shlex.join(self.argv))
        return " && ".join(steps) + "\n"

    def manifest(self) -> dict[str, Any]:
        """The bundle runner's form (bundle_runner.run_shell)."""
        return {"argv": list(self.argv), "remove": list(self.remove), "directories": list(self.directories),
                "header": self.header}


def direct_shell(job: Any) -> DirectShell | None:
    """The job's direct form, or None when the job needs its remote Snakemake."""
    try:
        if not _plain_shell_job(job):
            return None
        command = job.shellcmd
        executable, prefix, suffix = _shell_of(job)
    except Exception:  # noqa: BLE001 - Snakemake internals moved: keep the remote Snakemake
        return None
    if not command:
        return None
    full = " ".join((prefix, command, suffix)).strip()
    if len(full) > MAX_COMMAND_CHARS:
        return None
    files = [str(f) for f in job.output] + [str(f) for f in job.log]
    directories = sorted({os.path.dirname(f) for f in files} - {""})
    threads = str(job.threads)
    return DirectShell(rule=str(job.name), jobid=int(job.jobid), argv=(executable, "-c", full),
                       remove=tuple(files), directories=tuple(directories),
                       env=dict.fromkeys(THREAD_VARIABLES, threads))


def _plain_shell_job(job: Any) -> bool:
    rule = job.rule
    if job.is_group() or not job.is_shell or job.is_template_engine:
        return False
    if rule.conda_env or rule.container_img or rule.env_modules or rule.shadow_depth:
        return False
    if "tmpdir" in str(rule.shellcmd):  # the remote Snakemake evaluates the node's temporary directory
        return False
    if job.benchmark or getattr(job, "container_img_url", None):
        return False
    if any(getattr(f, "is_storage", False) for f in (*job.input, *job.output, *job.log)):
        return False
    return all(set(getattr(f, "flags", {})) <= HARMLESS_FLAGS for f in job.output)


def _shell_of(job: Any) -> tuple[str, str, str]:
    """The shell the remote Snakemake would use, with its prefix and suffix (the Snakefile's
    `shell.prefix(...)`/`shell.suffix(...)` or bash's strict mode)."""
    from snakemake.shell import shell

    executable = job.resources.get("shell_exec") or shell.get_executable() or "sh"
    prefix = shell._get_process_prefix(executable)  # noqa: SLF001 - the one place Snakemake decides it
    suffix = shell._process_suffix  # noqa: SLF001
    name = os.path.basename(executable)
    # bash or sh as the node finds them (the submit side's absolute path may not exist there)
    return (name if name in ("bash", "sh") else executable), prefix, suffix
