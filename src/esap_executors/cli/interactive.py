"""An interactive job once submitted (`esap run --interactive`, a JDL interactive job): wait for it
to run and tell where to open it. Shared by the fronts, so it imports none of them."""

from __future__ import annotations

import json
import sys

from ..runs import Run
from ..store import JobRecord

INTERACTIVE_START_TIMEOUT_S = 300.0


def open_interactive(run: Run, record: JobRecord, *, quiet: bool = False) -> int:
    """Wait for the interactive job to run and print where to open it (stdout: the link);
    a session that cannot be opened is cancelled, so nothing is left running."""
    try:
        access = run.backend(record.site).open_interactive(record.native_id or "", run_id=record.run_id,
                                                           timeout=INTERACTIVE_START_TIMEOUT_S)
    except BaseException:
        run.cancel([record.job_id])
        raise
    if quiet:
        print(json.dumps({"job_id": record.job_id, "site": record.site, "native_id": record.native_id,
                          "link": access.link, "address": access.address}))
        return 0
    print(access.link)
    print(f"esap: interactive job {record.job_id} runs on {record.site} ({record.native_id}): open {access.link}",
          file=sys.stderr)
    if access.address:
        print(f"esap: {record.site} forwards it to {access.address}", file=sys.stderr)
    print(f"esap: stop it with: esap cancel {record.job_id}", file=sys.stderr)
    return 0
