"""Property-based tests: no input makes the parsers of units, durations, JDL, ClassAd
expressions, YAML configs, ids and output names raise anything but the project's own errors,
and what they accept stays within what the store and the schedulers hold."""

from __future__ import annotations

import math
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esap_executors.cli.main import user_text
from esap_executors.confined import OutsideJobDirectory, resolve_inside
from esap_executors.errors import BadInput
from esap_executors.formats.bounds import MAX_COUNT, MAX_MEMORY_MIB, MAX_WALLTIME_S
from esap_executors.formats.durations import parse_slurm_duration, parse_walltime_seconds
from esap_executors.formats.expressions import parse_classad_expression
from esap_executors.formats.memory import parse_memory_mib
from esap_executors.ids import checked_id
from esap_executors.jdl.document import parse_text
from esap_executors.jdl.translate import translate
from esap_executors.job import make_spec
from esap_executors.matchmaking import split_conjuncts
from esap_executors.yamlsource import load_yaml_text

# numbers as users type them: digits, signs, exponents, units, and the words Python's float knows
number_text = st.one_of(
    st.text(alphabet="0123456789.-+eE:smhdKMGTiB nafINFx_", max_size=30),
    st.from_regex(r"\A-?\d{1,40}(\.\d{1,10})?([eE][+-]?\d{1,4})?\s?[smhdKMGT]?\Z"),
    st.sampled_from(["inf", "-inf", "nan", "1e308", "1e309", "Infinity", "١٢", "0x10", "1_000"]),
)
numbers = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), st.floats(allow_nan=True, allow_infinity=True))


@given(st.one_of(number_text, numbers, st.text(max_size=50)))
def test_memory_sizes_are_refused_or_within_bounds(value: str | float) -> None:
    try:
        mib = parse_memory_mib(value)
    except BadInput:
        return
    assert 0 <= mib <= MAX_MEMORY_MIB


@given(st.one_of(number_text, numbers, st.text(max_size=50)))
def test_walltimes_are_refused_or_within_bounds(value: str | float) -> None:
    try:
        seconds = parse_walltime_seconds(value)
    except BadInput:
        return
    assert 0 <= seconds <= MAX_WALLTIME_S


@given(st.one_of(number_text, st.text(max_size=40)))
def test_slurm_durations_are_refused_or_finite(text: str) -> None:
    try:
        seconds = parse_slurm_duration(text, field="time")
    except BadInput:
        return
    assert math.isfinite(seconds) and seconds >= 0


@given(st.one_of(number_text, st.text(max_size=30)), st.one_of(number_text, st.text(max_size=30)))
def test_job_counts_from_the_command_line_are_refused_or_within_bounds(cores: str, tasks: str) -> None:
    try:
        spec = make_spec(["/bin/true"], cores=cores, tasks=tasks)
    except BadInput:
        return
    assert 1 <= spec.tasks <= spec.cores <= MAX_COUNT


# ClassAd: real operators, attribute references and literals, and arbitrary text
classad_pieces = st.sampled_from([
    "other.", "target.", "my.", "GlueCEInfoTotalCPUs", "Name", "&&", "||", "!", "==", "!=", "=?=", "<", ">=",
    "+", "-", "*", "/", "%", "(", ")", "[", "]", "{", "}", ",", ";", "?", ":", '"', "\\", "1", "1e308", "-7",
    "true", "false", "undefined", "error", "strcat(", "member(", "regexp(", " ", "\n", "'", "=",
])
classad_text = st.one_of(st.lists(classad_pieces, max_size=40).map("".join), st.text(max_size=200))


@given(classad_text)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_classad_expressions_are_parsed_or_refused(text: str) -> None:
    try:
        parse_classad_expression(text, field="Requirements")
    except BadInput as exc:
        assert "\n" not in user_text(str(exc))


@given(classad_text)
def test_requirements_split_into_terms_whatever_they_are(text: str) -> None:
    terms = split_conjuncts(text)
    assert all(isinstance(term, str) and term for term in terms)


jdl_names = st.sampled_from([
    "Executable", "Arguments", "StdOutput", "StdError", "InputSandbox", "OutputSandbox", "CpuNumber", "CPUTime",
    "RetryCount", "ShallowRetryCount", "Parameters", "ParameterStart", "ParameterStep", "ParameterFactor",
    "JobType", "Type", "Environment", "Requirements", "Rank", "SMPGranularity", "HostNumber", "WholeNodes",
    "PerusalFileEnable", "PerusalTimeInterval", "ExpiryTime", "OutputSandboxDestURI", "Prologue", "Zz",
])
jdl_values = st.one_of(
    st.integers(min_value=-(10**25), max_value=10**25).map(str),
    st.floats(allow_nan=False).map(repr),
    st.text(alphabet=st.characters(blacklist_characters='"\\'), max_size=20).map(lambda t: f'"{t}"'),
    st.lists(st.text(alphabet=st.characters(blacklist_characters='"\\'), max_size=8), max_size=4).map(
        lambda items: "{" + ", ".join(f'"{i}"' for i in items) + "}"),
    st.sampled_from(["true", "false", '"Parametric"', '"Normal"', '"/bin/true"', '{"."}', '{""}', "1e300", "_PARAM_",
                     "other.X > 1", "1 +", "(", "undefined"]),
    classad_text,
)
jdl_statements = st.lists(st.tuples(jdl_names, jdl_values), max_size=12)


@given(st.one_of(jdl_statements.map(lambda items: "".join(f"{n} = {v};\n" for n, v in items)),
                 st.text(max_size=300)))
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture], deadline=None)
def test_jdl_documents_translate_or_are_refused_with_a_line(tmp_path: Path, text: str) -> None:
    try:
        description = translate(parse_text(text, "job.jdl", tmp_path))
    except BadInput as exc:
        assert str(exc).startswith("job.jdl"), str(exc)
        return
    for job in description.jobs:
        assert 1 <= job.spec.cores <= MAX_COUNT
        assert job.spec.walltime_s is None or job.spec.walltime_s <= MAX_WALLTIME_S
        assert job.spec.retries <= 100


@given(st.text(max_size=400))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_yaml_configs_load_or_are_refused(text: str) -> None:
    try:
        load_yaml_text(text, "sites.yaml")
    except BadInput as exc:
        assert str(exc).startswith("sites.yaml")


@given(st.text(max_size=300))
def test_ids_are_exact_text_or_refused(text: str) -> None:
    try:
        ident = checked_id(text)
    except BadInput:
        return
    assert ident == text and ident and not re.search(r"[%*?\s]", ident)


@given(st.text(max_size=2000))
def test_error_lines_are_one_bounded_line_of_printable_text(message: str) -> None:
    lines = user_text(message).split("\n")
    assert all(line.startswith("  ") for line in lines[1:])  # only esap's indented explanations
    assert not any("\x1b" in line or "\r" in line for line in lines)
    assert len(lines) <= 20 and all(len(line) <= 700 for line in lines)


@given(st.lists(st.sampled_from(["a", "b", "/", ".", "..", "~", "\\", " ", "\x00"]), max_size=12).map("".join))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_output_names_resolve_inside_the_job_directory_or_are_refused(tmp_path: Path, name: str) -> None:
    job = tmp_path / "job"
    (job / "a").mkdir(parents=True, exist_ok=True)
    if not (job / "b").is_symlink():
        (job / "b").symlink_to(tmp_path)  # a link out of the job's directory
    try:
        relative = resolve_inside(job, name)
    except OutsideJobDirectory:
        return
    resolved = (job.resolve() / relative).resolve()
    assert resolved.is_relative_to(job.resolve()) and resolved != job.resolve()
