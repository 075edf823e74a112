"""ESAP facilities as sites.yaml entries, for the facility types a registered backend serves.

A facility type names the backend that would serve it (batch `rosetta` -> backend `rosetta`);
whether that backend exists is asked of the backend registry, never assumed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from ..backends import BACKEND_MODULES, backend_class
from .entries import Facility, slug

WHY_NOT = {
    "dirac": "not supported: DIRAC jobs need the DIRAC client and an x509 proxy (ESAP's Celery batch worker); "
             "esap-executors has no DIRAC backend",
    "jupyterhub": "not a batch site: an interactive JupyterHub/BinderHub, where notebooks are launched by URL",
}
NOT_YET = "not yet supported: no {backend!r} backend is registered in this esap-executors"


@dataclass(frozen=True)
class Imported:
    facility: Facility
    site_name: str | None  # None: not importable
    site: dict[str, Any] | None
    reason: str | None


def import_facilities(facilities: list[Facility], existing: set[str]) -> list[Imported]:
    imported = []
    for facility in facilities:
        backend = facility.facilitytype.strip().lower()
        name = slug(facility.name)
        if backend not in BACKEND_MODULES:
            reason = WHY_NOT.get(backend) or NOT_YET.format(backend=backend)
            imported.append(Imported(facility, None, None, reason))
            continue
        if name in existing:
            imported.append(Imported(facility, None, None, f"a site {name!r} is already in your catalogue"))
            continue
        site: dict[str, Any] = {"backend": backend,
                                "description": f"{facility.description} (ESAP {facility.catalogue} facility)"}
        options = backend_class(backend).option_types
        if "url" in options and facility.url:
            site["options"] = {"url": facility.url}
        if facility.runtimeengine and facility.runtimeengine.lower() in ("singularity", "apptainer"):
            site["container"] = {"runtime": "apptainer"}
        elif facility.runtimeengine and facility.runtimeengine.lower() in ("docker", "podman"):
            site["container"] = {"runtime": "podman"}
        existing.add(name)
        imported.append(Imported(facility, name, site, None))
    return imported


def render(imported: list[Imported], gateway: str) -> str:
    lines = [f"# sites.yaml entries for the facilities of the ESAP gateway {gateway} (esap sites import)"]
    skipped = [item for item in imported if item.site is None]
    if skipped:
        lines.append("# not imported:")
        lines += [f"#   {i.facility.name} ({i.facility.catalogue}, {i.facility.facilitytype}): {i.reason}"
                  for i in skipped]
    sites = {item.site_name: item.site for item in imported if item.site is not None and item.site_name}
    if sites:
        lines.append(yaml.safe_dump(sites, sort_keys=False).rstrip())
    else:
        lines.append("# (no facility of this gateway can be served by the registered backends)")
    return "\n".join(lines) + "\n"
