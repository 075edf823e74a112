"""Outputs are copied out of a job's directory only from inside it: links out of it, FIFOs and
(esap as root) files the job's owner could not read are refused by name, nothing copied."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from esap_executors.confined import OutsideJobDirectory, copy_out, links_leaving

SECRET = "not for the job's eyes\n"


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(SECRET)
    folder = tmp_path / "job"
    folder.mkdir()
    return folder


def test_a_link_out_of_the_job_directory_is_refused_and_nothing_copied(job: Path, tmp_path: Path) -> None:
    (job / "out.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(OutsideJobDirectory, match="points outside the job's directory"):
        copy_out(job, "out.txt", tmp_path / "copy.txt")
    assert not (tmp_path / "copy.txt").exists()


def test_a_link_through_a_linked_directory_is_refused(job: Path, tmp_path: Path) -> None:
    (job / "d").symlink_to(tmp_path / "outside")
    with pytest.raises(OutsideJobDirectory):
        copy_out(job, "d/secret.txt", tmp_path / "copy.txt")
    with pytest.raises(OutsideJobDirectory):
        copy_out(job, "d", tmp_path / "copied")
    assert not (tmp_path / "copy.txt").exists() and not (tmp_path / "copied").exists()


def test_a_directory_holding_a_link_out_is_not_copied_at_all(job: Path, tmp_path: Path) -> None:
    (job / "d").mkdir()
    (job / "d" / "fine.txt").write_text("fine\n")
    (job / "d" / "x").symlink_to(tmp_path / "outside" / "secret.txt")
    with pytest.raises(OutsideJobDirectory) as refused:
        copy_out(job, "d", tmp_path / "copied")
    assert refused.value.name == "d/x"
    assert not (tmp_path / "copied").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copied")]


def test_links_inside_the_job_directory_are_followed(job: Path, tmp_path: Path) -> None:
    (job / "real.txt").write_text("inside\n")
    (job / "out.txt").symlink_to("real.txt")
    (job / "d").mkdir()
    (job / "d" / "again").symlink_to(job / "d")  # a loop is copied once
    (job / "d" / "r").symlink_to("../real.txt")
    copy_out(job, "out.txt", tmp_path / "copy.txt")
    copy_out(job, "d", tmp_path / "copied")
    assert (tmp_path / "copy.txt").read_text() == "inside\n"
    assert (tmp_path / "copied" / "r").read_text() == "inside\n"


def test_the_job_directory_itself_and_names_leaving_it_are_refused(job: Path, tmp_path: Path) -> None:
    for name in (".", "", "./", "a/..", "../outside/secret.txt", "/etc/passwd"):
        with pytest.raises(OutsideJobDirectory):
            copy_out(job, name, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()


def test_a_fifo_is_refused_without_waiting_for_a_writer(job: Path, tmp_path: Path) -> None:
    os.mkfifo(job / "pipe")
    with pytest.raises(OutsideJobDirectory, match="not a regular file"):
        copy_out(job, "pipe", tmp_path / "copy")


def test_links_leaving_a_cwl_output_directory_except_to_its_inputs(job: Path, tmp_path: Path) -> None:
    (job / "input.txt").symlink_to(tmp_path / "outside" / "secret.txt")
    (job / "escape").symlink_to("/etc/passwd")
    assert links_leaving(job, [str(tmp_path / "outside" / "secret.txt")]) == ["escape"]
    assert links_leaving(job) == ["escape", "input.txt"]


def _user(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


OWNER = _user("esapuser")  # the HTCondor job owner of scripts/services/htcondor.sh


@pytest.mark.skipif(os.geteuid() != 0 or OWNER is None,
                    reason="needs esap running as root and the job owner esapuser (scripts/services/htcondor.sh)")
def test_as_root_outputs_are_copied_with_the_job_owner_rights(job: Path, tmp_path: Path) -> None:
    assert OWNER is not None
    os.chown(job, OWNER.pw_uid, OWNER.pw_gid)  # a job directory of a site whose jobs run as esapuser
    (job / "theirs.txt").write_text("the job's own\n")
    os.chown(job / "theirs.txt", OWNER.pw_uid, OWNER.pw_gid)
    (job / "private.txt").write_text(SECRET)  # root's file, mode 0600: the owner cannot read it
    os.chmod(job / "private.txt", 0o600)
    copy_out(job, "theirs.txt", tmp_path / "theirs.txt")
    assert (tmp_path / "theirs.txt").read_text() == "the job's own\n"
    with pytest.raises(OutsideJobDirectory, match="not readable by the job's owner"):
        copy_out(job, "private.txt", tmp_path / "private.txt")
    assert not (tmp_path / "private.txt").exists()


def test_a_site_without_a_shared_filesystem_never_collects_a_link_out(job: Path, tmp_path: Path) -> None:
    """The collecting script runs on the worker (here: sh in the job's directory, as HTCondor
    starts it): a link out is left behind and reported, not turned into a copy of its target."""
    import subprocess

    from esap_executors.jdl.sandbox import COLLECT_DIR, OutputFile, collecting_script, retrieve
    from esap_executors.job import JobSpec

    secret = tmp_path / "outside" / "secret.txt"
    work = (f"ln -s {secret} out.txt; mkdir d e; echo fine > d/ok.txt; ln -s {secret} d/x; "
            "echo mine > e/real.txt; ln -s real.txt e/inside; echo plain > 'a b.txt'")
    names = ["out.txt", "d", "e", "a b.txt"]
    script = collecting_script(JobSpec(argv=("/bin/sh", "-c", work)), names)
    assert subprocess.run(["/bin/sh", "-c", script], cwd=job, check=False).returncode == 0
    for name in ("out.txt", "d"):
        assert not os.path.lexists(job / COLLECT_DIR / name)
    outcome = retrieve(job, [OutputFile(n) for n in names], tmp_path / "back")
    assert sorted(f.split(" (")[0] for f in outcome.failed) == ["d", "out.txt"]
    assert all("points outside the job's directory" in f for f in outcome.failed)
    assert (tmp_path / "back" / "e" / "inside").read_text() == "mine\n"
    assert (tmp_path / "back" / "a b.txt").read_text() == "plain\n"
    assert not (tmp_path / "back" / "out.txt").exists() and not (tmp_path / "back" / "d").exists()
