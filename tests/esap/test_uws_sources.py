"""Where the UWS worker reads a job's files from, as its deployment sets it: the refusals a user
sees in the job's errorSummary (tests/uws runs them through the real gateway and worker)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esap_executors.errors import BadInput
from esap_executors.esap.uws_sources import SourcePolicy

DEFAULT = SourcePolicy(file_roots=(), url_prefixes=())


@pytest.mark.parametrize(("url", "reason"), [
    ("http://example.org/w.cwl", "this worker fetches https URLs only"),
    ("https://127.0.0.1/w.cwl", "its host is not a public address"),
    ("https://localhost:8443/w.cwl", "its host is not a public address"),
    ("https://[::1]/w.cwl", "its host is not a public address"),
    ("https://169.254.169.254/latest/meta-data/", "its host is not a public address"),
    ("https://10.1.2.3/w.cwl", "its host is not a public address"),
    ("https://[::ffff:127.0.0.1]/w.cwl", "its host is not a public address"),
    ("https://user:secret@example.org/w.cwl", "a URL with credentials"),
])
def test_by_default_only_https_urls_of_public_hosts_are_fetched(url: str, reason: str) -> None:
    with pytest.raises(BadInput) as caught:
        DEFAULT.check_url(url, "workflow")
    assert str(caught.value) == f"workflow: {url}: {reason}" + (
        " (the deployment may allow it in ESAP_UWS_URL_PREFIXES)" if "public" in reason else "")


def test_a_public_https_url_is_allowed_by_default() -> None:
    DEFAULT.check_url("https://93.184.215.14/w.cwl", "workflow")  # no exception: the worker fetches it


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://data.example.org/esap/w.cwl", True),
    ("https://data.example.org:443/esap/sub/w.cwl", True),
    ("https://data.example.org/esapx/w.cwl", False),
    ("https://data.example.org/esap/../etc/w.cwl", False),
    ("https://data.example.org.evil.net/esap/w.cwl", False),
    ("http://data.example.org/esap/w.cwl", False),
    ("https://data.example.org:8443/esap/w.cwl", False),
    ("http://127.0.0.1:9484/public/w.cwl", True),
    ("http://127.0.0.1:9484/private/w.cwl", False),
])
def test_configured_url_prefixes_admit_their_urls_only(url: str, allowed: bool) -> None:
    policy = SourcePolicy(file_roots=(), url_prefixes=("https://data.example.org/esap", "http://127.0.0.1:9484/public/"))
    if allowed:
        policy.check_url(url, "inputs")
        return
    with pytest.raises(BadInput) as caught:
        policy.check_url(url, "inputs")
    assert str(caught.value) == f"inputs: {url}: not under the URLs this worker fetches (ESAP_UWS_URL_PREFIXES)"


def test_without_file_roots_no_local_file_is_read(tmp_path: Path) -> None:
    file = tmp_path / "w.cwl"
    file.write_text("cwlVersion: v1.2\n")
    with pytest.raises(BadInput) as caught:
        DEFAULT.read_file(file.as_uri(), "workflow")
    assert str(caught.value) == (f"workflow: {file.as_uri()}: this worker reads no local files "
                                 "(the deployment sets ESAP_UWS_FILE_ROOTS)")


def test_file_roots_admit_their_files_and_no_link_leaving_them(tmp_path: Path) -> None:
    root, secret = tmp_path / "shared", tmp_path / "secret.pem"
    root.mkdir()
    (root / "w.cwl").write_text("cwlVersion: v1.2\n")
    secret.write_text("-----BEGIN PRIVATE KEY-----\n")
    (root / "link.cwl").symlink_to(secret)
    (root / "sub").symlink_to(tmp_path)
    policy = SourcePolicy(file_roots=(root.resolve(),), url_prefixes=())
    assert policy.read_file((root / "w.cwl").as_uri(), "workflow") == b"cwlVersion: v1.2\n"
    for url in (secret.as_uri(), (root / "link.cwl").as_uri(), f"{(root / 'sub').as_uri()}/secret.pem",
                f"{root.as_uri()}/../secret.pem", f"file://localhost{secret}"):
        with pytest.raises(BadInput) as caught:
            policy.read_file(url, "workflow")
        assert str(caught.value) == f"workflow: {url}: outside the directories this worker reads files from " \
                                    "(ESAP_UWS_FILE_ROOTS)"
    with pytest.raises(BadInput, match="a file URL of another host"):
        policy.read_file(f"file://elsewhere{root}/w.cwl", "workflow")
    with pytest.raises(BadInput, match="no such file"):
        policy.read_file((root / "none.cwl").as_uri(), "workflow")


def test_the_file_roots_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ESAP_UWS_FILE_ROOTS", f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}")
    monkeypatch.setenv("ESAP_UWS_URL_PREFIXES", "https://x.example.org/a/ https://y.example.org/")
    policy = SourcePolicy.from_environment()
    assert policy.file_roots == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    assert policy.url_prefixes == ("https://x.example.org/a/", "https://y.example.org/")
