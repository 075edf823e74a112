"""The CWL schemas cwltool loads at every start, kept across processes.

cwltool parses the CWL metaschema (a few hundred kB of YAML) with a pure-Python YAML parser for
the document's version and again for v1.0 (every Process needs v1.0's File and Directory), which
is most of a start. The loaded schema is the same for the same schema texts and library versions,
so it is pickled once into the user's cache directory and read back by later starts.

Safe by construction: the key covers the schema texts cwltool passes (so custom or extension
schemas get their own entry) and the versions of every library whose objects are pickled; the
directory is the user's own (0700), files are written atomically (0600), and a file not owned by
the user, writable by others or unreadable is ignored and the schema is loaded as cwltool does.
"""

from __future__ import annotations

import copyreg
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_LIBRARIES = ("cwltool", "schema-salad", "rdflib", "ruamel.yaml", "mistune", "requests", "cachecontrol")
FORMAT = 1


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esap" / "cwl-schemas"


def _versions() -> str:
    found = []
    for name in _LIBRARIES:
        try:
            found.append(f"{name}={version(name)}")
        except PackageNotFoundError:
            found.append(f"{name}=-")
    return ";".join(found)


def cache_key(schema_ref: Any, texts: dict[str, Any] | None) -> str | None:
    """The entry's name, or None when the inputs are not plain texts (nothing is cached then)."""
    digest = hashlib.sha256(f"{FORMAT}|{sys.version}|{_versions()}|{schema_ref}".encode())
    for url, text in sorted((texts or {}).items()):
        if not isinstance(text, str):
            return None
        digest.update(b"\0" + url.encode() + b"\0" + text.encode())
    return digest.hexdigest()


def _reduce_normdict(value: Any) -> tuple[Any, ...]:
    # schema-salad's NormDict needs its normalize function before its items are set
    return (type(value), (value.normalize,), None, None, iter(dict(value).items()))


def _read(path: Path) -> Any | None:
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if info.st_uid != os.getuid() or info.st_mode & 0o022:
                return None
            return pickle.load(handle)  # noqa: S301 - the user's own 0600 file, checked above
    except FileNotFoundError:
        return None
    except Exception as exc:  # a truncated or foreign entry: load the schema as cwltool does
        log.debug("CWL schema cache entry %s unusable: %s", path, exc)
        return None


def _write(path: Path, value: Any) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except Exception as exc:  # a read-only home or a full disk: the run goes on without the cache
        log.debug("CWL schema cache entry %s not written: %s", path, exc)


def cached(load_schema: Callable[..., Any]) -> Callable[..., Any]:
    """`load_schema` (schema-salad's) answered from the cache when it can be."""
    from schema_salad.ref_resolver import NormDict

    copyreg.pickle(NormDict, _reduce_normdict)

    def load(schema_ref: Any, cache: dict[str, Any] | None = None) -> Any:
        key = cache_key(schema_ref, cache)
        if key is None:
            return load_schema(schema_ref, cache=cache)
        path = cache_dir() / f"{key}.pickle"
        found = _read(path)
        if found is not None:
            return found
        loaded = load_schema(schema_ref, cache=cache)
        _write(path, loaded)
        return loaded

    return load


def install() -> None:
    """cwltool's schema loads go through the cache (for this process)."""
    import cwltool.process

    if not getattr(cwltool.process.load_schema, "esap_cached", False):
        load = cached(cwltool.process.load_schema)
        load.esap_cached = True  # type: ignore[attr-defined]
        cwltool.process.load_schema = load
