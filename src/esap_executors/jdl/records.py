"""What `esap output` needs to know about a JDL job, kept in the state store's own table."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..store import JdlJobRow, Store
from .sandbox import OutputFile


@dataclass(frozen=True)
class JdlRecord:
    run_id: str
    key: str
    jdl: str
    outputs: tuple[OutputFile, ...]
    output_dir: Path
    perusal_interval: int | None


def save(store: Store, records: Sequence[JdlRecord]) -> None:
    store.save_jdl_jobs([
        JdlJobRow(r.run_id, r.key, r.jdl, tuple((o.name, o.dest) for o in r.outputs), str(r.output_dir),
                  r.perusal_interval)
        for r in records
    ])


def find(store: Store, run_id: str, key: str) -> JdlRecord | None:
    row = store.jdl_job(run_id, key)
    if row is None:
        return None
    outputs = tuple(OutputFile(name=name, dest=dest) for name, dest in row.outputs)
    return JdlRecord(run_id, key, row.jdl, outputs, Path(row.output_dir), row.perusal_interval)
