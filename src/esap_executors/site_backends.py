"""The one place that builds backends: one instance per site, reused, closed together.

The Submitter, the Tracker, `esap usage` and matchmaking's discovery all get their backends
here, so a process talks to a site through one connection however many paths need it.
"""

from __future__ import annotations

import threading

from .backends import Backend, backend_class
from .sites import Catalogue, Site


def open_backend(site: Site) -> Backend:
    """A new backend for `site`; the caller closes it (prefer a SiteBackends)."""
    return backend_class(site.backend)(site)


class SiteBackends:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self._lock = threading.Lock()
        self._open: dict[str, Backend] = {}

    def get(self, site_name: str) -> Backend:
        with self._lock:
            backend = self._open.get(site_name)
            if backend is None:
                backend = self._open[site_name] = open_backend(self.catalogue.get(site_name))
            return backend

    def knows(self, site_name: str) -> bool:
        return site_name in self.catalogue.sites

    def close(self) -> None:
        with self._lock:
            opened, self._open = list(self._open.values()), {}
        for backend in opened:
            backend.close()

    def __enter__(self) -> SiteBackends:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
