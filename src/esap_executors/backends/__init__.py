"""Backend registry: backends are found by name and imported only when a site uses them."""

from __future__ import annotations

import importlib

from ..errors import BadInput
from .base import Backend, FoundJob, Submission

__all__ = ["Backend", "FoundJob", "Submission", "backend_class", "BACKEND_MODULES"]

BACKEND_MODULES: dict[str, str] = {
    "local": "esap_executors.backends.local:LocalBackend",
    "slurm": "esap_executors.backends.slurm:SlurmBackend",
    "htcondor": "esap_executors.backends.htcondor:HTCondorBackend",
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
