"""Property-based tests: each formatter's output parses back to the value it was given, and
SLURM's documented time forms mean what the documentation says for any numbers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esap_executors.formats.durations import (
    format_duration,
    format_slurm_duration,
    parse_slurm_duration,
    parse_slurm_limit,
    parse_walltime_seconds,
)
from esap_executors.formats.hostlists import (
    expand_hostlist,
    expand_index_ranges,
    format_hostlist,
    format_index_ranges,
)
from esap_executors.formats.memory import format_memory, parse_memory_mib
from esap_executors.formats.slurm_numbers import rest_number, rest_number_struct
from esap_executors.formats.timestamps import format_slurm_timestamp, parse_slurm_timestamp
from esap_executors.formats.urls import scheme_of

seconds = st.integers(min_value=0, max_value=400 * 86400)
small = st.integers(min_value=0, max_value=99)


@given(seconds)
def test_slurm_durations_round_trip(value: int) -> None:
    assert parse_slurm_duration(format_slurm_duration(value), field="time") == value
    assert parse_slurm_limit(format_slurm_duration(value), field="time") == value


@given(st.integers(min_value=0, max_value=999), small, small, small)
def test_every_documented_slurm_form_means_what_slurm_says(days: int, hours: int, minutes: int, secs: int) -> None:
    forms = {
        f"{minutes}": minutes * 60,
        f"{minutes}:{secs:02d}": minutes * 60 + secs,
        f"{hours}:{minutes:02d}:{secs:02d}": hours * 3600 + minutes * 60 + secs,
        f"{days}-{hours}": days * 86400 + hours * 3600,
        f"{days}-{hours}:{minutes:02d}": days * 86400 + hours * 3600 + minutes * 60,
        f"{days}-{hours}:{minutes:02d}:{secs:02d}": days * 86400 + hours * 3600 + minutes * 60 + secs,
    }
    for text, expected in forms.items():
        assert parse_slurm_duration(text, field="time") == expected, text


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=999))
def test_fractional_seconds_as_sacct_prints_them(whole: int, millis: int) -> None:
    minutes, secs = divmod(whole, 60)
    text = f"{minutes:02d}:{secs:02d}.{millis:03d}"
    assert parse_slurm_duration(text, field="TotalCPU") == pytest.approx(whole + millis / 1000)


@given(seconds)
def test_short_durations_round_trip(value: int) -> None:
    assert parse_walltime_seconds(format_duration(value)) == value


@given(st.integers(min_value=0, max_value=64 * 1024 * 1024))
def test_memory_sizes_round_trip(mib: int) -> None:
    assert parse_memory_mib(format_memory(mib)) == mib


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    before = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


@given(st.integers(min_value=1, max_value=4_000_000_000))
def test_timestamps_round_trip_in_utc(epoch: int) -> None:
    with local_zone("UTC"):
        assert parse_slurm_timestamp(format_slurm_timestamp(epoch), field="Start") == epoch


@given(st.integers(min_value=1, max_value=4_000_000_000))
def test_timestamps_round_trip_as_text_with_summer_time(epoch: int) -> None:
    """A local time names an instant up to the hour that summer time repeats: its text is stable."""
    with local_zone("Europe/Amsterdam"):
        text = format_slurm_timestamp(epoch)
        parsed = parse_slurm_timestamp(text, field="Start")
        again = None if parsed is None else format_slurm_timestamp(parsed)
    assert parsed is not None and again == text
    assert abs(parsed - epoch) in (0, 3600)


@given(st.one_of(st.none(), st.integers(min_value=0, max_value=2**63)))
def test_rest_numbers_round_trip(value: int | None) -> None:
    assert rest_number(rest_number_struct(value)) == value


host_names = st.builds(
    lambda prefix, number, width: prefix + (f"{number:0{width}d}" if number is not None else ""),
    st.from_regex(r"[a-z][a-z-]{0,5}", fullmatch=True).filter(lambda s: not s.endswith("-")),
    st.one_of(st.none(), st.integers(min_value=0, max_value=5000)),
    st.integers(min_value=1, max_value=5),
)


@given(st.lists(host_names, min_size=1, max_size=40))
def test_hostlists_round_trip(names: list[str]) -> None:
    expanded = expand_hostlist(format_hostlist(names))
    assert sorted(expanded) == sorted(set(names))


@given(st.lists(st.integers(min_value=0, max_value=100_000), max_size=200))
def test_index_ranges_round_trip(indexes: list[int]) -> None:
    assert expand_index_ranges(format_index_ranges(indexes), field="array") == sorted(set(indexes))


@given(st.integers(min_value=0, max_value=10_000), st.integers(min_value=0, max_value=10_000),
       st.integers(min_value=1, max_value=50))
def test_stepped_ranges_are_slurm_array_steps(first: int, span: int, step: int) -> None:
    expected = list(range(first, first + span + 1, step))
    assert expand_index_ranges(f"{first}-{first + span}:{step}%3", field="array") == expected


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9+.-]{0,15}", fullmatch=True), st.text(max_size=40))
def test_url_scheme_is_what_precedes_the_first_separator(scheme: str, rest: str) -> None:
    assert scheme_of(f"{scheme}://{rest}") == scheme.lower()


@given(st.text(max_size=40))
def test_absolute_paths_have_no_scheme(path: str) -> None:
    assert scheme_of("/" + path) is None
