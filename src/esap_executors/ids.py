"""Job and run ids as users type them: matched exactly, never as a pattern.

A prefix is matched only when the user asks for it (`--prefix`) and it names one job.
"""

from __future__ import annotations

import re

from .errors import BadInput
from .formats.printable import is_utf8, shown

MAX_ID_LENGTH = 200
# characters a pattern language would read as wildcards, and white space or controls that no
# esap, SLURM, HTCondor or Rosetta id contains
_NOT_IN_IDS = re.compile(r"[%*?\[\]\s\x00-\x1f\x7f]")


def checked_id(text: str, field: str = "ID") -> str:
    """`text` when it can be an id; BadInput (exit 2) for an empty, binary or pattern-like one."""
    if not is_utf8(text):
        raise BadInput(f"{shown(text)} is not valid UTF-8 text", field=field)
    if not text:
        raise BadInput("is empty: give a job id, a run id or the scheduler's id", field=field)
    if len(text) > MAX_ID_LENGTH:
        raise BadInput(f"{shown(text, 40)} is {len(text)} characters long; ids have at most {MAX_ID_LENGTH}",
                       field=field)
    bad = _NOT_IN_IDS.search(text)
    if bad:
        raise BadInput(f"{shown(text)} contains {shown(bad.group())}: ids are matched exactly, never as a "
                       "pattern (a unique prefix: --prefix)", field=field)
    return text


def prefix_upper_bound(prefix: str) -> str:
    """The smallest string above every string that starts with `prefix` (for an index range)."""
    return prefix + "\U0010ffff"
