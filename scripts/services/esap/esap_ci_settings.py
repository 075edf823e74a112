"""Settings of the ESAP API gateway as esap.sh runs it: the upstream development settings, with
every file ESAP writes (sqlite databases) under ESAP_CI_STATE, outside the read-only source,
and the OIDC endpoints of the project's test provider (scripts/services/oidc.sh)."""

import os

from esap.settings.dev import *  # noqa: F401,F403  (upstream settings, unchanged)

STATE_DIR = os.environ["ESAP_CI_STATE"]
DATABASES = {
    alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(STATE_DIR, "db", f"{alias}.sqlite3")}
    for alias in ("default", "accounts", "ida", "batch", "rucio")
}
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
