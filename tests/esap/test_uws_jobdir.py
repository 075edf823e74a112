"""A UWS job's directory is the worker's and its job users' group's alone; one someone else made is
refused (the job's errorSummary names it) and nothing is written into it."""

from __future__ import annotations

import grp
import os
import pwd
import stat
from pathlib import Path

import pytest

from esap_executors.esap.uws_jobdir import UnsafeDirectory, job_directory

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="making a directory another user's needs root")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_without_a_group_the_directories_are_the_workers_alone(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(tmp_path / "jobs"))
    monkeypatch.delenv("ESAP_UWS_GROUP", raising=False)
    directory = job_directory("7-r1")
    for path in (tmp_path / "jobs", directory.root, directory.inputs, directory.outputs, directory.work):
        assert _mode(path) == 0o700, path
    assert job_directory("7-r1") == directory  # a second delivery finds its own directory


@needs_root
def test_with_a_group_its_members_enter_and_write_outputs_only(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    group = grp.getgrgid(pwd.getpwnam("esapuser").pw_gid)
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("ESAP_UWS_GROUP", group.gr_name)
    directory = job_directory("7-r1")
    assert {path.name: _mode(path) for path in (tmp_path / "jobs", directory.root, directory.inputs,
                                                directory.outputs, directory.work)} == \
        {"jobs": 0o750, "7-r1": 0o2750, "in": 0o2750, "out": 0o2770, "work": 0o2770}
    assert {path.stat().st_gid for path in (directory.root, directory.outputs)} == {group.gr_gid}


@needs_root
def test_a_job_directory_another_user_made_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = pwd.getpwnam("esapuser")
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(tmp_path / "jobs"))
    planted = tmp_path / "jobs" / "7-r1"
    planted.mkdir(parents=True)
    os.chown(planted, other.pw_uid, other.pw_gid)
    with pytest.raises(UnsafeDirectory) as caught:
        job_directory("7-r1")
    assert str(caught.value) == f"job directory {planted} belongs to uid {other.pw_uid}, not to the worker " \
                                f"(uid {os.geteuid()}): nothing was run"
    assert list(planted.iterdir()) == []


def test_a_link_in_place_of_a_job_directory_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(tmp_path / "jobs"))
    (tmp_path / "jobs").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "jobs" / "7-r1").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeDirectory, match="is a symbolic link: nothing was run"):
        job_directory("7-r1")
    assert list((tmp_path / "elsewhere").iterdir()) == []


@needs_root
def test_a_base_directory_another_user_made_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    other = pwd.getpwnam("esapuser")
    base = tmp_path / "jobs"
    base.mkdir()
    os.chown(base, other.pw_uid, other.pw_gid)
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(base))
    with pytest.raises(UnsafeDirectory, match=f"ESAP_UWS_WORKDIR {base} belongs to uid {other.pw_uid}"):
        job_directory("7-r1")
    assert list(base.iterdir()) == []


@needs_root
def test_a_link_another_user_made_in_place_of_the_base_is_refused(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """/tmp/esap-uws made by another user as a link to a directory of the worker's (its home)."""
    other = pwd.getpwnam("esapuser")
    (tmp_path / "home").mkdir(mode=0o755)
    base = tmp_path / "jobs"
    base.symlink_to(tmp_path / "home")
    os.lchown(base, other.pw_uid, other.pw_gid)
    monkeypatch.setenv("ESAP_UWS_WORKDIR", str(base))
    with pytest.raises(UnsafeDirectory, match=f"ESAP_UWS_WORKDIR {base} is a symbolic link"):
        job_directory("7-r1")
    assert _mode(tmp_path / "home") == 0o755 and list((tmp_path / "home").iterdir()) == []
