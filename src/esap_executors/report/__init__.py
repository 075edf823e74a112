"""Run reports (JSON, HTML with a timeline) and Workflow Run RO-Crates, read from the store."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from ..backends.base import Usage
from ..errors import EsapError
from ..sites import Catalogue
from ..store import Store
from ..usage import usage_of
from .html import render_html
from .model import JobReport, RunReport, RunSummary, build_report, unknown_run

__all__ = ["JobReport", "RunReport", "RunSummary", "build_report", "collect_report", "render_html",
           "unknown_run", "write_html"]

log = logging.getLogger(__name__)


def collect_report(store: Store, run_id: str, catalogue: Catalogue | None, *, settle_s: float = 0.0) -> RunReport:
    """The run's report, with the sites' accounting of its ended jobs when a catalogue is given
    (one accounting query per site; sites no longer in the catalogue are left out)."""
    if store.run(run_id) is None:
        raise unknown_run(run_id)
    records = store.jobs_of_run(run_id)
    usage: dict[str, Usage] = {}
    if catalogue is not None:
        try:
            rows = usage_of(store, catalogue, records, settle_s=settle_s)
        except EsapError as exc:  # a site out of reach: the report without its accounting
            log.warning("no accounting in the report of %s: %s", run_id, exc)
            rows = []
        for row in rows:
            if row.usage is not None:
                usage[row.record.job_id] = row.usage
    report = build_report(store, run_id, usage, records=records)
    return report if catalogue is None else with_image_references(report, catalogue)


def with_image_references(report: RunReport, catalogue: Catalogue) -> RunReport:
    """Each job's container image as its site ran it (the site's image map resolves names)."""
    jobs = []
    for job in report.jobs:
        site = catalogue.sites.get(job.site)
        if job.container and site is not None and job.container in site.container.images:
            job = replace(job, container=site.container.images[job.container])
        jobs.append(job)
    return replace(report, jobs=tuple(jobs))


def write_html(report: RunReport, path: str | Path) -> None:
    Path(path).write_text(render_html(report), encoding="utf-8")
