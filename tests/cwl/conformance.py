"""Running the CWL conformance suite with cwltest and reading which tests passed."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from tests.support import VENV_BIN


@dataclass(frozen=True)
class SuiteResult:
    passed: frozenset[str]
    failed: frozenset[str]
    unsupported: frozenset[str]
    log: str

    def summary(self) -> str:
        return f"{len(self.passed)} passed, {len(self.failed)} failed, {len(self.unsupported)} unsupported"


def run_suite(
    suite: Path,
    tool: str,
    tool_args: list[str],
    junit: Path,
    *,
    tags: str | None = "required",
    jobs: int = 2,
    env: dict[str, str] | None = None,
    timeout: float = 3500,
) -> SuiteResult:
    command = [
        str(VENV_BIN / "cwltest"),
        "--test", str(suite / "conformance_tests.yaml"),
        "--tool", tool,
        "-j", str(jobs),
        "--timeout", "300",
        "--junit-xml", str(junit),
    ]
    if tags:
        command += ["--tags", tags]
    command += ["--", *tool_args]
    full_env = dict(os.environ)
    full_env.update(env or {})
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=full_env,
                               cwd=junit.parent, check=False)
    return read_junit(junit, completed.stdout + completed.stderr)


def read_junit(junit: Path, log: str = "") -> SuiteResult:
    passed: set[str] = set()
    failed: set[str] = set()
    unsupported: set[str] = set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = case.get("file") or case.get("name") or ""
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(name)
        elif case.find("skipped") is not None:
            unsupported.add(name)
        else:
            passed.add(name)
    return SuiteResult(frozenset(passed), frozenset(failed), frozenset(unsupported), log)
