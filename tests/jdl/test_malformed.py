"""A malformed JDL: one line naming the file, the line and the problem; exit 2; nothing submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.jdl.document import parse_text

from .helpers import nothing_submitted, one_line_error, run, write_jdl

GOOD_START = 'Type = "Job";\nExecutable = "/bin/echo";\n'

CASES = [
    # (text, line, words of the message)
    (GOOD_START + 'Arguments = "-f"\nStdOutput = "o.txt";\n', 3, "missing ';' after the value of Arguments"),
    (GOOD_START + 'Arguments = "unterminated;\n', 3, "string is not closed"),
    (GOOD_START + 'InputSandbox = {"a", "b";\nStdOutput = "o";\n', 3, "'{' is never closed"),
    (GOOD_START + "CpuNumber = 2 +;\n", 3, "cannot parse the value of CpuNumber: 2 +"),
    (GOOD_START + "Arguments;\n", 3, "expected 'Name = value;' but found 'Arguments'"),
    (GOOD_START + "StdOutput = ;\n", 3, "StdOutput has no value"),
    (GOOD_START + 'executable = "/bin/true";\n', 3, "executable is set twice (first on line 2)"),
    (GOOD_START + 'OutputSandbox = {"a"\n"b"};\n', 3, "missing ',' between two items of the list OutputSandbox"),
    (GOOD_START + "/* never closed\n", 3, "/* comment is never closed"),
    ("[\n" + GOOD_START + "\n", 1, "never closed with ]"),
    (GOOD_START + "Arguments = \"x\";\n)\n", 4, "unexpected ')'"),
    (GOOD_START + "StdError = Undefinedthing;\n", 3, "is undefined"),
    (GOOD_START + "StdError = 'err.txt';\n", 3, "strings are written in double quotes"),
]


@pytest.mark.parametrize(("text", "line", "words"), CASES, ids=[c[2][:30] for c in CASES])
def test_parse_errors_point_at_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    from esap_executors.jdl import translate

    with pytest.raises(BadInput) as caught:
        translate(parse_text(text, "job.jdl", tmp_path))
    message = str(caught.value)
    assert message.startswith(f"job.jdl:{line}: "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(("case", "verb"), [(0, "run"), (2, "submit"), (6, "run")],
                         ids=["missing-semicolon", "open-brace", "twice"])
def test_cli_prints_one_line_exits_2_and_submits_nothing(tmp_path: Path, state_dir: Path, case: int,
                                                         verb: str) -> None:
    text, line, words = CASES[case]
    path = write_jdl(tmp_path, text)
    result = run(verb, str(path), cwd=tmp_path)
    assert result.returncode == 2
    error = one_line_error(result)
    assert error.startswith(f"esap: error: {path}:{line}: ") and words in error
    assert nothing_submitted(tmp_path)


def test_refused_attribute_and_unsupported_protocol_submit_nothing(tmp_path: Path, state_dir: Path) -> None:
    interactive = write_jdl(tmp_path, 'JobType = "Interactive";\nExecutable = "/bin/sh";\n', "i.jdl")
    result = run("run", str(interactive), cwd=tmp_path)
    assert result.returncode == 2 and "takes no Executable" in one_line_error(result)
    gsiftp = write_jdl(tmp_path, GOOD_START + 'InputSandbox = {"gsiftp://example.it:5678/tmp/my_anlysis.py"};\n',
                       "g.jdl")
    result = run("submit", str(gsiftp), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{gsiftp}:3: InputSandbox: " in one_line_error(result) and "protocol gsiftp:// not supported" \
        in result.stderr
    traversal = write_jdl(tmp_path, GOOD_START + 'OutputSandbox = {"../../etc/passwd"};\n', "t.jdl")
    result = run("submit", str(traversal), cwd=tmp_path)
    assert result.returncode == 2 and "'../../etc/passwd' refused" in one_line_error(result)
    assert nothing_submitted(tmp_path)


def test_unreadable_file(tmp_path: Path, state_dir: Path) -> None:
    result = run("submit", str(tmp_path / "missing.jdl"), cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.jdl: cannot read the JDL file" in one_line_error(result)
