"""Which backends exist, by name, and their classes, imported only when a site uses one.

Its own module so that the site catalogue (sites.py), which checks a site's backend and options,
needs nothing of the backends package, whose backends are configured by sites."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import BadInput

if TYPE_CHECKING:
    from .backends.base import Backend

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
