"""What `esap output` needs to know about a JDL job, kept in the state store's own table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..store import Store
from .sandbox import OutputFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS jdl_jobs (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    jdl TEXT NOT NULL,
    outputs TEXT NOT NULL,
    output_dir TEXT NOT NULL,
    perusal INTEGER,
    PRIMARY KEY (run_id, key)
);
"""


@dataclass(frozen=True)
class JdlRecord:
    run_id: str
    key: str
    jdl: str
    outputs: tuple[OutputFile, ...]
    output_dir: Path
    perusal_interval: int | None


def save(store: Store, records: Sequence[JdlRecord]) -> None:
    store.connect().executescript(SCHEMA)
    with store.transaction() as db:
        db.executemany(
            "INSERT OR REPLACE INTO jdl_jobs(run_id, key, jdl, outputs, output_dir, perusal) VALUES (?,?,?,?,?,?)",
            [
                (r.run_id, r.key, r.jdl, json.dumps([[o.name, o.dest] for o in r.outputs]), str(r.output_dir),
                 r.perusal_interval)
                for r in records
            ],
        )


def find(store: Store, run_id: str, key: str) -> JdlRecord | None:
    db = store.connect()
    db.executescript(SCHEMA)
    row = db.execute(
        "SELECT jdl, outputs, output_dir, perusal FROM jdl_jobs WHERE run_id=? AND key=?", (run_id, key)
    ).fetchone()
    if row is None:
        return None
    outputs = tuple(OutputFile(name=n, dest=d) for n, d in json.loads(row[1]))
    return JdlRecord(run_id, key, str(row[0]), outputs, Path(row[2]), row[3])
