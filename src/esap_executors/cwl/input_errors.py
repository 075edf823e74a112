"""esap-cwltool's answer to a workflow or input that cannot run: one line and exit code 2, not
cwltool's traceback or its multi-line report with exit code 1.

cwltool reports a document or an input object that fails validation through its logger and
returns 1, as it does for a failed step. Its error records are held back here: when the run
recorded no job, the first of them is the user's mistake and is printed as one line naming the
file, line and field; otherwise they are printed as cwltool wrote them.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Sequence
from urllib.parse import urlparse

from ..errors import BadInput
from ..formats.printable import escaped, shortened
from ..textfiles import read_user_text
from ..yamlsource import check_yaml_depth

# cwltool's words for what it found wrong before anything ran
_INPUT_PROBLEMS = (
    "Tool definition failed validation", "Tool definition failed initialization", "Input object failed validation",
    "Invalid job input record", "CWL document required", "I'm sorry, I couldn't load", "Not found:",
    "Missing required input parameter",
)
_WHERE = re.compile(r"^\s*(\S+:\d+:\d+:)\s*(.*)$")
_COLOURS = re.compile(r"\x1b\[[0-9;]*m")
LINE_LIMIT = 400


class HeldErrors(logging.Handler):
    """cwltool's log: below ERROR straight to stderr, errors kept until the outcome is known."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a record cwltool cannot format is not worth a traceback here
            text = str(record.msg)
        if record.levelno >= logging.ERROR:
            self.errors.append(text)
        else:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def print_held(self) -> None:
        for text in self.errors:
            sys.stderr.write(text + "\n")
        self.errors.clear()

    def input_problem(self) -> str | None:
        """The first held error as one line, when it is about the workflow or its inputs."""
        for text in self.errors:
            plain = _COLOURS.sub("", text)
            if any(words in plain for words in _INPUT_PROBLEMS):
                return one_line(plain)
        return None


def one_line(report: str) -> str:
    """cwltool's report (a heading, then `file:line:col: message` lines with indented
    continuations) as its first located problem on one line."""
    lines = [line for line in report.splitlines() if line.strip()]
    heading = re.sub(r"^\S*\s*(ERROR|CRITICAL)\s*", "", lines[0]).rstrip(":").strip() if lines else "invalid input"
    for index, line in enumerate(lines[1:], 1):
        located = _WHERE.match(line)
        if located:
            where, message = located.groups()
            parts = [message.strip()]
            for continuation in lines[index + 1:]:
                if _WHERE.match(continuation):
                    break
                parts.append(continuation.strip())
            detail = " ".join(p for p in parts if p)
            return shortened(escaped(f"{where} {detail}"), LINE_LIMIT)
    rest = " ".join(line.strip() for line in lines[1:3])
    return shortened(escaped(f"{heading}: {rest}" if rest else heading), LINE_LIMIT)


def check_documents(workflow: str, job_order: Sequence[str]) -> None:
    """The workflow file and a job order file exist and are text, before cwltool reads them."""
    if not workflow:
        raise BadInput("no CWL document given (esap-cwltool [options] WORKFLOW [INPUTS])", field="workflow")
    for path, field in ((workflow, "workflow"), *((p, "inputs") for p in job_order[:1] if not p.startswith("-"))):
        parsed = urlparse(path)
        if parsed.scheme not in ("", "file"):
            continue  # cwltool fetches URLs itself
        local = parsed.path if parsed.scheme == "file" else path
        local = local.split("#", 1)[0]
        if not os.path.lexists(local):
            raise BadInput("no such file", source=path, field=field)
        text = read_user_text(local, field=field)  # a FIFO, a device, binary data: refused by name
        check_yaml_depth(text, path)  # cwltool's loaders recurse


def located(problem: str, workflow: str, args: object) -> str:
    """`problem` with the file it is about in front, when cwltool's words named none."""
    if _WHERE.match(problem) or problem.startswith(workflow):
        return problem
    about_inputs = problem.startswith(("Input object failed validation", "Invalid job input record"))
    job_order = [p for p in (getattr(args, "job_order", None) or []) if not p.startswith("-")]
    where = job_order[0] if about_inputs and job_order else workflow
    return f"{where}: {problem}"
