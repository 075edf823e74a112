"""The bad-input corpus: case files (tests/corpus/*.yaml), how a case's files are made and how
a case is run, in this process (fast: no interpreter start per case) with a fresh state store.

A case file:

    family: sites                 # a row of the reliability table
    defaults: {argv: [...], exit: 2, program: esap}
    cases:
      - id: backend-missing
        files: {sites.yaml: "s: {}\\n"}          # text, or {hex}, {fifo}, {symlink}, {repeat}, {nested}
        argv: [--sites, sites.yaml, submit, --, /bin/true]
        exit: 2
        words: [sites.yaml:1, backend]          # all appear in the one error line
        submits: false                          # true: the job runs (e.g. an escaping symlink)

`{case}` in argv and env is the case's directory, `{secret}` the canary file outside the job's
directory, `{nonutf8}` a byte that is not UTF-8 (as Python hands such an argument over).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

CORPUS_DIR = Path(__file__).resolve().parent
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJjb3JwdXMtc2VjcmV0LXRva2VuIn0.c29tZXNpZ25hdHVyZXZhbHVl"
PASSWORD = "Hunter2Password"  # the password in the corpus's URLs: never printed
CANARY = "CANARY-5c1e7-must-never-be-copied"
NON_UTF8 = b"\xff\xfe".decode("utf-8", "surrogateescape")
CASE_TIMEOUT_S = 60


@dataclass
class Case:
    family: str
    id: str
    argv: list[str]
    exit: int
    program: str = "esap"
    files: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    submits: bool = False
    cwd: str = "."
    cwd_deleted: bool = False
    setup: list[list[str]] = field(default_factory=list)  # esap commands run first (e.g. a live job)

    @property
    def name(self) -> str:
        return f"{self.family}/{self.id}"


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(CORPUS_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        defaults = data.get("defaults", {})
        for raw in data["cases"]:
            values = {**defaults, **raw}
            values["env"] = {**defaults.get("env", {}), **raw.get("env", {})}
            if isinstance(values.get("words"), str):
                values["words"] = [values["words"]]
            cases.append(Case(family=data["family"], **values))
    return cases


# --- the case's files -----------------------------------------------------------------------------
def make_files(root: Path, files: dict[str, Any]) -> None:
    (root / "outside").mkdir()
    (root / "outside" / "secret.txt").write_text(CANARY + "\n")
    for name, spec in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(spec, str):
            path.write_text(substitute(spec, root))
        elif "hex" in spec:
            path.write_bytes(bytes.fromhex(spec["hex"].replace(" ", "")))
        elif "fifo" in spec:
            os.mkfifo(path)
        elif "symlink" in spec:
            path.symlink_to(spec["symlink"].replace("{case}", str(root)))
        elif "dir" in spec:
            path.mkdir(exist_ok=True)
        elif "repeat" in spec:
            path.write_text(spec.get("head", "") + spec["repeat"] * spec["times"] + spec.get("tail", ""))
        elif "numbered" in spec:  # `numbered` with {i} = 1, 2, ... `times` lines
            body = "".join(spec["numbered"].replace("{i}", str(i)) for i in range(1, spec["times"] + 1))
            path.write_text(spec.get("head", "") + body + spec.get("tail", ""))
        elif "nested" in spec:  # a YAML mapping nested `nested` levels deep
            depth = spec["nested"]
            path.write_text(spec.get("head", "") + "{a: " * depth + "1" + "}" * depth + "\n")
        else:
            raise ValueError(f"unknown file spec {spec!r}")
        if isinstance(spec, dict) and "mode" in spec:
            path.chmod(spec["mode"])


def substitute(text: str, root: Path) -> str:
    return (text.replace("{case}", str(root)).replace("{secret}", str(root / "outside" / "secret.txt"))
            .replace("{nonutf8}", NON_UTF8))


def snapshot(root: Path, skip: tuple[str, ...]) -> dict[str, float]:
    """Every path under root (not following links) but the skipped top-level folders."""
    found: dict[str, float] = {}
    for folder, dirs, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        if relative.split(os.sep)[0] in skip:
            dirs[:] = []
            continue
        for name in dirs + names:
            path = os.path.join(folder, name)
            relative_path = os.path.relpath(path, root)
            if relative_path.split(os.sep)[0] not in skip:
                found[relative_path] = os.lstat(path).st_mtime
    return found


def files_holding(root: Path, text: str, skip: tuple[str, ...]) -> list[str]:
    """Regular files under root (links not followed) whose content holds `text`."""
    holding = []
    needle = text.encode()
    for folder, dirs, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        if relative.split(os.sep)[0] in skip:
            dirs[:] = []
            continue
        for name in names:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                if needle in path.read_bytes():
                    holding.append(str(path.relative_to(root)))
            except OSError:
                continue
    return holding


def recorded_jobs(state: Path) -> dict[str, str]:
    """job id -> state of every job in the case's store."""
    database = state / "state.db"
    if not database.exists():
        return {}
    db = sqlite3.connect(database)
    try:
        return {str(job): str(status) for job, status in db.execute("SELECT job_id, state FROM jobs")}
    except sqlite3.OperationalError:  # no schema: nothing was ever recorded
        return {}
    finally:
        db.close()


# --- running one case -------------------------------------------------------------------------------
class CaseTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise CaseTimeout(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def call_program(program: str, argv: list[str]) -> int:
    """The program's main() in this process; its exit code (SystemExit included)."""
    try:
        if program == "esap":
            from esap_executors.cli.main import main

            return main(argv)
        if program == "esap-cwltool":
            from esap_executors.cwl.main import main as cwl_main

            return cwl_main(argv)
        if program == "snakemake":
            from snakemake.cli import main as snakemake_main

            snakemake_main(argv)
            return 0
        raise ValueError(f"unknown program {program}")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
