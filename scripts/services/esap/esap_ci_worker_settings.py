"""Settings of the Celery worker esap.sh runs beside the ESAP gateway: ESAP's own Celery app
(esap/celery.py) with django-uws's task and the esap-executors UWS worker, no database (the worker
speaks to the gateway's UWS API over HTTP with each job's one-time token)."""

import os

SECRET_KEY = "unused: the worker signs nothing and keeps no sessions"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "uws"]
DATABASES: dict = {}
USE_TZ = True

UWS_HOST = os.environ["UWS_HOST"]
UWS_WORKERS = ["esap_executors.esap.uws_worker.EsapExecutorsWorker"]

CELERY_BROKER_URL = os.environ["CELERY_BROKER_URL"]
# A worker that dies mid-job leaves its message unacknowledged: the broker hands it out again after
# the visibility timeout, and the esap-executors worker reattaches to the run (the UWS job's run key)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("ESAP_UWS_VISIBILITY_TIMEOUT", "3600"))}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
