"""Choosing the site (Requirements/Rank matchmaking, Site, BannedSites) and fitting jobs to it."""

from __future__ import annotations

import sys
from dataclasses import replace

from ..backends import capabilities_of
from ..errors import BadInput
from ..job import StageOut
from ..matchmaking import match, no_match_message
from ..sites import Catalogue, Site
from .sandbox import COLLECT_DIR, collecting_script
from .translate import JdlDescription, JdlJob


def choose_site(catalogue: Catalogue, description: JdlDescription, forced: str | None) -> Site:
    doc = description.doc
    requirements, rank = description.requirements, description.rank
    spec = description.jobs[0].spec
    if forced:
        site = catalogue.get(forced)
        if requirements:
            result = match(catalogue, requirements, rank, spec=spec, sites=[site.name])
            if not result.matched:
                failing = "; ".join(result.rejected.get(site.name, [requirements]))
                print(f"esap: warning: --site {site.name} does not satisfy Requirements (fails {failing}); "
                      "submitting there as asked", file=sys.stderr)
        return site
    names = catalogue.names()
    if description.sites:
        unknown = [n for n in description.sites if n not in catalogue.sites]
        if unknown:
            raise doc.bad("Site", f"unknown site(s) {', '.join(unknown)} (known: {', '.join(names)})")
        names = [n for n in names if n in description.sites]
    names = [n for n in names if n not in description.banned]
    if not names:
        raise doc.bad("BannedSites", "no site of the catalogue is left to run the job")
    if not requirements and not rank:
        return catalogue.get("local" if "local" in names else names[0])
    result = match(catalogue, requirements, rank, spec=spec, sites=names)
    if not result.matched:
        line = doc.line_of("Requirements") or doc.line_of("Platform")
        raise BadInput(no_match_message(result), source=doc.source, line=line)
    return result.matched[0][0]


def fit_to_site(description: JdlDescription, site: Site) -> list[JdlJob]:
    """Site-dependent parts: perusal needs a shared filesystem; file transfer brings outputs back."""
    doc = description.doc
    if description.perusal_interval is not None and not site.shared_filesystem:
        raise doc.bad("PerusalFileEnable", f"not supported on this site: {site.name} has no shared filesystem, "
                                           "so files come back only when the job ends")
    if not capabilities_of(site).transfers_files:
        return list(description.jobs)
    fitted = []
    for job in description.jobs:
        streams = {job.spec.stdout, job.spec.stderr}  # the scheduler returns those on its own
        names = [o.name for o in job.outputs if o.name not in streams]
        if not names:
            fitted.append(job)
            continue
        # A declared file the job did not write must not fail the transfer back (HTCondor holds
        # such a job): the job copies what exists into one folder, and that folder comes back.
        spec = job.spec.with_changes(
            argv=(), script=collecting_script(job.spec, names),
            stage_out=(StageOut(source=COLLECT_DIR, dest=COLLECT_DIR),),
        )
        fitted.append(replace(job, spec=spec))
    return fitted
