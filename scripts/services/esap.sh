#!/usr/bin/env bash
# esap.sh - the REAL ESAP API gateway (../shared/esap-api-gateway, upstream d439e2e) on loopback,
# offline: Django 4.0.2 in its own virtual environment outside the repository, sqlite, migrated,
# the gateway's own catalogue fixtures (esap_ida_config.yaml, esap_batch_config.yaml) loaded,
# OIDC settings pointing at the project's test provider (oidc.sh, 127.0.0.1:9400).
# The shared copy is read-only: each start whose inputs changed makes a fresh copy under
# $ESAP_DIR/src, applies esap/offline.patch (eossr 2.3.1's API; Zenodo base URL settable) and adds
# esap/esap_ci_settings.py (databases under $ESAP_DIR/db). Zenodo is not reachable here: the
# gateway's OSSR harvest goes to $ESAP_ZENODO_API_URL, where tests serve recorded Zenodo answers
# (tests/esap/zenodo_standin.py); with nothing there, workflows/search answers 500 as upstream
# does when Zenodo is down.
# Usage: bash esap.sh [start|stop|status]   (start is idempotent; restarts when its inputs changed)
# Env (defaults): ESAP_DIR=/var/lib/esap-ci ESAP_VENV=/opt/esap-gateway-venv ESAP_PORT=9480
#   ESAP_ZENODO_API_URL=http://127.0.0.1:9481/api/ ESAP_SRC=<project>/../shared/esap-api-gateway
#   ESAP_OIDC_URL=http://127.0.0.1:9400 ESAP_TIMEOUT=120
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
URL="http://127.0.0.1:$ESAP_PORT/esap-api"
LOG="$ESAP_DIR/log"; PIDF="$ESAP_DIR/gateway.pid"; CONFIG_ID="$ESAP_DIR/config.id"
mkdir -p "$LOG"
T0=$(date +%s.%N)
say()  { echo "[esap-ci $(date +%T)] $*" | tee -a "$LOG/start.log" >&2; }
die()  { say "ERROR: $*"; tail -n 30 "$LOG/server.log" >&2 2>/dev/null || true; exit 1; }
now()  { date +%s.%N; }
since(){ awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }
timed(){ local n=$1; shift; local s; s=$(now); "$@"; local d; d=$(since "$s"); echo "$n ${d}s" >> "$LOG/timings.txt"; say "step $n took ${d}s"; }
alive(){ local p; [ -s "$PIDF" ] || return 1; p=$(cat "$PIDF"); [ -d "/proc/$p" ] && grep -q python "/proc/$p/comm" && ! grep -q '^State:.*Z' "/proc/$p/status"; }
stop_server(){
  if alive; then
    local p; p=$(cat "$PIDF"); kill "$p"
    local w=0; while [ -d "/proc/$p" ] && [ $w -lt 50 ]; do sleep 0.1; w=$((w+1)); done
    say "stopped the ESAP gateway (pid $p)"
  fi
  rm -f "$PIDF"
}
case "${1:-start}" in
  stop) stop_server; exit 0;;
  status) if alive; then echo "esap gateway running pid $(cat "$PIDF") at $URL/"; else echo "esap gateway NOT running"; fi; exit 0;;
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

# What the running gateway was made from: the upstream source, our patch and settings, the settings
# passed through the environment. A change means a fresh copy, fresh databases and a restart.
config_id(){
  { (cd "$ESAP_SRC" && find . -type f -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum)
    cat "$HERE/esap/offline.patch" "$HERE/esap/esap_ci_settings.py" "$ESAP_VENV/.esap-requirements"
    echo "$ESAP_PORT $ESAP_ZENODO_API_URL $ESAP_OIDC_URL"; } | sha256sum | cut -d' ' -f1
}
WANT=$(config_id)

export ESAP_CI_STATE="$ESAP_DIR" ESAP_ZENODO_API_URL DJANGO_SETTINGS_MODULE=esap.settings.esap_ci
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
  local db
  for db in default accounts ida batch rucio; do
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
  timed prepare prepare
fi

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
PY
}
VERIFY=$(verify) || die "verification failed"
TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
echo "ESAP READY: ESAP API gateway (Django $("$PY" -c 'import django; print(django.get_version())'), eossr 2.3.1) at $URL/ (pid $(cat "$PIDF")), $VERIFY, OSSR harvest from $ESAP_ZENODO_API_URL, OIDC $ESAP_OIDC_URL/, ${TOTAL}s (logs: $LOG)"
