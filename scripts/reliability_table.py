#!/usr/bin/env python3
"""Write RELIABILITY.md from the test results: every fault and bad-input family tried.

    python scripts/reliability_table.py [--faults FILE] [--corpus FILE] [--output RELIABILITY.md]

Inputs (both written by the test suite, either may be missing):
- the fault ledger of tests/faults (default .pytest_cache/esap-faults.json, or $ESAP_FAULT_RESULTS):
  {"faults": {fault: {"cases", "held", "lost", "duplicated", "error"}}, "cases": {case: {...}}};
- the bad-input corpus summary of tests/corpus (default .pytest_cache/esap-corpus.json, or
  $ESAP_CORPUS_RESULTS): {"families": {family: {"cases", "held", "failed": [case ids]}}}.
A case held when the test saw what a user must see: every job run exactly once, or the input
refused by name with nothing submitted. Otherwise it was lost (a job never ran or was
forgotten), duplicated (ran twice), or an error (the test failed before it could tell).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".pytest_cache"


def load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return data
    except (OSError, ValueError):
        return {}


def verdict(row: dict[str, Any]) -> str:
    problems = [f"{row.get(k, 0)} {k}" for k in ("lost", "duplicated", "error") if row.get(k)]
    return "held" if not problems and row.get("held") == row.get("cases") else ", ".join(problems) or "not held"


def fault_rows(faults: dict[str, Any]) -> list[str]:
    lines = []
    details: dict[str, list[str]] = {}
    for case in faults.get("cases", {}).values():
        if case.get("detail"):
            details.setdefault(case["fault"], []).append(case["detail"])
    for name, row in sorted(faults.get("faults", {}).items()):
        where = "; ".join(sorted(set(details.get(name, []))))
        lines.append(f"| fault | {name} | {row['cases']} | {row['held']} | {row['lost']} | {row['duplicated']} | "
                     f"{verdict(row)} | {where} |")
    return lines


def corpus_rows(corpus: dict[str, Any]) -> list[str]:
    lines = []
    for name, row in sorted(corpus.get("families", {}).items()):
        failed = row.get("failed") or []
        row = {"cases": row["cases"], "held": row["held"], "error": row["cases"] - row["held"]}
        note = ("not held: " + ", ".join(failed[:5]) + (" …" if len(failed) > 5 else "")) if failed else \
            "as each case expects: its exit code, one line naming the problem, nothing submitted"
        lines.append(f"| bad input | {name} | {row['cases']} | {row['held']} | 0 | 0 | {verdict(row)} | {note} |")
    return lines


def render(faults: dict[str, Any], corpus: dict[str, Any], sources: list[str]) -> str:
    rows = fault_rows(faults) + corpus_rows(corpus)
    total = sum(int(line.split("|")[3]) for line in rows)
    held = sum(int(line.split("|")[4]) for line in rows)
    out = [
        "# Reliability",
        "",
        "What the test suite did to esap-executors on the real services, and what a user saw.",
        "Faults: `tests/faults/` (one module per fault); bad inputs: `tests/corpus/`. A case *held*",
        "when every job ran exactly once (faults) or the input was refused by name with nothing",
        "submitted (bad inputs); *lost*: a job never ran or was forgotten; *duplicated*: a job ran",
        "twice; *error*: the test failed before it could tell.",
        "",
        f"Written by `scripts/reliability_table.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
        f"from {', '.join(sources) or 'no results'}: {held} of {total} cases held.",
        "",
        "| kind | fault or input family | cases | held | lost | duplicated | result | where / notes |",
        "|---|---|---:|---:|---:|---:|---|---|",
        *rows,
        "",
        "Regenerate: run the tests (`scripts/test.sh`, or `pytest tests/faults tests/corpus`), then",
        "`python scripts/reliability_table.py`.",
        "",
    ]
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=Path,
                        default=Path(os.environ.get("ESAP_FAULT_RESULTS", str(CACHE / "esap-faults.json"))))
    parser.add_argument("--corpus", type=Path,
                        default=Path(os.environ.get("ESAP_CORPUS_RESULTS", str(CACHE / "esap-corpus.json"))))
    parser.add_argument("--output", type=Path, default=ROOT / "RELIABILITY.md")
    args = parser.parse_args()
    faults, corpus = load(args.faults), load(args.corpus)
    sources = [f"`{p.relative_to(ROOT) if p.is_relative_to(ROOT) else p.name}`"
               for p, d in ((args.faults, faults), (args.corpus, corpus)) if d]
    args.output.write_text(render(faults, corpus, sources))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
