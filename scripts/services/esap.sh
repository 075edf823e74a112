#!/usr/bin/env bash
# esap.sh - the REAL ESAP API gateway (../shared/esap-api-gateway, upstream d439e2e) on loopback,
# offline: Django 4.0.2 in its own virtual environment outside the repository, sqlite, migrated,
# the gateway's own catalogue fixtures (esap_ida_config.yaml, esap_batch_config.yaml) loaded,
# OIDC settings pointing at the project's test provider (oidc.sh, 127.0.0.1:9400), and ESAP's
# asynchronous jobs: the gateway's own async settings and URLs (django-uws from PyPI at
# esap-api/uws/), a Redis broker (Debian's redis-server) and a Celery worker (ESAP's esap/celery.py
# app) in a virtual environment of its own where esap-executors is pip-installed as a deployment
# would, with its UWS worker (esap_executors.esap.uws_worker, type esap-executors) registered.
# The shared copy is read-only: each start whose inputs changed makes a fresh copy under
# $ESAP_DIR/src, applies esap/offline.patch (eossr 2.3.1's API; Zenodo base URL settable) and adds
# esap/esap_ci_settings.py (databases under $ESAP_DIR/db) and esap/esap_ci_worker_settings.py.
# Zenodo is not reachable here: the
# gateway's OSSR harvest goes to $ESAP_ZENODO_API_URL, where tests serve recorded Zenodo answers
# (tests/esap/zenodo_standin.py); with nothing there, workflows/search answers 500 as upstream
# does when Zenodo is down.
# Usage: bash esap.sh [start|stop|status]   (start is idempotent; restarts when its inputs changed,
#   and starts again whichever of gateway, Redis and Celery worker is not running)
# Env (defaults): ESAP_DIR=/var/lib/esap-ci ESAP_VENV=/opt/esap-gateway-venv ESAP_PORT=9480
#   ESAP_ZENODO_API_URL=http://127.0.0.1:9481/api/ ESAP_SRC=<project>/../shared/esap-api-gateway
#   ESAP_OIDC_URL=http://127.0.0.1:9400 ESAP_TIMEOUT=120 ESAP_REDIS_PORT=6390
#   ESAP_WORKER_VENV=/opt/esap-uws-worker-venv ESAP_UWS_WORKDIR=/tmp/esap-uws (the UWS jobs'
#   workflows and outputs, on the sites' shared filesystem) ESAP_UWS_VISIBILITY_TIMEOUT=30 (seconds
#   before the broker hands a dead worker's job to another) ESAP_WORKER_SITES=<generated>
#   (the worker's software catalogue, for workflows given as catalogue entries: this gateway and the
#   OSSR at $ESAP_ZENODO_API_URL, as ESAP_GATEWAY_URL and ESAP_OSSR_URL)
#   ESAP_WORKER_STATE_URL=<postgres.sh's server (schema esap_uws) when it answers, else SQLite>
#   ESAP_WORKER_FAULT_KILL_AT=<empty> (tests only: the worker's ESAP_FAULT_KILL_AT, a fault point of
#   src/esap_executors/faultpoints.py; start restarts the worker when it changes)
#   ESAP_UWS_GROUP=esapuser (the group of the sites' job users: htcondor-local's owner writes outputs)
#   ESAP_UWS_FILE_ROOTS=$ESAP_DIR/worker/files (the only directory file:// workflows are read from)
#   ESAP_UWS_URL_PREFIXES=http://127.0.0.1:<ESAP_PORT+4>/public/ (the only URLs http(s) workflows are
#   fetched from: the tests serve files there)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT="$(cd "$HERE/../.." && pwd)"
: "${ESAP_DIR:=/var/lib/esap-ci}"
: "${ESAP_VENV:=/opt/esap-gateway-venv}"
: "${ESAP_PORT:=9480}"
: "${ESAP_ZENODO_API_URL:=http://127.0.0.1:9481/api/}"
: "${ESAP_SRC:=$PROJECT/../shared/esap-api-gateway}"
: "${ESAP_OIDC_URL:=http://127.0.0.1:9400}"
: "${ESAP_TIMEOUT:=120}"
: "${ESAP_REDIS_PORT:=6390}"
: "${ESAP_WORKER_VENV:=/opt/esap-uws-worker-venv}"
: "${ESAP_UWS_WORKDIR:=/tmp/esap-uws}"
: "${ESAP_WORKER_FAULT_KILL_AT:=}"
: "${ESAP_UWS_VISIBILITY_TIMEOUT:=30}"
: "${ESAP_UWS_GROUP=$(getent group esapuser >/dev/null && echo esapuser || true)}"
: "${ESAP_UWS_FILE_ROOTS:=$ESAP_DIR/worker/files}"
: "${ESAP_UWS_URL_PREFIXES:=http://127.0.0.1:$((ESAP_PORT + 4))/public/}"
: "${PG_ENV:=/var/lib/postgres-ci/env}"
URL="http://127.0.0.1:$ESAP_PORT/esap-api"
LOG="$ESAP_DIR/log"; PIDF="$ESAP_DIR/gateway.pid"; CONFIG_ID="$ESAP_DIR/config.id"
REDIS_PIDF="$ESAP_DIR/redis.pid"; WORKER_PIDF="$ESAP_DIR/worker.pid"; WORKER_ID="$ESAP_DIR/worker.id"
BROKER="redis://127.0.0.1:$ESAP_REDIS_PORT/0"
mkdir -p "$LOG"
T0=$(date +%s.%N)
say()  { echo "[esap-ci $(date +%T)] $*" | tee -a "$LOG/start.log" >&2; }
die()  { say "ERROR: $*"; tail -n 30 "$LOG/server.log" >&2 2>/dev/null || true; exit 1; }
now()  { date +%s.%N; }
since(){ awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
timed(){ local n=$1; shift; local s; s=$(now); "$@"; local d; d=$(since "$s"); echo "$n ${d}s" >> "$LOG/timings.txt"; say "step $n took ${d}s"; }
# running_as PIDFILE COMM: the process of PIDFILE lives and its command name matches COMM
running_as(){ local p; [ -s "$1" ] || return 1; p=$(cat "$1"); [ -d "/proc/$p" ] && grep -q "$2" "/proc/$p/comm" && ! grep -q '^State:.*Z' "/proc/$p/status"; }
alive(){ running_as "$PIDF" python; }
redis_alive(){ running_as "$REDIS_PIDF" redis; }
worker_alive(){ running_as "$WORKER_PIDF" python; }
# stop_group PIDFILE WHAT: the process group its setsid started (the Celery pool and its fronts too)
stop_group(){
  local p; p=$(cat "$1" 2>/dev/null) || return 0
  if [ -n "$p" ] && [ -d "/proc/$p" ]; then
    kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true
    local w=0; while [ -d "/proc/$p" ] && [ $w -lt 100 ]; do sleep 0.1; w=$((w+1)); done
    [ -d "/proc/$p" ] && kill -KILL -- "-$p" 2>/dev/null || true
    say "stopped the $2 (pid $p)"
  fi
  rm -f "$1"
}
stop_server(){ if alive; then stop_group "$PIDF" "ESAP gateway"; fi; rm -f "$PIDF"; }
stop_worker(){ if worker_alive; then stop_group "$WORKER_PIDF" "Celery worker"; fi; rm -f "$WORKER_PIDF"; }
stop_redis(){ if redis_alive; then stop_group "$REDIS_PIDF" "Redis broker"; fi; rm -f "$REDIS_PIDF"; }
case "${1:-start}" in
  stop) stop_worker; stop_server; stop_redis; exit 0;;
  status)
    if alive; then echo "esap gateway running pid $(cat "$PIDF") at $URL/"; else echo "esap gateway NOT running"; fi
    if redis_alive; then echo "redis broker running pid $(cat "$REDIS_PIDF") at $BROKER"; else echo "redis broker NOT running"; fi
    if worker_alive; then echo "celery worker running pid $(cat "$WORKER_PIDF")"; else echo "celery worker NOT running"; fi
    exit 0;;
  start) echo "--- run $(date -Is)" >> "$LOG/timings.txt";;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2;;
esac

[ -f "$ESAP_SRC/esap/manage.py" ] || die "no ESAP gateway source at $ESAP_SRC (set ESAP_SRC)"
PY="$ESAP_VENV/bin/python"

# The gateway's pins (requirements/base.txt) with the changes Python 3.11 needs (reference esap.md
# §10): current numpy (below 2.4, which removed in1d that astropy 6.1 uses), astropy, pyerfa (no 3.11
# wheels for the pinned ones), no Cython, and eossr
# 2.3.1 (0.6.1's sdist no longer builds; offline.patch adapts ESAP's two imports to it).
requirements(){
  grep -v -E '^(numpy|astropy|pyerfa|Cython|eossr)==' "$ESAP_SRC/esap/requirements/base.txt"
  printf '%s\n' 'numpy<2.4' astropy pyerfa 'eossr==2.3.1'
  # the asynchronous jobs: django-uws as ESAP's requirements/async.txt names it (a submodule there,
  # the same package on PyPI) and Celery with its Redis transport, to dispatch the UWS jobs
  # (kombu 5.6 and later want a newer packaging than the gateway's pin 21.3)
  uws_requirements
}
uws_requirements(){
  printf '%s\n' 'django-uws==0.2.dev370864' 'celery==5.5.3' 'kombu==5.5.4' 'redis==5.2.1'
}
install(){
  local want; want=$(requirements | sha256sum | cut -d' ' -f1)
  if [ -x "$PY" ] && [ "$(cat "$ESAP_VENV/.esap-requirements" 2>/dev/null)" = "$want" ]; then return 0; fi
  command -v python3 >/dev/null || die "python3 missing"
  if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    say "apt-get install python3-venv"; apt-get update -qq >> "$LOG/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >> "$LOG/apt.log" 2>&1 || die "python3-venv install failed"
  fi
  [ -x "$PY" ] || python3 -m venv "$ESAP_VENV" || die "cannot create $ESAP_VENV"
  requirements > "$ESAP_DIR/requirements.txt"
  "$ESAP_VENV/bin/pip" install -q -r "$ESAP_DIR/requirements.txt" >> "$LOG/pip.log" 2>&1 || die "pip install of the gateway's requirements failed (see $LOG/pip.log)"
  echo "$want" > "$ESAP_VENV/.esap-requirements"
}
timed install install

# django-uws's results lose their size and MIME type (the endpoint drops them, the worker's class
# names one mimeTime): esap/django-uws-results.patch, applied to the installed package of a virtual
# environment (once: a reverse dry run tells it is there)
patch_uws(){ # patch_uws PYTHON
  local site; site=$("$1" -c 'import os, uws; print(os.path.dirname(os.path.dirname(uws.__file__)))') || die "django-uws missing beside $1"
  patch -s -p1 -R --dry-run -d "$site" < "$HERE/esap/django-uws-results.patch" >/dev/null 2>&1 && return 0
  patch -s -p1 -d "$site" < "$HERE/esap/django-uws-results.patch" >> "$LOG/start.log" 2>&1 || die "esap/django-uws-results.patch does not apply to $site/uws"
}
timed patch-uws patch_uws "$PY"

# What the running gateway was made from: the upstream source, our patch and settings, the settings
# passed through the environment. A change means a fresh copy, fresh databases and a restart.
config_id(){
  { (cd "$ESAP_SRC" && find . -type f -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    cat "$HERE/esap/offline.patch" "$HERE/esap/esap_ci_settings.py" "$HERE/esap/esap_ci_worker_settings.py" \
      "$HERE/esap/django-uws-results.patch" "$ESAP_VENV/.esap-requirements"
    echo "$ESAP_PORT $ESAP_ZENODO_API_URL $ESAP_OIDC_URL $ESAP_REDIS_PORT"; } | sha256sum | cut -d' ' -f1
}
WANT=$(config_id)

export ESAP_CI_STATE="$ESAP_DIR" ESAP_ZENODO_API_URL DJANGO_SETTINGS_MODULE=esap.settings.esap_ci
export CELERY_BROKER_URL="$BROKER"
export OIDC_RP_CLIENT_ID=ci-client OIDC_RP_CLIENT_SECRET=ci-secret \
  OIDC_OP_AUTHORIZATION_ENDPOINT="$ESAP_OIDC_URL/authorize" OIDC_OP_TOKEN_ENDPOINT="$ESAP_OIDC_URL/token" \
  OIDC_OP_USER_ENDPOINT="$ESAP_OIDC_URL/userinfo" OIDC_OP_JWKS_ENDPOINT="$ESAP_OIDC_URL/jwk" \
  LOGIN_REDIRECT_URL="http://127.0.0.1:$ESAP_PORT/esap-api/" LOGOUT_REDIRECT_URL="http://127.0.0.1:$ESAP_PORT/esap-api/" \
  LOGIN_REDIRECT_URL_FAILURE="http://127.0.0.1:$ESAP_PORT/esap-api/"
MANAGE=("$PY" "$ESAP_DIR/src/esap/manage.py")

prepare(){
  stop_server
  rm -rf "$ESAP_DIR/src" "$ESAP_DIR/db"; mkdir -p "$ESAP_DIR/db"
  cp -r "$ESAP_SRC" "$ESAP_DIR/src" && chmod -R u+w "$ESAP_DIR/src"
  patch -s -p1 -d "$ESAP_DIR/src/esap" < "$HERE/esap/offline.patch" || die "offline.patch does not apply to $ESAP_SRC"
  cp "$HERE/esap/esap_ci_settings.py" "$ESAP_DIR/src/esap/esap/settings/esap_ci.py"
  cp "$HERE/esap/esap_ci_worker_settings.py" "$ESAP_DIR/src/esap/esap/settings/esap_ci_worker.py"
  local db
  for db in default accounts ida batch rucio uws; do
    "${MANAGE[@]}" migrate --noinput --database "$db" >> "$LOG/migrate.log" 2>&1 || die "migrate of database $db failed (see $LOG/migrate.log)"
  done
  # ESAP's QueryRouter sends each of these apps to the database of its name
  local app
  for app in ida batch; do
    "${MANAGE[@]}" loaddata --database "$app" "$ESAP_DIR/src/esap/esap/esap_${app}_config.yaml" >> "$LOG/migrate.log" 2>&1 \
      || die "loading esap_${app}_config.yaml failed (see $LOG/migrate.log)"
  done
  rm -f "$CONFIG_ID"
}
if [ "$(cat "$CONFIG_ID" 2>/dev/null)" != "$WANT" ] || [ ! -f "$ESAP_DIR/src/esap/esap/settings/esap_ci.py" ]; then
  stop_worker
  timed prepare prepare
fi

# The broker: Debian's redis-server on loopback, in memory only (a job's message lives while Redis does)
install_redis(){
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null && return 0
  say "apt-get install redis-server"; apt-get update -qq >> "$LOG/apt.log" 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >> "$LOG/apt.log" 2>&1 || die "redis-server install failed (see $LOG/apt.log)"
}
start_redis(){
  install_redis
  if ! redis_alive; then
    mkdir -p "$ESAP_DIR/redis"
    (exec setsid redis-server --bind 127.0.0.1 --port "$ESAP_REDIS_PORT" --dir "$ESAP_DIR/redis" --save '' \
      --appendonly no --daemonize no --protected-mode yes </dev/null >> "$LOG/redis.log" 2>&1) &
    echo $! > "$REDIS_PIDF"
  fi
  local end=$(( $(date +%s) + ESAP_TIMEOUT ))
  until [ "$(redis-cli -p "$ESAP_REDIS_PORT" ping 2>/dev/null)" = PONG ]; do
    redis_alive || die "redis-server exited (see $LOG/redis.log)"
    [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for Redis on port $ESAP_REDIS_PORT"; sleep 0.1
  done
}
timed redis start_redis

start_server(){
  if ! alive; then
    rm -f "$PIDF"
    # exec: no shell in between keeps the caller's stdout open; --noreload: one process to own
    (cd "$ESAP_DIR/src/esap" && exec setsid "${MANAGE[@]}" runserver --noreload "127.0.0.1:$ESAP_PORT" \
      </dev/null >> "$LOG/server.log" 2>&1) &
    echo $! > "$PIDF"
    echo "$WANT" > "$CONFIG_ID"
  fi
  local end=$(( $(date +%s) + ESAP_TIMEOUT ))
  until curl -sf "$URL/ida/facilities/search" >/dev/null 2>&1; do
    alive || die "the ESAP gateway exited (see $LOG/server.log)"
    [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for $URL/"; sleep 0.2
  done
}
timed start start_server

# The Celery worker's environment: Django and django-uws as the gateway has them, Celery with Redis,
# and esap-executors installed from this checkout (not editable) with the cwl and snakemake fronts
WPY="$ESAP_WORKER_VENV/bin/python"
WORKER_EXTRAS="cwl,snakemake,postgres"
worker_requirements(){
  printf '%s\n' 'Django==4.0.2' 'djangorestframework==3.13.1'; uws_requirements
}
project_id(){
  (cd "$PROJECT" && find src pyproject.toml -type f -not -name '*.pyc' -not -path '*/__pycache__/*' \
    -not -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum; worker_requirements; echo "$WORKER_EXTRAS") \
    | sha256sum | cut -d' ' -f1
}
install_worker(){
  local want; want=$(project_id)
  if [ -x "$WPY" ] && [ "$(cat "$ESAP_WORKER_VENV/.esap-worker" 2>/dev/null)" = "$want" ]; then return 0; fi
  [ -x "$WPY" ] || python3 -m venv "$ESAP_WORKER_VENV" || die "cannot create $ESAP_WORKER_VENV"
  worker_requirements > "$ESAP_DIR/worker-requirements.txt"
  # a copy of the project, so no build files land in the checkout
  rm -rf "$ESAP_DIR/project"; mkdir -p "$ESAP_DIR/project"
  (cd "$PROJECT" && cp -r src pyproject.toml README.md "$ESAP_DIR/project/")
  find "$ESAP_DIR/project" -name '*.egg-info' -prune -exec rm -rf {} +
  "$ESAP_WORKER_VENV/bin/pip" install -q -r "$ESAP_DIR/worker-requirements.txt" "$ESAP_DIR/project[$WORKER_EXTRAS]" \
    >> "$LOG/worker-pip.log" 2>&1 || die "pip install of the Celery worker's environment failed (see $LOG/worker-pip.log)"
  echo "$want" > "$ESAP_WORKER_VENV/.esap-worker"
}
timed worker-install install_worker
timed worker-patch-uws patch_uws "$WPY"

# The sites the worker runs on: the example catalogue's SLURM and HTCondor sites with a policy that
# admits the platform's groups /escape/cta and /escape/lofar (tokens of the test provider)
worker_sites(){
  [ -n "${ESAP_WORKER_SITES:-}" ] && { echo "$ESAP_WORKER_SITES"; return; }
  local out="$ESAP_DIR/worker/sites.yaml"; mkdir -p "$ESAP_DIR/worker"
  "$WPY" - "$PROJECT/examples/sites.yaml" "$out" "$ESAP_OIDC_URL/" <<'PY'
import sys, yaml
examples = yaml.safe_load(open(sys.argv[1]))
policy = {"require_token": True, "issuer": sys.argv[3],
          "groups": {"/escape/cta": {"account": "cta", "accounting_group": "group_cta"},
                     "/escape/lofar": {"account": "lofar", "accounting_group": "group_lofar"}}}
sites = {name: {**examples[name], "policy": policy} for name in ("slurm-local", "htcondor-local")}
with open(sys.argv[2], "w") as out:
    yaml.safe_dump(sites, out, sort_keys=False)
PY
  echo "$out"
}
SITES_FILE=$(worker_sites) || die "cannot write the worker's sites.yaml"
# The worker's state store: $ESAP_WORKER_STATE_URL, else the PostgreSQL server of postgres.sh when it
# answers (a schema esap_uws of its own; platforms share one store between their workers), else SQLite
worker_state_url(){
  if [ -n "${ESAP_WORKER_STATE_URL:-}" ]; then echo "$ESAP_WORKER_STATE_URL"; return; fi
  local base; base=$(sed -n 's/^ESAP_TEST_POSTGRES_URL=//p' "$PG_ENV" 2>/dev/null)
  if [ -n "$base" ] && "$WPY" - "$base" >> "$LOG/start.log" 2>&1 <<'PY'
import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=10) as db:
    db.execute("CREATE SCHEMA IF NOT EXISTS esap_uws")
PY
  then echo "$base$(case "$base" in *\?*) echo '&';; *) echo '?';; esac)options=-csearch_path%3Desap_uws"; return; fi
  [ "${CI:-}" = true ] && [ -n "$base" ] && die "the PostgreSQL server of $PG_ENV does not answer (see $LOG/start.log)"
  echo "sqlite://$ESAP_DIR/worker/state/state.db"
}
mkdir -p "$ESAP_DIR/worker/state"
STATE_URL=$(worker_state_url)
echo "$STATE_URL" > "$ESAP_DIR/worker/state.url"
# The worker's key pair: users seal their platform token to the public key (django-uws shows every
# job parameter to every authenticated user); the private key is the worker's alone (0600)
WORKER_KEY="$ESAP_DIR/worker/uws-key.pem"; WORKER_PUBLIC_KEY="$ESAP_DIR/worker/uws-key.pub.pem"
if [ ! -s "$WORKER_KEY" ] || [ ! -s "$WORKER_PUBLIC_KEY" ]; then
  rm -f "$WORKER_KEY" "$WORKER_PUBLIC_KEY"
  "$ESAP_WORKER_VENV/bin/esap" uws keygen "$WORKER_KEY" "$WORKER_PUBLIC_KEY" >> "$LOG/start.log" 2>&1 || die "cannot make the worker's key pair"
fi
WANT_WORKER=$( { cat "$ESAP_WORKER_VENV/.esap-worker" "$SITES_FILE" "$CONFIG_ID" "$WORKER_PUBLIC_KEY"; echo "$ESAP_UWS_WORKDIR $ESAP_UWS_VISIBILITY_TIMEOUT $STATE_URL $ESAP_ZENODO_API_URL $ESAP_UWS_GROUP $ESAP_UWS_FILE_ROOTS $ESAP_UWS_URL_PREFIXES $ESAP_WORKER_FAULT_KILL_AT"; } | sha256sum | cut -d' ' -f1)

start_worker(){
  if worker_alive && [ "$(cat "$WORKER_ID" 2>/dev/null)" != "$WANT_WORKER" ]; then stop_worker; fi
  if ! worker_alive; then
    rm -f "$WORKER_PIDF"
    # the worker makes its job directories private itself (mode 0750, group $ESAP_UWS_GROUP)
    (umask 077; mkdir -p "$ESAP_UWS_WORKDIR" "$ESAP_DIR/worker/state" "$ESAP_DIR/worker/files")
    # ESAP's own Celery app; the settings name the broker, django-uws's task and our worker
    (cd "$ESAP_DIR/src/esap" && exec setsid env DJANGO_SETTINGS_MODULE=esap.settings.esap_ci_worker \
      UWS_HOST="$URL/uws/" ESAP_SITES="$SITES_FILE" ESAP_STATE_URL="$STATE_URL" \
      ESAP_UWS_WORKDIR="$ESAP_UWS_WORKDIR" ESAP_UWS_VISIBILITY_TIMEOUT="$ESAP_UWS_VISIBILITY_TIMEOUT" \
      ESAP_UWS_GROUP="$ESAP_UWS_GROUP" ESAP_UWS_FILE_ROOTS="$ESAP_UWS_FILE_ROOTS" \
      ESAP_UWS_URL_PREFIXES="$ESAP_UWS_URL_PREFIXES" \
      ESAP_OIDC_ISSUER="$ESAP_OIDC_URL/" ESAP_UWS_PRIVATE_KEY="$WORKER_KEY" \
      ESAP_GATEWAY_URL="$URL/" ESAP_OSSR_URL="$ESAP_ZENODO_API_URL" PATH="$ESAP_WORKER_VENV/bin:$PATH" \
      ESAP_FAULT_KILL_AT="$ESAP_WORKER_FAULT_KILL_AT" \
      "$WPY" -m celery -A esap.celery worker --concurrency 2 --loglevel INFO --hostname "esap-uws-$ESAP_PORT@%h" \
      </dev/null >> "$LOG/worker.log" 2>&1) &
    echo $! > "$WORKER_PIDF"
    echo "$WANT_WORKER" > "$WORKER_ID"
  fi
  local end=$(( $(date +%s) + ESAP_TIMEOUT ))
  until (cd "$ESAP_DIR/src/esap" && DJANGO_SETTINGS_MODULE=esap.settings.esap_ci_worker UWS_HOST="$URL/uws/" \
         "$WPY" -m celery -A esap.celery inspect ping --timeout 1 -d "esap-uws-$ESAP_PORT@$(hostname)") >/dev/null 2>&1; do
    worker_alive || die "the Celery worker exited (see $LOG/worker.log)"
    [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for the Celery worker"; sleep 0.5
  done
}
timed worker start_worker

verify(){
  "$PY" - "$URL" <<'PY'
import json, sys, urllib.request
base = sys.argv[1]
def get(path):
    return json.load(urllib.request.urlopen(base + path, timeout=30))
ida = get("/ida/facilities/search")
batch = get("/batch/facilities/search")
assert ida["count"] == 4 and {f["facilitytype"] for f in ida["results"]} == {"jupyterhub"}, ida
kinds = {f["name"]: f["facilitytype"] for f in batch["results"]}
assert kinds == {"CTADIRAC": "DIRAC", "Rosetta @ INAF OATS": "rosetta"}, kinds
print(f"{ida['count']} IDA and {batch['count']} batch facilities")
try:  # the UWS jobs API is mounted and asks who is calling
    urllib.request.urlopen(base + "/uws/jobs/", timeout=30)
    raise SystemExit("esap-api/uws/jobs/ answered an anonymous request")
except urllib.error.HTTPError as exc:
    assert exc.code in (401, 403), exc
PY
}
VERIFY=$(verify) || die "verification failed"
TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
VERSIONS=$("$WPY" -c 'import celery, importlib.metadata as m; v = m.version; print("django-uws " + v("django-uws") + ", Celery " + celery.__version__ + ", esap-executors " + v("esap-executors"))')
echo "ESAP READY: ESAP API gateway (Django $("$PY" -c 'import django; print(django.get_version())'), eossr 2.3.1) at $URL/ (pid $(cat "$PIDF")), $VERIFY, OSSR harvest from $ESAP_ZENODO_API_URL, OIDC $ESAP_OIDC_URL/; UWS at $URL/uws/jobs/ with Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') at $BROKER (pid $(cat "$REDIS_PIDF")) and a Celery worker (pid $(cat "$WORKER_PIDF"); $VERSIONS; worker type esap-executors, sites $SITES_FILE, jobs under $ESAP_UWS_WORKDIR, store ${STATE_URL%%\?*}, public key $WORKER_PUBLIC_KEY), ${TOTAL}s (logs: $LOG)"
