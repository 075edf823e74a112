"""The backends: their contract (base.py), and the registry (../backend_registry.py) that finds one by
name and imports it only when a site uses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..backend_registry import BACKEND_MODULES, backend_class
from .base import Backend, Capabilities, FoundJob, Submission

if TYPE_CHECKING:
    from ..sites import Site

__all__ = ["Backend", "Capabilities", "FoundJob", "Submission", "backend_class", "capabilities_of", "BACKEND_MODULES"]


def capabilities_of(site: Site) -> Capabilities:
    """What the site's backend does there, from the catalogue alone: no scheduler is contacted."""
    return backend_class(site.backend).capabilities_on(site)
