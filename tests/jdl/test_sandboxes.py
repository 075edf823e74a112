"""Input sandboxes from https (a test CA, verification on), http and file URLs; output sandboxes to
folders, file:// and https PUT/WebDAV; a missing output is reported while the others come back."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from .helpers import nothing_submitted, one_line_error, run, write_jdl
from .webserver import serve


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_root(tmp_path: Path, ca: trustme.CA) -> Iterator[tuple[str, Path, Path]]:
    """(base URL, served folder, CA bundle file)."""
    root = tmp_path / "https-root"
    root.mkdir()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    bundle = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with serve(root, context) as url:
        yield url, root, bundle


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "http-root"
    root.mkdir()
    with serve(root) as url:
        yield url, root


def test_https_input_needs_a_trusted_certificate(tmp_path: Path, state_dir: Path,
                                                 https_root: tuple[str, Path, Path]) -> None:
    url, root, _ = https_root
    (root / "data.txt").write_text("from https\n")
    path = write_jdl(tmp_path, f'Executable = "/bin/cat"; Arguments = "data.txt";\n'
                               f'InputSandbox = {{"{url}/data.txt"}};')
    result = run("run", str(path), cwd=tmp_path, env={"REQUESTS_CA_BUNDLE": "", "SSL_CERT_FILE": ""})
    assert result.returncode == 3
    assert "certificate verification failed" in one_line_error(result)
    assert nothing_submitted(tmp_path)


def test_sandboxes_over_https_http_and_file(tmp_path: Path, state_dir: Path, https_root: tuple[str, Path, Path],
                                            http_root: tuple[str, Path]) -> None:
    url, served, bundle = https_root
    plain_url, plain_root = http_root
    (served / "data.txt").write_text("from https\n")
    (served / "dav").mkdir()
    (plain_root / "plain.txt").write_text("from http\n")
    local = tmp_path / "local.txt"
    local.write_text("from file\n")
    dest = tmp_path / "dest"
    text = f"""[
  Executable = "/bin/sh";
  Arguments = "-c 'cat data.txt plain.txt local.txt > all.txt; echo done > note.txt'";
  InputSandbox = {{"{url}/data.txt", "{plain_url}/plain.txt", "file://{local}"}};
  OutputSandbox = {{"all.txt", "note.txt", "never.txt"}};
  OutputSandboxDestURI = {{"{url}/dav/all.txt", "file://{dest}/sub/note.txt", "file://{dest}/never.txt"}};
]"""
    path = write_jdl(tmp_path, text)
    result = run("run", str(path), "--json", cwd=tmp_path, env={"REQUESTS_CA_BUNDLE": str(bundle)})
    assert result.returncode == 0, result.stderr
    [job] = json.loads(result.stdout)
    assert (served / "dav" / "all.txt").read_text() == "from https\nfrom http\nfrom file\n"
    assert (dest / "sub" / "note.txt").read_text() == "done\n"
    assert job["missing"] == ["never.txt"] and job["failed"] == []


def test_base_dest_uri_creates_webdav_collections(tmp_path: Path, state_dir: Path,
                                                 https_root: tuple[str, Path, Path]) -> None:
    url, served, bundle = https_root
    path = write_jdl(tmp_path, f'Executable = "/bin/sh"; Arguments = "-c \'echo one > a.txt\'";\n'
                               f'OutputSandbox = {{"a.txt"}}; OutputSandboxBaseDestURI = "{url}/results/run1";')
    result = run("run", str(path), cwd=tmp_path, env={"REQUESTS_CA_BUNDLE": str(bundle)})
    assert result.returncode == 0, result.stderr
    assert (served / "results" / "run1" / "a.txt").read_text() == "one\n"
    assert f"{url}/results/run1/a.txt" in result.stdout


def test_output_dir_option_and_esap_output(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "in.txt").write_text("3\n1\n2\n")
    path = write_jdl(tmp_path, 'Executable = "/usr/bin/sort"; StdInput = "in.txt"; InputSandbox = {"in.txt"};\n'
                               'StdOutput = "sorted.txt"; StdError = "sorted.txt"; OutputSandbox = {"sorted.txt"};')
    result = run("run", str(path), "--output-dir", str(tmp_path / "chosen"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "chosen" / "sorted.txt").read_text() == "1\n2\n3\n"
    job_id = result.stdout.split()[0]
    again = run("output", job_id, "--dir", str(tmp_path / "again"), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "sorted.txt").read_text() == "1\n2\n3\n"
    plain = run("run", "--", "true", cwd=tmp_path)
    not_jdl = run("output", plain.stderr.split()[2], cwd=tmp_path)
    assert not_jdl.returncode == 2 and "is not a JDL job" in one_line_error(not_jdl)
