#!/usr/bin/env bash
# postgres.sh - a REAL PostgreSQL server on loopback for the state store's PostgreSQL engine
# (ESAP_STATE_URL=postgresql://...) and the UWS worker's tests: Debian's postgresql, one cluster of
# its own (data in $PG_DIR/data, no /etc/postgresql cluster, no systemd) on 127.0.0.1:$PG_PORT.
# A role $PG_USER (LOGIN CREATEDB) with a generated password and its database $PG_DATABASE.
# The password never goes into argv: it is in password files (libpq's .pgpass format, mode 0600)
# named by the URL's `passfile` parameter: $PG_DIR/pgpass for root, $PG_DIR/pgpass.<user> owned by
# each user of PG_CLIENT_USERS (non-root test users, e.g. the HTCondor submit user).
# $PG_DIR/env (world-readable, no secret) holds ESAP_TEST_POSTGRES_URL for the tests.
# The cluster is for tests: synchronous_commit=off (a crash of the machine may lose the last
# commits, never corrupts), as SQLite's WAL with synchronous=NORMAL.
# Usage: bash postgres.sh [start|stop|status]   (start is idempotent; it restarts the server
#   when its settings changed)
# Env (defaults): PG_DIR=/var/lib/postgres-ci PG_PORT=5433 PG_USER=esap PG_DATABASE=esap
#   PG_CLIENT_USERS=esapuser PG_TIMEOUT=60
set -euo pipefail
: "${PG_DIR:=/var/lib/postgres-ci}"
: "${PG_PORT:=5433}"
: "${PG_USER:=esap}"
: "${PG_DATABASE:=esap}"
: "${PG_CLIENT_USERS:=esapuser}"
: "${PG_TIMEOUT:=60}"
DATA="$PG_DIR/data"; RUN="$PG_DIR/run"; LOG="$PG_DIR/log"
SERVICE_TAG=postgres-ci; SERVICE_TIMEOUT=$PG_TIMEOUT
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
T0=$(now)
mkdir -p "$LOG"; chmod 755 "$PG_DIR"
die()  { say "ERROR: $*"; tail -n 30 "$LOG/server.log" >&2 2>/dev/null || true; exit 1; }
bin_dir(){ ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
as_postgres(){ runuser -u postgres -- "$@"; }
running(){ [ -n "$(bin_dir)" ] && [ -s "$DATA/PG_VERSION" ] && as_postgres "$(bin_dir)/pg_ctl" status -D "$DATA" >/dev/null 2>&1; }

case "${1:-start}" in
  stop) if running; then as_postgres "$(bin_dir)/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null; say "stopped PostgreSQL ($DATA)"; fi; exit 0;;
  status) if running; then echo "PostgreSQL running on 127.0.0.1:$PG_PORT ($DATA)"; else echo "PostgreSQL NOT running"; fi; exit 0;;
  start) echo "--- run $(date -Is)" >> "$LOG/timings.txt";;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2;;
esac

install_packages(){
  if [ -z "$(bin_dir)" ]; then
    say "apt-get install postgresql"; apt-get update -qq >> "$LOG/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >> "$LOG/apt.log" 2>&1 \
      || die "apt-get install postgresql failed (see $LOG/apt.log)"
  fi
  [ -n "$(bin_dir)" ] || die "no PostgreSQL binaries under /usr/lib/postgresql after the install"
}
timed install install_packages
BIN=$(bin_dir); MAJOR=$(basename "$(dirname "$BIN")")

init(){
  if [ -s "$DATA/PG_VERSION" ] && [ "$(cat "$DATA/PG_VERSION")" != "$MAJOR" ]; then
    running && as_postgres "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null || true
    say "the cluster in $DATA is of PostgreSQL $(cat "$DATA/PG_VERSION"), the binaries are $MAJOR: a new cluster"
    rm -rf "$DATA"
  fi
  if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"; mkdir -p "$DATA"; chown postgres:postgres "$DATA"; chmod 700 "$DATA"
    as_postgres "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >> "$LOG/initdb.log" 2>&1 || die "initdb failed (see $LOG/initdb.log)"
  fi
  mkdir -p "$RUN"; chown postgres:postgres "$RUN"
}
timed init init

# Our settings, in files of our own; a change restarts the server.
configure(){
  cat > "$DATA/esap-ci.conf.new" <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$RUN'
synchronous_commit = off
max_connections = 200
logging_collector = off
log_min_messages = warning
EOF
  cat > "$DATA/pg_hba.conf.new" <<EOF
# postgres.sh: the superuser by peer on the socket only; every role over TCP on loopback by password
local all postgres peer
host  all all 127.0.0.1/32 scram-sha-256
EOF
  grep -q "^include_if_exists = 'esap-ci.conf'" "$DATA/postgresql.conf" \
    || echo "include_if_exists = 'esap-ci.conf'" >> "$DATA/postgresql.conf"
  CHANGED=0
  for f in esap-ci.conf pg_hba.conf; do
    if ! cmp -s "$DATA/$f.new" "$DATA/$f"; then mv "$DATA/$f.new" "$DATA/$f"; CHANGED=1; else rm -f "$DATA/$f.new"; fi
  done
  chown postgres:postgres "$DATA/esap-ci.conf" "$DATA/pg_hba.conf" "$DATA/postgresql.conf"
}
timed configure configure

start_server(){
  if running && [ "$CHANGED" = 1 ]; then
    say "settings changed: restarting PostgreSQL"; as_postgres "$BIN/pg_ctl" stop -D "$DATA" -m fast -w >/dev/null
  fi
  if ! running; then
    if (exec 3<>"/dev/tcp/127.0.0.1/$PG_PORT") 2>/dev/null; then
      die "port $PG_PORT on 127.0.0.1 is taken by another process (PG_PORT=... chooses another)"
    fi
    rm -f "$DATA/postmaster.pid"
    touch "$LOG/server.log"; chown postgres:postgres "$LOG/server.log"
    as_postgres setsid "$BIN/pg_ctl" start -D "$DATA" -l "$LOG/server.log" -w -t "$PG_TIMEOUT" </dev/null >/dev/null 2>&1 \
      || die "PostgreSQL did not start (see $LOG/server.log)"
  fi
  wait_for "PostgreSQL on $RUN" as_postgres "$BIN/pg_isready" -q -h "$RUN" -p "$PG_PORT"
}
timed start start_server

# The test role: its password is generated once, kept in $PG_DIR/password (0600), set through
# psql's standard input (never argv).
role(){
  umask 077
  [ -s "$PG_DIR/password" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$PG_DIR/password"
  local password; password=$(cat "$PG_DIR/password")
  as_postgres "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$RUN" -p "$PG_PORT" -d postgres >> "$LOG/setup.log" 2>&1 <<EOF || die "creating role $PG_USER and database $PG_DATABASE failed (see $LOG/setup.log)"
SELECT format('CREATE ROLE %I LOGIN CREATEDB', '$PG_USER') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE "$PG_USER" PASSWORD '$password';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DATABASE', '$PG_USER') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PG_DATABASE') \gexec
EOF
  echo "127.0.0.1:$PG_PORT:*:$PG_USER:$password" > "$PG_DIR/pgpass"
  chmod 600 "$PG_DIR/pgpass"
  local user
  for user in $PG_CLIENT_USERS; do
    id "$user" >/dev/null 2>&1 || continue
    install -m 600 -o "$user" "$PG_DIR/pgpass" "$PG_DIR/pgpass.$user"
  done
  umask 022
  URL="postgresql://$PG_USER@127.0.0.1:$PG_PORT/$PG_DATABASE?passfile=$PG_DIR/pgpass"
  echo "ESAP_TEST_POSTGRES_URL=$URL" > "$PG_DIR/env"
}
timed role role

verify(){
  "$BIN/psql" -X -At "$URL" -c "SELECT current_user || ' ' || current_setting('server_version')" 2>> "$LOG/setup.log" \
    || die "cannot log in as $PG_USER over TCP with $PG_DIR/pgpass"
}
VERIFY=$(verify)
TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
echo "POSTGRES READY: PostgreSQL ${VERIFY#* } at $URL (role ${VERIFY%% *}, password only in 0600 files: $PG_DIR/pgpass, $PG_DIR/pgpass.<user> for $PG_CLIENT_USERS), pid $(head -n 1 "$DATA/postmaster.pid"), ${TOTAL}s (env: $PG_DIR/env; logs: $LOG)"
