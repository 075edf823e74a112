"""Each format's parser on a table of inputs and outputs, as SLURM and the users write them."""

from __future__ import annotations

import time

import pytest

from esap_executors.backends.slurm.cli import CliAccess
from esap_executors.backends.slurm.cluster import check
from esap_executors.backends.slurm.mapping import Resources
from esap_executors.backends.slurm.records import expand_array_id
from esap_executors.errors import BadInput
from esap_executors.formats.durations import (
    format_duration,
    format_slurm_duration,
    parse_slurm_duration,
    parse_slurm_limit,
    parse_walltime_seconds,
    rest_duration_seconds,
    sacct_seconds,
)
from esap_executors.formats.hostlists import (
    expand_hostlist,
    expand_index_ranges,
    format_hostlist,
    format_index_ranges,
)
from esap_executors.formats.memory import format_memory, parse_memory_mib, sacct_memory_mib
from esap_executors.formats.slurm_numbers import rest_number, rest_number_struct
from esap_executors.formats.timestamps import format_slurm_timestamp, parse_slurm_timestamp
from esap_executors.formats.urls import scheme_of

DAY, HOUR, MINUTE = 86400, 3600, 60


# --- durations ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5", 5 * MINUTE),  # minutes
        ("90", 90 * MINUTE),
        ("5:30", 5 * MINUTE + 30),  # minutes:seconds
        ("01:02:03", HOUR + 2 * MINUTE + 3),  # hours:minutes:seconds
        ("2-6", 2 * DAY + 6 * HOUR),  # days-hours
        ("0-5", 5 * HOUR),  # a zero day part still starts the clock at hours
        ("1-12:30", DAY + 12 * HOUR + 30 * MINUTE),  # days-hours:minutes
        ("1-00:00:00", DAY),  # days-hours:minutes:seconds
        ("3-01:02:03", 3 * DAY + HOUR + 2 * MINUTE + 3),
        (" 00:05:00 ", 5 * MINUTE),
        ("00:01.234", 1.234),  # sacct TotalCPU of a short job
        ("01:00:00.5", HOUR + 0.5),
        ("0:00", 0),
    ],
)
def test_slurm_duration_forms(text: str, seconds: float) -> None:
    assert parse_slurm_duration(text, field="time") == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad",
    ["", "1:2:3:4", "1-1:2:3:4", "-5", "a-01:00", "1-", "5.5", "1-2.5", "1:2.5:3", "10m", "1 day", "1--2", ":30"],
)
def test_bad_slurm_duration_is_one_line_naming_the_field(bad: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_slurm_duration(bad, field="MaxTime of partition debug")
    message = str(caught.value)
    assert message.startswith("MaxTime of partition debug: ") and "\n" not in message
    assert "D-HH:MM:SS" in message


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("UNLIMITED", None), ("INFINITE", None), ("Partition_Limit", None), ("NONE", None),
     ("00:05:00", 300), ("1-12:30", DAY + 12 * HOUR + 30 * MINUTE), ("1-00:00:00", DAY), ("00:00:00.2", 1)],
)
def test_slurm_limits(text: str, seconds: int | None) -> None:
    assert parse_slurm_limit(text, field="MaxTime") == seconds


class _Scontrol(CliAccess):
    """The CLI path reading a cluster whose partition limit is printed as '1-12:30'."""

    def _run(self, argv: list[str], *, stdin: str | None = None, what: str) -> str:
        if argv[:3] == ["scontrol", "show", "config"]:
            return "SLURM_VERSION = 22.05.8\nAccountingStorageType = accounting_storage/none\n"
        if argv[-1] == "partition":
            return "PartitionName=long Default=YES MaxTime=1-12:30 Nodes=n[1-2] State=UP\n"
        return "".join(f"NodeName=n{i} CPUTot=4 RealMemory=4000 State=IDLE\n" for i in (1, 2))


def test_partition_limit_of_days_hours_minutes_is_read_as_hours_and_minutes() -> None:
    """A 30 h job fits a partition of '1-12:30' (36.5 h); the old reading (24 h 12 min) refused it."""
    cluster = _Scontrol(user="someone").cluster()
    assert cluster.partitions["long"].max_time_s == DAY + 12 * HOUR + 30 * MINUTE
    assert cluster.partitions["long"].nodes == ("n1", "n2")
    check(cluster, [Resources(walltime_s=30 * HOUR)])
    with pytest.raises(BadInput, match=r"^walltime: 37h exceeds the time limit of partition 'long' \(2190m\)$"):
        check(cluster, [Resources(walltime_s=37 * HOUR)])


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:07", 7), ("00:01.234", 1.234), ("1-02:03:04", DAY + 2 * HOUR + 3 * MINUTE + 4),
     ("", None), ("INVALID", None), ("Unknown", None)],
)
def test_sacct_elapsed_and_total_cpu(text: str, seconds: float | None) -> None:
    assert sacct_seconds(text, field="sacct TotalCPU") == (None if seconds is None else pytest.approx(seconds))


def test_bad_sacct_value_names_the_column() -> None:
    with pytest.raises(BadInput, match=r"^sacct Elapsed: 'soon' is not a SLURM time"):
        sacct_seconds("soon", field="sacct Elapsed")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00"), (59, "00:00:59"), (3600, "01:00:00"), (DAY + 61, "1-00:01:01"), (10 * DAY, "10-00:00:00")],
)
def test_slurm_duration_formatting(seconds: int, text: str) -> None:
    assert format_slurm_duration(seconds) == text


@pytest.mark.parametrize(
    ("value", "seconds"),
    [({"seconds": 3, "microseconds": 250000}, 3.25), (12, 12.0), ({"set": True, "infinite": False, "number": 9}, 9.0),
     ({"set": False, "infinite": False, "number": 0}, 0.0), (None, 0.0)],
)
def test_rest_durations(value: object, seconds: float) -> None:
    assert rest_duration_seconds(value) == seconds


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("10", 600), (10, 600), (1.5, 90), ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", DAY), ("1-12:30", 131400),
     ("0-5", 5 * HOUR), ("00:00:00.5", 1)],
)
def test_walltime_requests(value: str | int | float, seconds: int) -> None:
    assert parse_walltime_seconds(value) == seconds


@pytest.mark.parametrize("bad", ["ten", "5x", "1:2:3:4", "", True, -1])
def test_bad_walltime_names_the_field_and_the_forms(bad: str | int | bool) -> None:
    with pytest.raises(BadInput, match=r"^walltime: "):
        parse_walltime_seconds(bad)


@pytest.mark.parametrize(("seconds", "text"), [(45, "45s"), (90 * 60, "90m"), (7200, "2h"), (2 * DAY, "2d"), (0, "0d")])
def test_short_duration_formatting(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


# --- memory ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "mib"), [("10432K", 11), ("2G", 2048), ("1048576", 1), ("0", 0), ("1.5M", 2), ("", None), (" ", None)]
)
def test_sacct_max_rss(text: str, mib: int | None) -> None:
    assert sacct_memory_mib(text, field="sacct MaxRSS") == mib


def test_bad_max_rss_names_the_column() -> None:
    with pytest.raises(BadInput, match=r"^sacct MaxRSS: '12Q'"):
        sacct_memory_mib("12Q", field="sacct MaxRSS")


@pytest.mark.parametrize(("mib", "text"),
                         [(0, "0M"), (512, "512M"), (2048, "2G"), (1024 * 1024, "1T"), (1536, "1536M")])
def test_memory_formatting(mib: int, text: str) -> None:
    assert format_memory(mib) == text and parse_memory_mib(text) == mib


# --- timestamps -----------------------------------------------------------------------------
def test_sacct_timestamps_are_local_iso_times() -> None:
    epoch = time.mktime((2026, 12, 7, 15, 4, 5, 0, 0, -1))
    assert format_slurm_timestamp(epoch) == "2026-12-07T15:04:05"
    assert parse_slurm_timestamp("2026-12-07T15:04:05", field="Start") == epoch


@pytest.mark.parametrize(
    ("value", "epoch"),
    [("Unknown", None), ("None", None), ("", None), (None, None), (0, None), (1796655845, 1796655845.0),
     ("1796655845", 1796655845.0), ({"set": True, "infinite": False, "number": 1796655845}, 1796655845.0),
     ({"set": False, "infinite": False, "number": 0}, None), ({"set": True, "infinite": True, "number": 0}, None)],
)
def test_timestamps_without_a_time_and_rest_numbers(value: object, epoch: float | None) -> None:
    assert parse_slurm_timestamp(value, field="start") == epoch


@pytest.mark.parametrize("bad", ["2026-13-07T15:04:05", "yesterday", "2026-12-07 15:04:05", [1]])
def test_bad_timestamp_names_the_field(bad: object) -> None:
    with pytest.raises(BadInput, match=r"^End: .* is not a SLURM time stamp"):
        parse_slurm_timestamp(bad, field="End")


def test_rest_numbers() -> None:
    assert rest_number(5) == 5 and rest_number("7") == 7 and rest_number(True) is None
    assert rest_number({"set": True, "infinite": False, "number": 3}) == 3
    assert rest_number({"set": True, "infinite": True, "number": 0}) is None
    assert rest_number_struct(4) == {"set": True, "infinite": False, "number": 4}
    assert rest_number(rest_number_struct(None)) is None
    assert rest_number(rest_number_struct(None, infinite=True)) is None


# --- host lists and index ranges ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("n[1-3,5],gpu1", ["n1", "n2", "n3", "n5", "gpu1"]),
        ("node[08-10]", ["node08", "node09", "node10"]),
        ("rack[1-2]-n[1-2]", ["rack1-n1", "rack1-n2", "rack2-n1", "rack2-n2"]),
        ("n1", ["n1"]),
        ("", []),
        ("(null)", []),
        ("None assigned", []),
    ],
)
def test_hostlists(text: str, names: list[str]) -> None:
    assert expand_hostlist(text) == names


@pytest.mark.parametrize("bad", ["n[1-", "n[3-1]", "n[[1]]", "n[a-b]"])
def test_bad_hostlist_names_the_field(bad: str) -> None:
    with pytest.raises(BadInput, match=r"^Nodes of partition debug: .* is not a SLURM host list"):
        expand_hostlist(bad, field="Nodes of partition debug")


def test_hostlist_formatting() -> None:
    assert format_hostlist(["n1", "n2", "n3", "n5", "gpu1"]) == "gpu1,n[1-3,5]"
    assert format_hostlist(["node08", "node09", "node10"]) == "node[08-10]"


@pytest.mark.parametrize(
    ("text", "indexes"),
    [("0-3,7", [0, 1, 2, 3, 7]), ("1-9:2", [1, 3, 5, 7, 9]), ("[0-3%2]", [0, 1, 2, 3]), ("5", [5]), ("", []),
     ("0x3FC", [2, 3, 4, 5, 6, 7, 8, 9]), ("0x1", [0]), ("2-9,12", [2, 3, 4, 5, 6, 7, 8, 9, 12])],
)
def test_array_index_ranges(text: str, indexes: list[int]) -> None:
    assert expand_index_ranges(text, field="array") == indexes


@pytest.mark.parametrize("bad", ["3-1", "1-9:0", "a", "1,,2", "0xZZ", "1-", "0-99999999"])
def test_bad_index_ranges_name_the_field(bad: str) -> None:
    with pytest.raises(BadInput, match=r"^array.task: "):
        expand_index_ranges(bad, field="array.task")


def test_index_range_formatting() -> None:
    assert format_index_ranges([7, 0, 1, 2, 3, 3]) == "0-3,7"
    assert format_index_ranges([]) == ""


def test_pending_array_job_ids() -> None:
    assert expand_array_id("123_[0-2,7%2]") == ["123_0", "123_1", "123_2", "123_7"]
    assert expand_array_id("123_4") == ["123_4"]
    assert expand_array_id("123") == ["123"]


# --- URL schemes ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("location", "scheme"),
    [("https://example.org/x", "https"), ("HTTP://h/x", "http"), ("file:///tmp/a", "file"),
     ("davs+x.y-z://h/p", "davs+x.y-z"), ("/data/run://1", None), ("relative/path", None), ("1http://h", None),
     ("", None), ("C:/data", None)],
)
def test_url_schemes(location: str, scheme: str | None) -> None:
    assert scheme_of(location) == scheme
