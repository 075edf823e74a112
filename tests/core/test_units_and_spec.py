from __future__ import annotations

import pytest

from esap_executors.errors import BadInput
from esap_executors.formats.durations import parse_walltime_seconds
from esap_executors.formats.memory import parse_memory_mib
from esap_executors.job import JobSpec, StageIn, StageOut, make_spec


@pytest.mark.parametrize(
    ("text", "mib"),
    [("512M", 512), ("2G", 2048), ("1T", 1024 * 1024), ("2048K", 2), ("100", 100), ("1.5G", 1536), ("4GiB", 4096)],
)
def test_memory_reads_like_slurm(text: str, mib: int) -> None:
    assert parse_memory_mib(text) == mib


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10", 600), ("10:30", 630), ("01:00:00", 3600), ("1-00:00:00", 86400), ("2-12", 2 * 86400 + 12 * 3600),
     ("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)],
)
def test_walltime_accepts_slurm_and_suffixed_forms(text: str, seconds: int) -> None:
    assert parse_walltime_seconds(text) == seconds


@pytest.mark.parametrize("bad", ["2X", "lots", "-1G", ""])
def test_bad_memory_names_the_field(bad: str) -> None:
    with pytest.raises(BadInput, match="memory"):
        parse_memory_mib(bad)


@pytest.mark.parametrize("bad", ["1:2:3:4", "ten", "5x", "a-01:00"])
def test_bad_walltime_names_the_field(bad: str) -> None:
    with pytest.raises(BadInput, match="walltime"):
        parse_walltime_seconds(bad)


def test_spec_validation_errors() -> None:
    with pytest.raises(BadInput, match="cores"):
        make_spec(["true"], cores="-1")
    with pytest.raises(BadInput, match="cores"):
        make_spec(["true"], cores="two")
    with pytest.raises(BadInput, match="argv"):
        JobSpec().validate()
    with pytest.raises(BadInput, match="stage_in"):
        JobSpec(argv=("true",), stage_in=(StageIn("/etc/hosts", "../escape"),)).validate()
    with pytest.raises(BadInput, match="stage_out"):
        JobSpec(argv=("true",), stage_out=(StageOut("/abs/path", "x"),)).validate()


def test_spec_is_frozen_and_serialisable() -> None:
    spec = make_spec(["python3", "-c", "print(1)"], cores=2, memory="1G", walltime="10m",
                     env={"A": "1"}, labels={"step": "s"}, stage_in=(StageIn("a", "b"),))
    assert spec.memory_mib == 1024 and spec.walltime_s == 600
    assert JobSpec.from_json(spec.to_json()) == spec
    with pytest.raises(AttributeError):
        spec.cores = 3  # type: ignore[misc]
