"""A step's names and the runner's files: the step token (task name, storage paths), the task
password that carries it to the runner, and the runner's result and usage formats."""

from __future__ import annotations

import secrets

from ..base import Usage

DEFAULT_HEARTBEAT = 10
HEARTBEAT_SLACK = 5.0  # seconds beyond two periods: clock and listing granularity (1 s)
TAIL_BYTES = 2000
DEFAULT_WORKERS = 4
DEFAULT_START_TIMEOUT = 300.0  # seconds from submission to the runner's first heartbeat


def token_of(job_id: str) -> str:
    """The step token (task name, storage file names, the first part of the task password):
    the esap job id with '-' for '.'."""
    return job_id.replace(".", "-", 1)


def job_id_of(token: str) -> str:
    return token.replace("-", ".", 1)


def task_name(token: str) -> str:
    return f"esap-{token}"


def step_of(token: str) -> str:
    """The step part of a token `<run>-<step>` (its folder and file names on the storage)."""
    return token.split("-", 1)[1]


def step_password(token: str) -> str:
    """A batch step's task password: its token, which the runner needs to find its step, and
    128 random bits, so that knowing a run id does not give a step's password. Hex only: Rosetta
    puts it unquoted into the shell command that starts the container."""
    return f"{token}.{secrets.token_hex(16)}"


def usage_of(text: str) -> Usage:
    """The runner's usage line: "<wall s> <user>m<s>s <system>m<s>s" (the shell's `times`)."""
    fields = text.split()

    def seconds(value: str) -> float | None:
        minutes, _, rest = value.partition("m")
        try:
            return float(minutes) * 60 + float(rest.rstrip("s"))
        except ValueError:
            return None

    wall = float(fields[0]) if fields and fields[0].isdigit() else None
    times = [seconds(f) for f in fields[1:3]]
    cpu = None if len(times) < 2 or None in times else sum(t for t in times if t is not None)
    return Usage(wall_s=wall, cpu_s=cpu, max_memory_mib=None)


def parse_result(data: bytes) -> dict[str, bytes] | None:
    """The runner's result file (runner/esap-runner.sh): exit, usage, stdout and stderr; None
    when it is not one."""
    fields: dict[str, bytes] = {}
    rest = data
    header, _, rest = rest.partition(b"\n")
    if header != b"esap-result 1":
        return None
    for name in ("exit", "usage"):
        line, _, rest = rest.partition(b"\n")
        key, _, value = line.partition(b" ")
        if key.decode(errors="replace") != name:
            return None
        fields[name] = value
    for name in ("stdout", "stderr"):
        line, _, rest = rest.partition(b"\n")
        key, _, size = line.partition(b" ")
        if key.decode(errors="replace") != name or not size.strip().isdigit():
            return None
        length = int(size.strip())
        fields[name], rest = rest[:length], rest[length:]
    return fields
