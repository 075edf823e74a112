"""Settings of the ESAP API gateway as esap.sh runs it: the upstream asynchronous settings
(esap/settings/async.py: the development settings plus the django-uws app at esap-api/uws/ and
Celery), with every file ESAP writes (sqlite databases, the UWS jobs' one included) under
ESAP_CI_STATE, outside the read-only source, the broker of esap.sh (Redis) and the OIDC endpoints
of the project's test provider (scripts/services/oidc.sh)."""

import importlib
import os

# upstream's module is named `async`, a Python keyword: it cannot be star-imported by name
_upstream = importlib.import_module("esap.settings.async")
globals().update({name: value for name, value in vars(_upstream).items() if name.isupper()})

STATE_DIR = os.environ["ESAP_CI_STATE"]
DATABASES = {
    alias: {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(STATE_DIR, "db", f"{alias}.sqlite3")}
    for alias in ("default", "accounts", "ida", "batch", "rucio", "uws")
}
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
# async.py sets DEBUG from bool(os.getenv("DEBUG", "False")), which is always true
DEBUG = os.environ.get("ESAP_CI_DEBUG", "") == "1"
# knox, the first of ESAP's authentication classes, claims every "Authorization: Token ..." header
# and answers 401 to django-uws's one-time job tokens, so no worker could report back. ESAP routes no
# knox login (no knox tokens exist): its header prefix moves aside.
REST_KNOX = {"AUTH_HEADER_PREFIX": "Knox"}
