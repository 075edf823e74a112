"""Backend registry: backends are found by name and imported only when a site uses them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import BadInput
from .base import Backend, Capabilities, FoundJob, Submission

if TYPE_CHECKING:
    from ..sites import Site

__all__ = ["Backend", "Capabilities", "FoundJob", "Submission", "backend_class", "capabilities_of", "BACKEND_MODULES"]

BACKEND_MODULES: dict[str, str] = {
    "local": "esap_executors.backends.local:LocalBackend",
    "slurm": "esap_executors.backends.slurm:SlurmBackend",
    "htcondor": "esap_executors.backends.htcondor:HTCondorBackend",
    "rosetta": "esap_executors.backends.rosetta:RosettaBackend",
}


def backend_class(name: str) -> type[Backend]:
    target = BACKEND_MODULES.get(name)
    if target is None:
        known = ", ".join(sorted(BACKEND_MODULES))
        raise BadInput(f"unknown backend {name!r} (known: {known})", field="backend")
    module_name, class_name = target.split(":")
    module = importlib.import_module(module_name)
    cls: type[Backend] = getattr(module, class_name)
    return cls


def capabilities_of(site: Site) -> Capabilities:
    """What the site's backend does there, from the catalogue alone: no scheduler is contacted."""
    return backend_class(site.backend).capabilities_on(site)
