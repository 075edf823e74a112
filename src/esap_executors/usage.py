"""What finished jobs used against what they asked for: the numbers to right-size requests.

One accounting query per run and site, through site_backends.py (the schedulers keep these
numbers after the job ended: sacct, the schedd's history, the local supervisor's records).
"""

from __future__ import annotations

import csv
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from .backends.base import Usage
from .site_backends import SiteBackends
from .sites import Catalogue
from .store import JobRecord, Store


@dataclass(frozen=True)
class JobUsage:
    record: JobRecord
    usage: Usage | None  # None: the site keeps no account of it (or it has not ended)

    @property
    def cpu_efficiency(self) -> float | None:
        """CPU time over wall time x requested cores."""
        u = self.usage
        if u is None or u.cpu_s is None or not u.wall_s:
            return None
        return u.cpu_s / (u.wall_s * self.record.spec.cores)

    @property
    def wasteful(self) -> bool:
        """Used less than half of the cores (of several) or of the memory it asked for."""
        cpu, memory = self.cpu_efficiency, self.memory_efficiency
        return bool((cpu is not None and cpu < LOW_SHARE and self.record.spec.cores > 1)
                    or (memory is not None and memory < LOW_SHARE))

    @property
    def memory_efficiency(self) -> float | None:
        """Peak memory over requested memory."""
        u, requested = self.usage, self.record.spec.memory_mib
        if u is None or u.max_memory_mib is None or not requested:
            return None
        return u.max_memory_mib / requested


LOW_SHARE = 0.5  # below this share of a request, the request is worth lowering

CSV_FIELDS = ("id", "name", "site", "native_id", "state", "cores", "wall_s", "cpu_s", "cpu_efficiency",
              "memory_mib", "max_memory_mib", "memory_efficiency")


def write_csv(rows: Sequence[JobUsage], stream: TextIO) -> None:
    writer = csv.writer(stream)
    writer.writerow(CSV_FIELDS)
    for row in rows:
        r, u = row.record, row.usage
        writer.writerow([
            r.job_id, r.name, r.site, r.native_id or "", r.state.value, r.spec.cores,
            _cell(u.wall_s if u else None), _cell(u.cpu_s if u else None), _cell(row.cpu_efficiency),
            _cell(r.spec.memory_mib), _cell(u.max_memory_mib if u else None), _cell(row.memory_efficiency),
        ])


def _cell(value: float | None) -> str:
    if value is None:
        return ""
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def usage_of(store: Store, catalogue: Catalogue, records: Sequence[JobRecord], *,
             settle_s: float = 0.0) -> list[JobUsage]:
    """Usage of the ended jobs among `records`, in their order.

    Accounting lags the end of a job by seconds (sacct, the schedd's history): with `settle_s`,
    jobs the site has no complete account of yet are asked for again, once a second, that long.
    """
    by_run_site: dict[tuple[str, str], list[JobRecord]] = defaultdict(list)
    for record in records:
        if record.state.is_final and record.native_id and record.site in catalogue.sites:
            by_run_site[(record.run_id, record.site)].append(record)
    found: dict[str, Usage] = {}
    deadline = time.monotonic() + settle_s
    with SiteBackends(catalogue, store) as backends:
        for (run_id, site_name), group in by_run_site.items():
            backend = backends.get(site_name)
            since = store.run_created(run_id) or time.time()
            waiting = group
            while True:
                usages = backend.usage([r.native_id for r in waiting if r.native_id], run_id=run_id, since=since)
                for record in waiting:
                    if record.native_id in usages:
                        found[record.job_id] = usages[record.native_id]
                waiting = [r for r in waiting if not _complete(found.get(r.job_id))]
                if not waiting or time.monotonic() >= deadline:
                    break
                time.sleep(1.0)
    return [JobUsage(record, found.get(record.job_id)) for record in records]


def _complete(usage: Usage | None) -> bool:
    return usage is not None and usage.wall_s is not None and usage.cpu_s is not None
