"""Append a benchmark's entry to its section of RESULTS.md (created when missing)."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def append_to_section(section: str, entry: str, intro: str = "", results: Path = RESULTS) -> None:
    """Add `entry` at the end of the `## name` section, keeping the other sections as they are."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    if section not in lines:
        head = f"\n\n{section}\n\n" + (f"{intro}\n\n" if intro else "")
        results.write_text(text.rstrip("\n") + head + entry.rstrip("\n") + "\n")
        return
    start = lines.index(section) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    body = "\n".join(lines[start:end]).rstrip("\n")
    updated = lines[:start] + [body + "\n\n" + entry.rstrip("\n") + "\n"] + lines[end:]
    results.write_text("\n".join(updated).rstrip("\n") + "\n")
