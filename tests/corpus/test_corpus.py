"""Every bad input of the corpus (tests/corpus/*.yaml) is refused as a user expects: the exit code
the case names, one line naming the problem, no traceback or "internal error", nothing recorded
or submitted, no file created outside the job's directory, no token in any output.

The cases run in this process, each with a fresh state store, working directory and
environment; a summary per family goes to $ESAP_CORPUS_RESULTS (default
.pytest_cache/esap-corpus.json) for the reliability table.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .cases import (
    CANARY,
    CASE_TIMEOUT_S,
    PASSWORD,
    TOKEN,
    Case,
    call_program,
    files_holding,
    load_cases,
    make_files,
    recorded_jobs,
    snapshot,
    substitute,
    time_limit,
)

CASES = load_cases()
RESULTS: dict[str, dict[str, Any]] = {}
# where a case may write: its state store (which holds the local site's job directories) and,
# for cases whose job runs, the output sandbox folder esap makes for it
WRITABLE = ("state", "esap-output", "out", ".snakemake")
MAX_STDERR_LINES = 40
CWLTOOL_LOG = re.compile(r"^(\x1b\[[0-9;]*m)*(INFO|WARNING)\b")  # cwltool's progress lines (not errors)


@pytest.fixture(scope="module", autouse=True)
def summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    default = Path(str(request.config.rootpath)) / ".pytest_cache" / "esap-corpus.json"
    target = Path(os.environ.get("ESAP_CORPUS_RESULTS", str(default)))
    target.parent.mkdir(parents=True, exist_ok=True)
    families: dict[str, dict[str, Any]] = {}
    for name, result in sorted(RESULTS.items()):
        family = families.setdefault(result["family"], {"cases": 0, "held": 0, "failed": []})
        family["cases"] += 1
        if result["held"]:
            family["held"] += 1
        else:
            family["failed"].append(name)
    target.write_text(json.dumps({"families": families, "cases": RESULTS}, indent=2) + "\n")


def test_the_corpus_is_large_enough() -> None:
    families = {case.family for case in CASES}
    assert len(CASES) >= 250, len(CASES)
    assert {"sites", "auth", "cli", "ids", "jdl", "cwl", "snakemake", "tokens", "injection"} <= families
    names = [case.name for case in CASES]
    assert len(names) == len(set(names)), "two cases share an id"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_refused_cleanly(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capfd: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "case"
    root.mkdir()
    make_files(root, case.files)
    state = root / "state"
    for name in [n for n in os.environ if n.startswith(("ESAP_", "BEARER_TOKEN", "SNAKEMAKE_", "CWLTOOL_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ESAP_STATE_DIR", str(state))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(root / "config"))  # no user sites.yaml or auth.yaml
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(root / "runtime"))
    monkeypatch.setenv("ESAP_POLL_START", "0.2")
    monkeypatch.setenv("ESAP_POLL_FLOOR", "0.1")
    monkeypatch.setenv("ESAP_POLL_CEILING", "0.5")
    monkeypatch.setenv("BEARER_TOKEN", TOKEN)  # whatever happens, it must never be printed
    for name, value in case.env.items():
        monkeypatch.setenv(name, substitute(value, root))
    workdir = root / case.cwd
    workdir.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(workdir)
    if case.cwd_deleted:
        workdir.rmdir()
    for command in case.setup:  # its exit code is its own business (a job that fails on purpose)
        call_program("esap", [substitute(arg, root) for arg in command])
    jobs_before = recorded_jobs(state)
    assert jobs_before or not case.setup, "the setup recorded no job"
    first_job = min(jobs_before, default="")
    capfd.readouterr()
    before = snapshot(root, WRITABLE)
    argv = [(root / arg[6:]).read_text() if arg.startswith("@file:")
            else substitute(arg, root).replace("{first_job_prefix}", first_job[:6]).replace("{first_job}", first_job)
            for arg in case.argv]
    started = time.monotonic()
    try:
        with time_limit(CASE_TIMEOUT_S):
            code = call_program(case.program, argv)
    finally:
        os.chdir(tmp_path)
    out, err = capfd.readouterr()
    seconds = time.monotonic() - started
    problems = judge(case, root, code, out, err, before)
    jobs_after = recorded_jobs(state)
    if not case.submits:
        if set(jobs_after) - set(jobs_before):
            problems.append(f"{len(set(jobs_after) - set(jobs_before))} job(s) recorded")
        touched = [job for job, status in jobs_before.items() if jobs_after.get(job) != status]
        if touched:
            problems.append(f"jobs the case never named changed state: {touched}")
    for job, status in jobs_after.items():  # the setup's live jobs end with the case
        if status not in ("completed", "failed", "cancelled"):
            call_program("esap", ["cancel", job])
    capfd.readouterr()
    RESULTS[case.name] = {"family": case.family, "exit": code, "expected": case.exit, "held": not problems,
                          "problems": problems, "seconds": round(seconds, 3)}
    assert not problems, f"{case.name}: {problems}\nstdout: {out[-2000:]}\nstderr: {err[-2000:]}"


def judge(case: Case, root: Path, code: int, out: str, err: str, before: dict[str, float]) -> list[str]:
    problems = []
    both = out + err
    if "Traceback" in both:
        problems.append("a traceback was printed")
    if "internal error" in both:
        problems.append('"internal error" was printed')
    if code != case.exit:
        problems.append(f"exit code {code}, expected {case.exit}")
    if TOKEN in both or TOKEN.split(".")[1] in both:
        problems.append("the token was printed")
    if PASSWORD in both:
        problems.append("a password was printed")
    if CANARY in both:
        problems.append("the content of a file outside the job's directory was printed")
    if case.program != "snakemake" and len(err.splitlines()) > MAX_STDERR_LINES:  # Snakemake's log is its own
        problems.append(f"{len(err.splitlines())} lines on stderr: warnings must be bounded")
    # indented lines explain the line above them (e.g. why each site does not match)
    lines = [line for line in err.splitlines() if line.strip() and ": warning: " not in line
             and not CWLTOOL_LOG.match(line) and not line.startswith("  ")]
    if case.exit in (2, 3):
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, expected one")
        message = lines[-1] if lines else ""
        missing = [word for word in case.words if substitute(word, root) not in message]
        if missing:
            problems.append(f"the error line lacks {missing}")
    elif case.words:
        missing = [word for word in case.words if substitute(word, root) not in both]
        if missing:
            problems.append(f"the output lacks {missing}")
    after = snapshot(root, WRITABLE)
    created = sorted(set(after) - set(before))
    if created:
        problems.append(f"files created outside the job's directory: {created[:5]}")
    copies = [path for path in files_holding(root, CANARY, ()) if path != "outside/secret.txt"]
    if copies:
        problems.append(f"a file outside the job's directory was copied: {copies[:5]}")
    return problems
