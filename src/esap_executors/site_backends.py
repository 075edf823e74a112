"""The one place that builds backends: one instance per site, reused, closed together.

The Submitter, the Tracker, `esap usage` and matchmaking's discovery all get their backends
here, so a process talks to a site through one connection however many paths need it. A backend
that keeps its own state (the local one) keeps it in the process's state store.
"""

from __future__ import annotations

import threading

from .backends import Backend, backend_class
from .sites import Catalogue, Site
from .store import Store


def open_backend(site: Site) -> Backend:
    """A new backend for `site` that asks nothing of a state store (describe, capabilities)."""
    return backend_class(site.backend)(site)


def make_backend(site: Site, store: Store) -> Backend:
    """A new backend for `site` on the process's state store; the caller closes it (prefer a SiteBackends)."""
    backend = open_backend(site)
    backend.use_store(store)
    return backend


class SiteBackends:
    def __init__(self, catalogue: Catalogue, store: Store) -> None:
        self.catalogue = catalogue
        self.store = store
        self._lock = threading.Lock()
        self._open: dict[str, Backend] = {}

    def get(self, site_name: str) -> Backend:
        with self._lock:
            backend = self._open.get(site_name)
            if backend is None:
                backend = self._open[site_name] = make_backend(self.catalogue.get(site_name), self.store)
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
