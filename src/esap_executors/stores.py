"""Which state store a process opens: ESAP_STATE_URL names a server's, else the user's SQLite file.

`open_store()` is the only constructor the entry points use (the esap commands, esap-cwltool,
the Snakemake plugin, the JDL front, the UWS worker):

- ESAP_STATE_URL=postgresql://USER@HOST:PORT/DB?passfile=FILE (or postgres://): the PostgreSQL
  store that several workers on several hosts share; the password belongs in a passfile (libpq's
  .pgpass format, mode 0600) or PGPASSFILE, not in the URL;
- ESAP_STATE_URL=sqlite:///PATH: that SQLite file;
- otherwise state.db in the state directory ($ESAP_STATE_DIR).

A URL that cannot be used (another scheme, a server that cannot be reached, credentials it
refuses) is bad input: one line naming ESAP_STATE_URL, never the password, exit code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .errors import BadInput
from .paths import state_dir
from .store import Store

STATE_URL = "ESAP_STATE_URL"


def open_store(location: str | Path | None = None) -> Store:
    """The store of this process: `location` (a file or a URL), else $ESAP_STATE_URL, else the
    state directory's state.db."""
    from .sqlite_store import SQLiteStore

    if isinstance(location, Path):
        return SQLiteStore(location)
    url = location or os.environ.get(STATE_URL, "").strip()
    if not url:
        return SQLiteStore(state_dir() / "state.db")
    if location is not None and "://" not in url:
        return SQLiteStore(Path(url))
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("postgresql", "postgres"):
        from .postgres_store import PostgresStore

        return PostgresStore(url)
    if scheme == "sqlite":
        path = unquote(urlsplit(url).path)
        if not path or path.endswith("/") or Path(path).is_dir():
            raise BadInput(f"{url}: names no file (sqlite:///PATH)", field=STATE_URL)
        if not Path(path).parent.is_dir():
            raise BadInput(f"{url}: no directory {Path(path).parent}", field=STATE_URL)
        return SQLiteStore(Path(path))
    from .postgres_store import redacted_url

    raise BadInput(
        f"{redacted_url(url)}: not a state store URL (postgresql://USER@HOST[:PORT]/DB or sqlite:///PATH)",
        field=STATE_URL,
    )
