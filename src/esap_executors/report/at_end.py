"""What a front does when its run ends: the HTML report (--esap-report) and the notice (--notify)."""

from __future__ import annotations

import logging
from typing import Any

from ..notify import Notifier
from ..sites import Catalogue
from ..store import Store
from . import collect_report, write_html
from .model import RunReport

log = logging.getLogger(__name__)

ACCOUNTING_SETTLE_S = 10.0  # how long to wait for the sites' accounting of the last jobs


def notice(report: RunReport) -> dict[str, Any]:
    """The JSON a --notify URL receives: the run's summary and its failed jobs."""
    summary = report.summary
    failed = [
        {"id": j.job_id, "name": j.name, "site": j.site, "native_id": j.native_id, "state": j.state,
         "exit_code": j.exit_code, "reason": j.reason}
        for j in report.jobs if j.state in ("failed", "cancelled")
    ]
    outcome = "completed" if summary.final and set(summary.states) <= {"completed"} else "failed"
    return {"event": "esap.run.ended", "outcome": outcome, "run": summary.as_dict(), "failed_jobs": failed}


def end_of_run(store: Store, catalogue: Catalogue, run_id: str, *, html: str | None = None,
               notifier: Notifier | None = None, settle_s: float = ACCOUNTING_SETTLE_S) -> RunReport | None:
    """Write the report and send the notice; problems are warnings (the run's outcome stands)."""
    if html is None and notifier is None:
        return None
    try:
        report = collect_report(store, run_id, catalogue, settle_s=settle_s)
    except Exception as exc:  # the run has ended: a report problem must not change its outcome
        log.warning("esap run %s: no report (%s)", run_id, exc)
        return None
    if html is not None:
        try:
            write_html(report, html)
            log.info("esap run %s: report written to %s", run_id, html)
        except OSError as exc:
            log.warning("esap run %s: report %s not written (%s)", run_id, html, exc.strerror)
    if notifier is not None:
        notifier.send(notice(report))
    return report
