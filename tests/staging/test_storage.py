"""The staging layer and `esap stage` against the real WebDAV server: tokens narrowed per URL prefix,
checksums, retries, atomic writes and the faults a data-lake endpoint shows (503s, dropped
connections, corrupted bytes, a token without the write scope)."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import zlib
from pathlib import Path

import pytest

from esap_executors.errors import AuthError, BadInput, Unreachable
from esap_executors.staging.cache import SiteCache
from esap_executors.staging.remote import ChecksumMismatch, fetch, listdir, stat, upload
from tests.support import esap

from .conftest import Storage, login, visible_files, write_auth

MiB = 1 << 20


def test_put_ls_stat_get_by_hand_with_the_login_narrowed_to_the_storage(logged_in: Storage, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 17)
    (tmp_path / "spectrum.fits").write_bytes(data)
    adler = f"{zlib.adler32(data):08x}"
    put = esap("stage", "put", str(tmp_path / "spectrum.fits"), logged_in.davs("obs/"), sites=None)
    assert put.returncode == 0, put.stderr
    assert f"adler32:{adler}" in put.stdout
    assert logged_in.local("obs/spectrum.fits").read_bytes() == data
    assert visible_files(logged_in.local()) == ["obs/spectrum.fits"]  # no temporary name left

    listing = esap("stage", "ls", logged_in.davs("obs/"), "--json", sites=None)
    assert listing.returncode == 0, listing.stderr
    [entry] = json.loads(listing.stdout)
    assert entry["name"] == "spectrum.fits" and entry["size"] == len(data)

    info = esap("stage", "stat", logged_in.davs("obs/spectrum.fits"), "--json", sites=None)
    assert json.loads(info.stdout)["checksums"] == [f"adler32:{adler}"]

    got = esap("stage", "get", logged_in.davs("obs/spectrum.fits"), str(tmp_path / "back") + "/",
               "--checksum", f"adler32:{adler}", sites=None)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "back" / "spectrum.fits").read_bytes() == data
    # the token was narrowed to the rule's audience: the server accepts nothing else
    assert logged_in.counts("obs/spectrum.fits").get("GET") == 1


def test_503_twice_then_200_is_retried_and_leaves_one_copy(logged_in: Storage, tmp_path: Path) -> None:
    logged_in.put_file("in.dat", b"payload\n" * 1000)
    logged_in.fault("in.dat", status=503, times=2)
    done = fetch(logged_in.davs("in.dat"), tmp_path / "out" / "in.dat")
    assert done.attempts == 3
    assert (tmp_path / "out" / "in.dat").read_bytes() == b"payload\n" * 1000
    assert visible_files(tmp_path / "out") == ["in.dat"]
    assert logged_in.counts("in.dat")["GET"] == 3


def test_upload_retried_after_503_leaves_one_copy(logged_in: Storage, tmp_path: Path) -> None:
    (tmp_path / "result.txt").write_text("42\n")
    logged_in.put_file("out/.keep", b"")
    logged_in.fault("out/", prefix=True, status=503, times=2, methods=["PUT"])
    done = upload(tmp_path / "result.txt", logged_in.davs("out/result.txt"))
    assert done.attempts == 3
    assert visible_files(logged_in.local()) == ["out/.keep", "out/result.txt"]
    assert logged_in.local("out/result.txt").read_text() == "42\n"


def test_a_dropped_connection_is_retried_and_no_partial_file_is_left(logged_in: Storage, tmp_path: Path) -> None:
    data = os.urandom(6 * MiB)
    logged_in.put_file("big.bin", data)
    logged_in.fault("big.bin", drop_after=2 * MiB, times=1)
    done = fetch(logged_in.davs("big.bin"), tmp_path / "big.bin")
    assert done.attempts == 2 and (tmp_path / "big.bin").read_bytes() == data

    logged_in.fault("big.bin", drop_after=MiB, times=10)  # more drops than retries
    with pytest.raises(Unreachable, match="big.bin.*gave up after 5 attempts"):
        fetch(logged_in.davs("big.bin"), tmp_path / "again" / "big.bin")
    assert visible_files(tmp_path / "again") == []


def test_a_corrupted_download_fails_naming_the_file_and_keeps_nothing(logged_in: Storage, tmp_path: Path) -> None:
    logged_in.put_file("cat.csv", b"ra,dec\n1,2\n" * 500)
    logged_in.fault("cat.csv", corrupt=True, times=1)
    with pytest.raises(ChecksumMismatch) as failure:
        fetch(logged_in.davs("cat.csv"), tmp_path / "in" / "cat.csv")
    assert "cat.csv" in str(failure.value) and "adler32" in str(failure.value)
    assert visible_files(tmp_path / "in") == []

    result = esap("stage", "get", logged_in.davs("cat.csv"), str(tmp_path / "cli.csv"), "--checksum",
                  "adler32:00000001", sites=None)
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert str(tmp_path / "cli.csv") in line and "expected adler32:00000001" in line
    assert not (tmp_path / "cli.csv").exists()


def test_a_token_without_the_write_scope_uploads_nothing(server: Storage, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/"])))
    login(server)
    (tmp_path / "result.txt").write_text("42\n")
    result = esap("stage", "put", str(tmp_path / "result.txt"), server.davs("out/result.txt"), sites=None)
    assert result.returncode == 3
    [line] = result.stderr.strip().splitlines()
    assert f"lacks storage.modify:{server.path('out/result.txt')}" in line and "auth.yaml" in line
    assert server.counts("out/result.txt") == {} and not server.local().exists()


def test_the_storage_refuses_a_token_without_storage_scopes(server: Storage, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A token whose scopes the client cannot judge: the server's 403 is one clear line, nothing stays."""
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["openid"])))
    login(server, scope="openid offline_access")
    (tmp_path / "result.txt").write_text("42\n")
    with pytest.raises(AuthError, match=r"refused access \(HTTP 403: the token lacks storage.create"):
        upload(tmp_path / "result.txt", server.davs("out/result.txt"))
    assert visible_files(server.local()) == []


def test_a_missing_url_is_named(logged_in: Storage, tmp_path: Path) -> None:
    with pytest.raises(BadInput, match=r"t-\w+/nothing.fits: not found \(HTTP 404\)"):
        stat(logged_in.davs("nothing.fits"))
    result = esap("stage", "get", logged_in.davs("nothing.fits"), str(tmp_path / "x"), sites=None)
    assert result.returncode == 2 and "not found (HTTP 404)" in result.stderr
    assert not (tmp_path / "x").exists()


def test_ls_of_a_collection(logged_in: Storage) -> None:
    logged_in.put_file("a/one.txt", b"1")
    logged_in.put_file("a/sub/two.txt", b"22")
    names = [(e.name, e.is_dir, e.size) for e in listdir(logged_in.davs("a/"))]
    assert names == [("one.txt", False, 1), ("sub", True, None)]


def _fetch_through_cache(args: tuple[str, str, str]) -> bool:
    url, cache, dest = args
    return SiteCache(cache).fetch(url, Path(dest)).from_cache


def test_many_readers_of_one_input_fetch_it_once_per_cache(logged_in: Storage, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB)
    logged_in.put_file("shared.h5", data)
    url = logged_in.davs("shared.h5")
    jobs = [(url, str(tmp_path / "site-cache"), str(tmp_path / f"job{i}" / "shared.h5")) for i in range(24)]
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        from_cache = pool.map(_fetch_through_cache, jobs)
    assert sum(1 for hit in from_cache if not hit) == 1
    assert all((tmp_path / f"job{i}" / "shared.h5").read_bytes() == data for i in range(24))
    assert logged_in.counts("shared.h5")["GET"] == 1

    logged_in.put_file("shared.h5", data + b"v2")  # a new version: a new ETag, fetched again
    assert SiteCache(tmp_path / "site-cache").fetch(url, tmp_path / "new.h5").from_cache is False
    assert (tmp_path / "new.h5").read_bytes() == data + b"v2"
    assert logged_in.counts("shared.h5")["GET"] == 2


def test_a_bounded_cache_drops_the_least_recently_used_input(logged_in: Storage, tmp_path: Path) -> None:
    for name in ("a.dat", "b.dat", "c.dat"):
        logged_in.put_file(name, name.encode() * MiB)  # 5 MiB each
    cache = SiteCache(tmp_path / "site-cache", max_bytes=12 * MiB)  # room for two
    for name in ("a.dat", "b.dat"):
        cache.fetch(logged_in.davs(name), tmp_path / name)
    time.sleep(0.05)  # (mtime order; nothing is timed)
    assert cache.fetch(logged_in.davs("a.dat"), tmp_path / "again.dat").from_cache  # a is used again
    time.sleep(0.05)
    cache.fetch(logged_in.davs("c.dat"), tmp_path / "c.dat")  # over the bound: b, least recently used, goes

    assert cache.fetch(logged_in.davs("a.dat"), tmp_path / "a2.dat").from_cache
    assert cache.fetch(logged_in.davs("c.dat"), tmp_path / "c2.dat").from_cache
    assert logged_in.counts("b.dat")["GET"] == 1
    assert not cache.fetch(logged_in.davs("b.dat"), tmp_path / "b2.dat").from_cache
    assert (tmp_path / "b2.dat").read_bytes() == b"b.dat" * MiB
    assert logged_in.counts("b.dat")["GET"] == 2
    cached = [p for p in (tmp_path / "site-cache").glob("*/*") if not p.name.endswith(".lock")]
    assert sum(p.stat().st_size for p in cached) <= 12 * MiB


def test_a_bad_storage_rule_is_one_line_naming_file_line_and_field(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    auth = tmp_path / "auth.yaml"
    auth.write_text("issuer: http://127.0.0.1:9400/\nstorage:\n  davs://dav.example.org/escape/:\n"
                    "    audience: https://dav.example.org\n    scope: [storage.read:/escape]\n")
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(auth))
    result = esap("stage", "get", "davs://dav.example.org/escape/a.fits", str(tmp_path / "a.fits"), sites=None)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"esap: error: {auth}:5: storage.davs://dav.example.org/escape/.scope: "
                                     "unknown key (known: audience, ca_bundle, scopes)")
    auth.write_text("storage:\n  gsiftp://old.example.org/:\n    scopes: []\n")
    result = esap("stage", "ls", "davs://dav.example.org/", sites=None)
    assert result.returncode == 2 and f"{auth}:2: storage.gsiftp://old.example.org/" in result.stderr
    assert not (tmp_path / "a.fits").exists()


def test_an_unsupported_url_is_refused(tmp_path: Path) -> None:
    result = esap("stage", "get", "gsiftp://old.example.org/a.fits", str(tmp_path), sites=None)
    assert result.returncode == 2
    assert "gsiftp://old.example.org/a.fits" in result.stderr and "davs://" in result.stderr


def test_the_token_never_appears_in_what_esap_stage_prints(server: Storage, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESAP_AUTH_CONFIG", str(write_auth(tmp_path, server, ["storage.read:/"])))
    login(server)
    from esap_executors.auth.storage import access_for

    token = access_for(server.davs("x")).token
    assert token
    server.put_file("x.txt", b"x")
    (tmp_path / "y.txt").write_text("y")
    outputs = [esap("--debug", "stage", *args, sites=None) for args in (
        ("get", server.davs("x.txt"), str(tmp_path / "x.txt")), ("ls", server.davs("")),
        ("get", server.davs("absent"), str(tmp_path / "z")), ("put", str(tmp_path / "y.txt"), server.davs("y.txt")))]
    assert outputs[0].returncode == 0 and outputs[1].returncode == 0
    assert "not found (HTTP 404)" in outputs[2].stderr and "lacks storage.modify" in outputs[3].stderr
    for output in outputs:
        assert token not in output.stdout + output.stderr
        assert token.split(".")[2] not in output.stdout + output.stderr
