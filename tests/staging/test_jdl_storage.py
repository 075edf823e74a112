"""JDL jobs whose sandboxes are on the WebDAV storage (davs:// with the login's narrowed token)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.jdl.helpers import nothing_submitted, one_line_error, run, write_jdl
from tests.support import require_service

from .conftest import Storage, login, visible_files, write_auth


def test_davs_input_and_output_sandboxes(logged_in: Storage, tmp_path: Path) -> None:
    logged_in.put_file("in/stars.csv", b"id,mag\n1,12.5\n2,14.1\n3,9.8\n")
    path = write_jdl(tmp_path, f"""[
  Executable = "/bin/sh";
  Arguments = "-c 'sort -t, -k2 -n stars.csv > sorted.csv; wc -l < stars.csv > count.txt'";
  InputSandbox = {{"{logged_in.davs('in/stars.csv')}"}};
  OutputSandbox = {{"sorted.csv", "count.txt"}};
  OutputSandboxDestURI = {{"{logged_in.davs('out/run1/sorted.csv')}", "{logged_in.davs('out/run1/count.txt')}"}};
]""")
    result = run("run", str(path), "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert job["state"] == "completed" and job["failed"] == []
    assert logged_in.local("out/run1/sorted.csv").read_text() == "id,mag\n3,9.8\n1,12.5\n2,14.1\n"
    assert logged_in.local("out/run1/count.txt").read_text().strip() == "4"
    assert visible_files(logged_in.local("out")) == ["run1/count.txt", "run1/sorted.csv"]


def test_a_missing_input_url_is_named_before_anything_is_submitted(logged_in: Storage, tmp_path: Path) -> None:
    path = write_jdl(tmp_path, f'Executable = "/bin/cat"; Arguments = "gone.fits";\n'
                               f'InputSandbox = {{"{logged_in.davs("gone.fits")}"}};')
    result = run("run", str(path), cwd=tmp_path)
    assert result.returncode == 2
    line = one_line_error(result)
    assert str(path) in line and "InputSandbox" in line and logged_in.davs("gone.fits") in line
    assert "not found (HTTP 404)" in line
    assert nothing_submitted(tmp_path)


def test_an_output_destination_without_write_scope_stops_the_submission(server: Storage, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/"])))
    login(server)
    path = write_jdl(tmp_path, f'Executable = "/bin/date"; StdOutput = "d.txt"; OutputSandbox = {{"d.txt"}};\n'
                               f'OutputSandboxDestURI = {{"{server.davs("out/d.txt")}"}};')
    result = run("run", str(path), cwd=tmp_path)
    assert result.returncode == 3
    line = one_line_error(result)
    assert "OutputSandboxDestURI" in line and "lacks storage.modify" in line
    assert nothing_submitted(tmp_path)
    assert not server.local().exists()


def test_a_hundred_jobs_reading_one_input_fetch_it_once_per_site(logged_in: Storage, tmp_path: Path) -> None:
    logged_in.put_file("calib/flat.dat", b"flat field 1.0\n")
    text = f"""[
  JobType = "Parametric"; Parameters = 100; ParameterStart = 0; ParameterStep = 1;
  Executable = "/bin/sh";
  Arguments = "-c 'echo _PARAM_ $(cat flat.dat)'";
  InputSandbox = {{"{logged_in.davs('calib/flat.dat')}"}};
  StdOutput = "out__PARAM_.txt"; OutputSandbox = {{"out__PARAM_.txt"}};
]"""
    path = write_jdl(tmp_path, text)
    first = run("run", str(path), "--json", "--output-dir", str(tmp_path / "r1"), cwd=tmp_path, timeout=600)
    assert first.returncode == 0, first.stderr
    jobs = json.loads(first.stdout)
    assert len(jobs) == 100 and all(j["state"] == "completed" for j in jobs)
    assert (Path(jobs[42]["output_dir"]) / "out_42.txt").read_text() == "42 flat field 1.0\n"
    assert logged_in.counts("calib/flat.dat")["GET"] == 1
    # another run on the same site, the file unchanged (same ETag): served by the site's cache
    second = write_jdl(tmp_path, text.replace("Parameters = 100", "Parameters = 3"), name="again.jdl")
    again = run("run", str(second), "--json", "--output-dir", str(tmp_path / "r2"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert logged_in.counts("calib/flat.dat")["GET"] == 1


def test_davs_sandboxes_on_a_site_without_a_shared_filesystem(logged_in: Storage, tmp_path: Path) -> None:
    require_service("htcondor")
    logged_in.put_file("in/psf.txt", b"psf 0.8 arcsec\n")
    path = write_jdl(tmp_path, f"""
Executable = "/bin/sh";
Arguments = "-c 'tr a-z A-Z < psf.txt > PSF.txt'";
InputSandbox = {{"{logged_in.davs('in/psf.txt')}"}};
OutputSandbox = {{"PSF.txt"}};
OutputSandboxBaseDestURI = "{logged_in.davs('out/condor')}";
""")
    result = run("run", str(path), "--site", "htcondor-transfer", "--json", cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert job["state"] == "completed" and job["retrieved"] == [logged_in.davs("out/condor/PSF.txt")]
    assert logged_in.local("out/condor/PSF.txt").read_text() == "PSF 0.8 ARCSEC\n"
