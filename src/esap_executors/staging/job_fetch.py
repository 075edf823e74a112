"""The execute side's fetch: a job on a `staging: {fetch: execute}` site fetches its inputs by
storage URL itself, before its command, through the staging layer and the site's cache.

    python esap-fetch.py MANIFEST.json        (this file, sent with the job; or -m esap_executors.staging.job_fetch)

The manifest (written by `staging.execute_side`) names, per token, the URL prefix, the token's
file and CA bundle (next to the manifest, private to the job's owner) and the items: URL,
the path where the job expects it, File or Directory. Each item replaces what is at its path (a
placeholder, or a link to one) atomically. The token files are removed when the fetch ends,
whatever happens. Only absolute imports: the file runs as a script with the site's installed
esap-executors (the API it uses: SiteCache.fetch, remote.listdir, auth.yaml's storage rules).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

FAILED_EXIT = 95  # the job script's exit code when its inputs could not be fetched


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: esap-fetch MANIFEST.json", file=sys.stderr)
        return 2
    manifest_path = Path(args[0]).resolve()
    manifest: dict[str, Any] = json.loads(manifest_path.read_text())
    here = manifest_path.parent
    try:
        shared = Path(manifest["cache"])
        if not shared.is_dir():  # the site's cache: like /tmp, each user's folder in it is private
            shared.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(PermissionError):
                shared.chmod(0o1777)
        for group in manifest["groups"]:
            _fetch_group(group, here, shared / str(os.getuid()), manifest.get("cache_bytes"))
    except Exception as exc:  # noqa: BLE001 (one line for the job's error file, whatever failed)
        print(f"esap-fetch: {type(exc).__name__}: {exc}", file=sys.stderr)
        return FAILED_EXIT
    finally:
        for group in manifest["groups"]:
            if group.get("token"):
                with contextlib.suppress(FileNotFoundError):
                    (here / group["token"]).unlink()
    return 0


def _fetch_group(group: dict[str, Any], here: Path, cache_dir: Path, cache_bytes: int | None) -> None:
    from esap_executors.staging.cache import SiteCache

    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="esap-fetch-") as private:
        # the staging layer's usual sources: a storage rule for the prefix, the token in a file
        auth = Path(private) / "auth.yaml"
        rule: dict[str, Any] = {}
        if group.get("ca"):
            rule["ca_bundle"] = str(here / group["ca"])
        auth.write_text(json.dumps({"storage": {group["prefix"]: rule}}) if group.get("prefix") else "{}\n")
        os.environ["ESAP_AUTH_CONFIG"] = str(auth)
        os.environ.pop("BEARER_TOKEN", None)
        if group.get("token"):
            os.environ["BEARER_TOKEN_FILE"] = str(here / group["token"])
        else:
            os.environ.pop("BEARER_TOKEN_FILE", None)
        try:
            cache = SiteCache(cache_dir, max_bytes=cache_bytes) if cache_bytes else SiteCache(cache_dir)
        except TypeError:  # a site's esap-executors from before bounded caches
            cache = SiteCache(cache_dir)
        for item in group["items"]:
            target = Path(item["target"])
            if item["class"] == "Directory":
                _replace_tree(item["url"], target, cache)
            else:
                _remove_link_or_tree(target, keep_files=True)
                cache.fetch(item["url"], target)


def _replace_tree(url: str, target: Path, cache: Any) -> None:
    """The collection at `url` fetched beside `target`, then put in its place."""
    fresh = target.with_name(f".{target.name}.esap-fetch-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    try:
        _fetch_tree(url, fresh, cache)
        _remove_link_or_tree(target)
        os.replace(fresh, target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)


def _fetch_tree(url: str, target: Path, cache: Any) -> None:
    from esap_executors.staging.remote import listdir

    target.mkdir(parents=True, exist_ok=True)
    for entry in listdir(url.rstrip("/") + "/"):
        name = urllib.parse.unquote(entry.url.rstrip("/").rsplit("/", 1)[-1])
        if entry.is_dir:
            _fetch_tree(entry.url, target / name, cache)
        else:
            cache.fetch(entry.url, target / name)


def _remove_link_or_tree(path: Path, *, keep_files: bool = False) -> None:
    if path.is_symlink():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    elif path.exists() and not keep_files:
        path.unlink()


if __name__ == "__main__":
    sys.exit(main())
