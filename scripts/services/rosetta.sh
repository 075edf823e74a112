#!/usr/bin/env bash
# rosetta.sh - the REAL Rosetta web application (upstream code, Django 2.2.1, sqlite) with the
# parts it needs to run tasks here, without systemd or Docker:
#
#   sshd (Debian's openssh-server) on 127.0.0.1:$RS_SSH_PORT for the unprivileged user
#     $RS_SSH_USER (SLURM account esap), keys made here
#   docker-registry (Debian's) on 127.0.0.1:$RS_REGISTRY_PORT holding the esap runner image,
#     built with podman from the local busybox image of containers.sh (nothing is pulled)
#   `singularity` on PATH: the project's apptainer wrapper (containers.sh), which Rosetta's
#     SLURM and standalone managers call with docker:// and SINGULARITY_NOHTTPS=true
#   the webapp, run from a copy of $RS_SOURCE made at start under $RS_DIR (never the repo),
#     in its own venv $RS_VENV, as the unprivileged user $RS_WEB_USER, migrated, with fixtures
#     (scripts/services/rosetta/fixtures.py): user $RS_USER (password in $RS_DIR/password,
#     0600), the runner software, computings $RS_SLURM_COMPUTING (cluster, ssh+cli, slurm) and
#     $RS_STANDALONE_COMPUTING (standalone, ssh+cli), a storage "$RS_STORAGE" on each
#
# Needs slurm.sh and containers.sh to have run (it starts neither). Idempotent; logs and
# timings under $RS_DIR/log; prints one "ROSETTA READY" line. Runs as root.
# Usage: bash rosetta.sh [start|stop|status|shell]   (shell: Django's shell of the webapp, Python on stdin)
# Env (defaults): RS_DIR=/var/lib/rosetta-ci RS_VENV=/opt/rosetta-venv RS_PORT=8710
#   RS_SSH_PORT=2210 RS_REGISTRY_PORT=5010 RS_SOURCE=<project>/../shared/rosetta-webapp
#   RS_TIMEOUT=60
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PROJECT=$(cd "$HERE/../.." && pwd)
: "${RS_DIR:=/var/lib/rosetta-ci}"
: "${RS_VENV:=/opt/rosetta-venv}"
: "${RS_PORT:=8710}"
: "${RS_SSH_PORT:=2210}"
: "${RS_REGISTRY_PORT:=5010}"
: "${RS_TIMEOUT:=60}"
: "${RS_SOURCE:=}"
: "${RS_MIRROR:=http://deb.debian.org/debian}"
: "${RS_SNAKEMAKE_PIP:=snakemake>=9,<10}"
RS_WEB_USER=rosettaweb
RS_SSH_USER=esaprosetta
RS_USER=esap
RS_SLURM_COMPUTING=slurm-ssh
RS_STANDALONE_COMPUTING=standalone-ssh
RS_STORAGE=data
RS_RUNNER_IMAGE=esap-runner
RS_RUNNER_TAG=ci
LOG="$RS_DIR/log"; RUN="$RS_DIR/run"
mkdir -p "$LOG" "$RUN"
T0=$(date +%s.%N)
say()  { echo "[rosetta-ci $(date +%T)] $*" | tee -a "$LOG/start.log" >&2; }
die()  { say "ERROR: $*"; for f in "$LOG"/*.log; do echo "---- tail $f" >&2; tail -n 15 "$f" >&2 || true; done; exit 1; }
now()  { date +%s.%N; }
since(){ awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
timed(){ local name=$1; shift; local s; s=$(now); "$@"; local d; d=$(since "$s"); echo "$name ${d}s" >> "$LOG/timings.txt"; say "step $name took ${d}s"; }
wait_for(){ local what=$1; shift; local end=$(( $(date +%s) + RS_TIMEOUT ));
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for $what"; sleep 0.2; done; }
alive(){ local p; [ -s "$1" ] || return 1; p=$(cat "$1"); [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; }
killpid(){ local f=$1; if alive "$f"; then local p; p=$(cat "$f"); kill "$p" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$p" ] || break; sleep 0.1; done; say "stopped $(basename "$f" .pid) (pid $p)"; fi; rm -f "$f"; }
http_ok(){ curl -fsS -o /dev/null --max-time 3 "$1"; }

WEBAPP="$RS_DIR/webapp"
AS_WEB="setpriv --reuid=$RS_WEB_USER --regid=$RS_WEB_USER --init-groups"
# the webapp's environment (its secret key exists once `start` has made the keys)
set_webenv(){ WEBENV=(env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$RS_DIR/web" LANG=C.UTF-8
  DJANGO_SECRET_KEY="$(cat "$RS_DIR/secret_key")" DJANGO_DB_NAME="$RS_DIR/db/rosetta.sqlite3"
  LOCAL_USER_DATA_DIR="$RS_DIR/data" ROSETTA_HOST="127.0.0.1:$RS_PORT"
  ROSETTA_WEBAPP_HOST=127.0.0.1 ROSETTA_WEBAPP_PORT="$RS_PORT" ROSETTA_AGENT_CHECK_SSL=false
  ROSETTA_TASKS_TUNNEL_HOST=127.0.0.1
  DJANGO_EMAIL_TYPE=django.core.mail.backends.console.EmailBackend
  DJANGO_LOG_LEVEL=ERROR ROSETTA_LOG_LEVEL=INFO PYTHONWARNINGS=ignore PYTHONUNBUFFERED=1); }

case "${1:-start}" in
  stop) killpid "$RUN/webapp.pid"; killpid "$RUN/registry.pid"; killpid "$RUN/sshd.pid"; exit 0;;
  status) for f in "$RUN"/*.pid; do [ -e "$f" ] || continue; n=$(basename "$f" .pid)
            alive "$f" && echo "$n running pid $(cat "$f")" || echo "$n NOT running"; done; exit 0;;
  # Django's shell of the running webapp, as its user, with its settings: reads Python on stdin
  # (operators' and the tests' way to change Rosetta's records through its own ORM)
  shell) alive "$RUN/webapp.pid" && [ -s "$RS_DIR/secret_key" ] || { echo "rosetta.sh shell: Rosetta is not running (rosetta.sh start)" >&2; exit 1; }
         set_webenv; cd "$WEBAPP/code"; exec "${WEBENV[@]}" $AS_WEB "$RS_VENV/bin/python" manage.py shell;;
  start) echo "--- run $(date -Is)" >> "$LOG/timings.txt";;
  *) echo "usage: $0 [start|stop|status|shell]" >&2; exit 2;;
esac

if [ -z "$RS_SOURCE" ]; then
  for d in "$PROJECT/../shared/rosetta-webapp" "$PROJECT/../../../shared/rosetta-webapp" /work/shared/rosetta-webapp; do
    [ -f "$d/code/manage.py" ] && { RS_SOURCE=$(cd "$d" && pwd); break; }
  done
fi
[ -n "$RS_SOURCE" ] && [ -f "$RS_SOURCE/code/manage.py" ] || die "no Rosetta source (../shared/rosetta-webapp); set RS_SOURCE"
command -v sbatch >/dev/null && sinfo -h >/dev/null 2>&1 || die "SLURM is not running: run scripts/services/slurm.sh first"
command -v apptainer >/dev/null && command -v podman >/dev/null || die "apptainer/podman missing: run scripts/services/containers.sh first"
podman image exists localhost/busybox:ci || die "localhost/busybox:ci missing: run scripts/services/containers.sh first"

# ---------------------------------------------------------------- packages, users, venv
install_pkgs(){
  local missing=""
  for p in openssh-server openssh-client docker-registry curl python3-venv libmagic1; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"; done
  if [ -n "$missing" ]; then
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
    say "apt-get install:$missing"
    apt-get update -qq >> "$LOG/apt.log" 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >> "$LOG/apt.log" 2>&1 || die "apt-get install$missing failed"
  fi
}
make_users(){
  id "$RS_WEB_USER" >/dev/null 2>&1 || useradd -r -d "$RS_DIR/web" -s /bin/sh "$RS_WEB_USER"
  id "$RS_SSH_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$RS_SSH_USER"
  # a locked account ('!') is refused by sshd without PAM; '*' = no password, keys only
  [ "$(getent shadow "$RS_SSH_USER" | cut -d: -f2)" = '*' ] || usermod -p '*' "$RS_SSH_USER"
  local cur; cur=$(sacctmgr -n -P list assoc cluster=ci user="$RS_SSH_USER" account=esap format=user 2>/dev/null || true)
  if [ "$cur" != "$RS_SSH_USER" ]; then
    sacctmgr -i add user "$RS_SSH_USER" account=esap cluster=ci >> "$LOG/sacctmgr.log" 2>&1 || die "sacctmgr add user $RS_SSH_USER failed"
    sacctmgr -i modify user where name="$RS_SSH_USER" cluster=ci set QOS=normal,debug DefaultQOS=normal >> "$LOG/sacctmgr.log" 2>&1 || true
  fi
}
make_venv(){
  if ! "$RS_VENV/bin/python" -c 'import django, rest_framework, rest_framework_swagger, mozilla_django_oidc, magic, dateutils, django_extensions; assert django.VERSION[:3] == (2, 2, 1)' 2>/dev/null; then
    python3 -m venv "$RS_VENV"
    say "pip install Rosetta's dependencies into $RS_VENV"
    "$RS_VENV/bin/pip" install -q Django==2.2.1 djangorestframework==3.9.3 django-rest-swagger==2.2.0 \
      mozilla-django-oidc==1.2.4 python-magic==0.4.15 dateutils==0.6.6 pytz==2022.7.1 django-extensions==3.1.5 \
      >> "$LOG/pip.log" 2>&1 || die "pip install failed (see $LOG/pip.log)"
  fi
}
python_shims(){
  local site; site=$("$RS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  # Debian's own sitecustomize wins over a venv's: a .pth file loads the shim instead
  cp "$HERE/rosetta/rosetta_py311_compat.py" "$site/rosetta_py311_compat.py"
  echo "import rosetta_py311_compat" > "$site/rosetta_py311_compat.pth"
}
timed packages install_pkgs
timed users make_users
timed venv make_venv
python_shims

# ---------------------------------------------------------------- keys
KEYS="$RS_DIR/keys"
make_keys(){
  mkdir -p "$KEYS"
  [ -s "$KEYS/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$KEYS/ssh_host_ed25519_key" -C rosetta-ci-host
  # the Rosetta user's key pair (Rosetta's user_keys auth mode: its KeyPair row names these files)
  [ -s "$KEYS/$RS_USER.key" ] || ssh-keygen -q -t ed25519 -N '' -f "$KEYS/$RS_USER.key" -C "rosetta-$RS_USER"
  chown root:root "$KEYS/ssh_host_ed25519_key"; chmod 600 "$KEYS/ssh_host_ed25519_key"
  chown "$RS_WEB_USER" "$KEYS/$RS_USER.key" "$KEYS/$RS_USER.key.pub"; chmod 600 "$KEYS/$RS_USER.key"
  chmod 755 "$KEYS"
  local home; home=$(getent passwd "$RS_SSH_USER" | cut -d: -f6)
  install -d -m 700 -o "$RS_SSH_USER" -g "$RS_SSH_USER" "$home/.ssh"
  # Rosetta writes each task's job script, task password included, as <uuid>.sh (mode 0644) in this
  # home: only its owner (and root's slurmd) may read it
  chmod 700 "$home"
  local pub; pub=$(cat "$KEYS/$RS_USER.key.pub")
  grep -qxF "$pub" "$home/.ssh/authorized_keys" 2>/dev/null || echo "$pub" >> "$home/.ssh/authorized_keys"
  chown "$RS_SSH_USER:" "$home/.ssh/authorized_keys"; chmod 600 "$home/.ssh/authorized_keys"
  # Rosetta's SLURM stop runs `ssh user@host scancel` without -p: its ssh client config
  # names the port (ssh reads ~/.ssh/config from the passwd home, $RS_DIR/web)
  install -d -m 700 -o "$RS_WEB_USER" "$RS_DIR/web" "$RS_DIR/web/.ssh"
  printf 'Host 127.0.0.1\n  Port %s\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n' "$RS_SSH_PORT" > "$RS_DIR/web/.ssh/config"
  chown "$RS_WEB_USER" "$RS_DIR/web/.ssh/config"; chmod 600 "$RS_DIR/web/.ssh/config"
  # the Rosetta user's password: for the tests' site credentials (never in argv or logs)
  [ -s "$RS_DIR/password" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=\n' > "$RS_DIR/password")
  chmod 600 "$RS_DIR/password"
  [ -s "$RS_DIR/secret_key" ] || (umask 077; head -c 40 /dev/urandom | base64 > "$RS_DIR/secret_key")
}
timed keys make_keys

# ---------------------------------------------------------------- sshd
start_sshd(){
  if alive "$RUN/sshd.pid"; then return 0; fi
  mkdir -p /run/sshd; chmod 755 /run/sshd
  cat > "$RS_DIR/sshd_config" <<EOF
# generated by rosetta.sh
ListenAddress 127.0.0.1
Port $RS_SSH_PORT
HostKey $KEYS/ssh_host_ed25519_key
PidFile $RUN/sshd.pid
AllowUsers $RS_SSH_USER
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
UsePAM no
PermitRootLogin no
X11Forwarding no
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
EOF
  /usr/sbin/sshd -t -f "$RS_DIR/sshd_config" 2>> "$LOG/sshd.log" || die "sshd configuration rejected"
  /usr/sbin/sshd -f "$RS_DIR/sshd_config" -E "$LOG/sshd.log" || die "sshd did not start"
  wait_for "sshd pid file" test -s "$RUN/sshd.pid"
}
check_ssh(){
  runuser -u "$RS_WEB_USER" -- ssh -p "$RS_SSH_PORT" -o LogLevel=ERROR -o BatchMode=yes -i "$KEYS/$RS_USER.key" -4 \
    "$RS_SSH_USER@127.0.0.1" 'command -v sbatch singularity curl python3 >/dev/null && echo ok' 2>> "$LOG/sshd.log" | grep -qx ok
}
timed sshd start_sshd
# `singularity`: the name Rosetta calls; the project's apptainer wrapper answers to it
[ -e /usr/local/bin/singularity ] || ln -s apptainer /usr/local/bin/singularity
# on Debian 12 apptainer runs inside the Debian 13 root of containers.sh, whose /etc/passwd
# must know the SSH user ("Couldn't determine user account information")
CT_ROOT=$(sed -n 's/^R=//p' /usr/local/bin/apptainer 2>/dev/null | head -1)
if [ -n "$CT_ROOT" ] && [ -f "$CT_ROOT/etc/passwd" ]; then
  grep -q "^$RS_SSH_USER:" "$CT_ROOT/etc/passwd" || getent passwd "$RS_SSH_USER" >> "$CT_ROOT/etc/passwd"
  grep -q "^$RS_SSH_USER:" "$CT_ROOT/etc/group" || getent group "$RS_SSH_USER" >> "$CT_ROOT/etc/group"
fi
wait_for "ssh login of $RS_SSH_USER with sbatch, singularity, curl, python3 on PATH" check_ssh

# ---------------------------------------------------------------- registry + runner image
REGISTRY="127.0.0.1:$RS_REGISTRY_PORT"
start_registry(){
  if ! alive "$RUN/registry.pid"; then
    mkdir -p "$RS_DIR/registry"
    cat > "$RS_DIR/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $RS_DIR/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY
EOF
    setsid /usr/bin/docker-registry serve "$RS_DIR/registry.yml" >> "$LOG/registry.log" 2>&1 < /dev/null &
    echo $! > "$RUN/registry.pid"
  fi
  wait_for "registry on $REGISTRY" http_ok "http://$REGISTRY/v2/"
}
push_runner(){
  local src="$PROJECT/src/esap_executors/backends/rosetta/runner" build="$RS_DIR/runner-build"
  rm -rf "$build"; mkdir -p "$build"; cp "$src/Containerfile" "$src/esap-runner.sh" "$build/"
  local digest; digest=$(sha256sum "$build/Containerfile" "$build/esap-runner.sh" | sha256sum | cut -c1-16)
  if [ "$(cat "$RS_DIR/runner.digest" 2>/dev/null)" = "$digest" ] && \
     curl -fsS "http://$REGISTRY/v2/$RS_RUNNER_IMAGE/tags/list" 2>/dev/null | grep -q "\"$RS_RUNNER_TAG\""; then
    return 0
  fi
  podman build -q -t "localhost/$RS_RUNNER_IMAGE:$RS_RUNNER_TAG" "$build" >> "$LOG/podman.log" 2>&1 || die "podman build of the runner failed"
  podman push -q --tls-verify=false "localhost/$RS_RUNNER_IMAGE:$RS_RUNNER_TAG" "docker://$REGISTRY/$RS_RUNNER_IMAGE:$RS_RUNNER_TAG" >> "$LOG/podman.log" 2>&1 \
    || die "podman push to $REGISTRY failed"
  echo "$digest" > "$RS_DIR/runner.digest"
}
# the images of the tests and fronts, pushed once (the registry keeps them across starts):
#   esap-test:ci       busybox with a marker file /esap-test: a step's own image (images.py)
#   esap-httpd:ci      busybox httpd on BASE_PORT: the interactive software esap-httpd
#   esap-snakemake:ci  Debian 12 (debootstrap minbase) with python3 and a venv /opt/snakemake
#                      holding $RS_SNAKEMAKE_PIP from PyPI: the image Snakemake steps run in
#   esap-snakemake:rule  esap-snakemake:ci plus a marker file /esap-rule-image: the tests'
#                      Snakemake rule `container:` image
has_tag(){ curl -fsS "http://$REGISTRY/v2/$1/tags/list" 2>/dev/null | grep -q "\"$2\""; }
push_local(){ podman push -q --tls-verify=false "$1" "docker://$REGISTRY/$2" >> "$LOG/podman.log" 2>&1 || die "podman push $1 to $REGISTRY/$2 failed"; }
push_test_images(){
  has_tag esap-test ci || { podman image exists localhost/esap-test:latest || die "localhost/esap-test:latest missing: run containers.sh first"
    push_local localhost/esap-test:latest esap-test:ci; }
  local src="$HERE/rosetta/interactive" digest
  digest=$(cat "$src/Containerfile" "$src/esap-httpd.sh" | sha256sum | cut -c1-16)
  if [ "$(cat "$RS_DIR/httpd.digest" 2>/dev/null)" != "$digest" ] || ! has_tag esap-httpd ci; then
    podman build -q -t localhost/esap-httpd:ci "$src" >> "$LOG/podman.log" 2>&1 || die "podman build of esap-httpd failed"
    push_local localhost/esap-httpd:ci esap-httpd:ci
    echo "$digest" > "$RS_DIR/httpd.digest"
  fi
}
SNAKEMAKE_ROOT="$RS_DIR/snakemake-root"
build_snakemake_image(){
  local stamp="$RS_SNAKEMAKE_PIP"
  if has_tag esap-snakemake ci && [ "$(cat "$RS_DIR/snakemake.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  if [ "$(cat "$SNAKEMAKE_ROOT/.esap-stamp" 2>/dev/null)" != "$stamp" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq >> "$LOG/apt.log" 2>&1 || true
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >> "$LOG/apt.log" 2>&1 || die "cannot install debootstrap"; }
    rm -rf "$SNAKEMAKE_ROOT"
    say "debootstrap bookworm (python3) -> $SNAKEMAKE_ROOT"
    debootstrap --variant=minbase --include=python3,python3-venv bookworm "$SNAKEMAKE_ROOT" "$RS_MIRROR" \
      >> "$LOG/debootstrap.log" 2>&1 || die "debootstrap failed (see $LOG/debootstrap.log)"
    # pip in the root reaches PyPI through the host's TLS set-up: the host's CA bundle
    cp /etc/ssl/certs/ca-certificates.crt "$SNAKEMAKE_ROOT/etc/esap-host-ca.crt"
    local inroot=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/esap-host-ca.crt
      PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=180 PIP_NO_CACHE_DIR=1 chroot "$SNAKEMAKE_ROOT")
    "${inroot[@]}" /usr/bin/python3 -m venv /opt/snakemake >> "$LOG/pip-snakemake.log" 2>&1 || die "venv /opt/snakemake failed"
    "${inroot[@]}" /opt/snakemake/bin/pip install -q $RS_SNAKEMAKE_PIP >> "$LOG/pip-snakemake.log" 2>&1 \
      || die "pip install $RS_SNAKEMAKE_PIP failed (see $LOG/pip-snakemake.log)"
    rm -rf "$SNAKEMAKE_ROOT"/usr/share/doc/* "$SNAKEMAKE_ROOT"/usr/share/man/* "$SNAKEMAKE_ROOT"/usr/share/locale/* \
      "$SNAKEMAKE_ROOT"/var/cache/apt/archives/*.deb "$SNAKEMAKE_ROOT"/var/lib/apt/lists/*
    echo "$stamp" > "$SNAKEMAKE_ROOT/.esap-stamp"
  fi
  tar -C "$SNAKEMAKE_ROOT" --exclude=./proc --exclude=./sys --exclude=./dev -c . \
    | podman import -q --change 'ENV PATH=/opt/snakemake/bin:/usr/local/bin:/usr/bin:/bin' --change 'CMD ["/bin/sh"]' \
      - localhost/esap-snakemake:ci >> "$LOG/podman.log" 2>&1 || die "podman import of the Snakemake root failed"
  push_local localhost/esap-snakemake:ci esap-snakemake:ci
  echo "$stamp" > "$RS_DIR/snakemake.stamp"
}
push_snakemake_rule_image(){
  local src="$HERE/rosetta/snakemake-rule" base=localhost/esap-snakemake:ci stamp
  podman image exists "$base" || { base="$REGISTRY/esap-snakemake:ci"
    podman image exists "$base" || podman pull -q --tls-verify=false "docker://$base" >> "$LOG/podman.log" 2>&1 \
      || die "podman pull $base failed"; }
  stamp="$(podman image inspect --format '{{.Id}}' "$base") $(cat "$src/Containerfile" "$src/esap-rule-image" | sha256sum | cut -c1-16)"
  if has_tag esap-snakemake rule && [ "$(cat "$RS_DIR/snakemake-rule.stamp" 2>/dev/null)" = "$stamp" ]; then return 0; fi
  podman build -q --pull=never --build-arg "BASE=$base" -t localhost/esap-snakemake:rule "$src" >> "$LOG/podman.log" 2>&1 \
    || die "podman build of esap-snakemake:rule failed"
  push_local localhost/esap-snakemake:rule esap-snakemake:rule
  echo "$stamp" > "$RS_DIR/snakemake-rule.stamp"
}
timed registry start_registry
timed runner_image push_runner
timed test_images push_test_images
timed snakemake_image build_snakemake_image
timed snakemake_rule_image push_snakemake_rule_image
SNAKEMAKE_VERSION=$(chroot "$SNAKEMAKE_ROOT" /opt/snakemake/bin/python -c 'import importlib.metadata as m; print(m.version("snakemake"))' 2>/dev/null || echo "?")

# ---------------------------------------------------------------- webapp
STORAGE_BASE='/home/$SSH_USER/rosetta-storage'
set_webenv
prepare_webapp(){
  # a fresh copy of the upstream code each start (the source may be read-only)
  mkdir -p "$WEBAPP"; rm -rf "$WEBAPP/code.new"; cp -r "$RS_SOURCE/code" "$WEBAPP/code.new"
  rm -rf "$WEBAPP/code"; mv "$WEBAPP/code.new" "$WEBAPP/code"
  local patch
  for patch in "$HERE"/rosetta/patches/*.patch; do
    [ -e "$patch" ] || continue
    patch -s -d "$WEBAPP" -p1 < "$patch" >> "$LOG/patch.log" 2>&1 || die "patch $(basename "$patch") does not apply"
  done
  chmod -R a+rX "$WEBAPP"
  mkdir -p "$RS_DIR/db" "$RS_DIR/data/resources"
  chown -R "$RS_WEB_USER" "$RS_DIR/db" "$RS_DIR/data"
  # Rosetta writes Apache proxy files under /shared (its container layout); give it that directory
  mkdir -p /shared/etc_apache2_sites_enabled; chown "$RS_WEB_USER" /shared/etc_apache2_sites_enabled
  (cd "$WEBAPP/code" && "${WEBENV[@]}" $AS_WEB "$RS_VENV/bin/python" manage.py migrate --noinput) >> "$LOG/migrate.log" 2>&1 \
    || die "manage.py migrate failed (see $LOG/migrate.log)"
}
apply_fixtures(){
  chmod 600 "$RS_DIR/password"; cp "$RS_DIR/password" "$RS_DIR/db/.fixture-password"; chown "$RS_WEB_USER" "$RS_DIR/db/.fixture-password"
  (cd "$WEBAPP/code" && "${WEBENV[@]}" FX_USER="$RS_USER" FX_EMAIL="$RS_USER@rosetta.invalid" \
     FX_PASSWORD_FILE="$RS_DIR/db/.fixture-password" FX_PRIVATE_KEY="$KEYS/$RS_USER.key" FX_PUBLIC_KEY="$KEYS/$RS_USER.key.pub" \
     FX_RUNNER_NAME="esap-runner" FX_REGISTRY="$REGISTRY" FX_RUNNER_IMAGE="$RS_RUNNER_IMAGE" FX_RUNNER_TAG="$RS_RUNNER_TAG" \
     FX_SLURM_COMPUTING="$RS_SLURM_COMPUTING" FX_STANDALONE_COMPUTING="$RS_STANDALONE_COMPUTING" \
     FX_SSH_HOST=127.0.0.1 FX_SSH_PORT="$RS_SSH_PORT" FX_SSH_USER="$RS_SSH_USER" \
     FX_HTTPD_IMAGE=esap-httpd FX_HTTPD_TAG=ci FX_STORAGE="$RS_STORAGE" FX_STORAGE_BASE="$STORAGE_BASE" FX_STORAGE_BIND=/storage \
     $AS_WEB "$RS_VENV/bin/python" manage.py shell < "$HERE/rosetta/fixtures.py") >> "$LOG/fixtures.log" 2>&1 \
    || { rm -f "$RS_DIR/db/.fixture-password"; die "fixtures failed (see $LOG/fixtures.log)"; }
  rm -f "$RS_DIR/db/.fixture-password"
  local home; home=$(getent passwd "$RS_SSH_USER" | cut -d: -f6)
  install -d -m 755 -o "$RS_SSH_USER" -g "$RS_SSH_USER" "$home/rosetta-storage"
}
start_webapp(){
  if alive "$RUN/webapp.pid" && http_ok "http://127.0.0.1:$RS_PORT/api/v1/base/agent/"; then return 0; fi
  killpid "$RUN/webapp.pid"
  prepare_webapp
  cd "$WEBAPP/code"
  "${WEBENV[@]}" setsid $AS_WEB "$RS_VENV/bin/python" manage.py runserver --noreload \
     "127.0.0.1:$RS_PORT" >> "$LOG/webapp.log" 2>&1 < /dev/null &
  echo $! > "$RUN/webapp.pid"; cd "$PROJECT"
  wait_for "Rosetta on 127.0.0.1:$RS_PORT" http_ok "http://127.0.0.1:$RS_PORT/api/v1/base/agent/"
}
timed webapp start_webapp
timed fixtures apply_fixtures
login_ok(){
  curl -fsS --max-time 10 -o /dev/null -X POST --data-urlencode "username=$RS_USER" \
    --data-urlencode "password@$RS_DIR/password" "http://127.0.0.1:$RS_PORT/api/v1/base/login/"
}
wait_for "login of $RS_USER" login_ok

TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
echo "ROSETTA READY: http://127.0.0.1:$RS_PORT user $RS_USER (password file $RS_DIR/password), computings $RS_SLURM_COMPUTING (slurm over ssh) and $RS_STANDALONE_COMPUTING, storage $RS_STORAGE, runner $REGISTRY/$RS_RUNNER_IMAGE:$RS_RUNNER_TAG, images esap-test, esap-httpd, esap-snakemake (snakemake $SNAKEMAKE_VERSION) and its :rule tag, sshd 127.0.0.1:$RS_SSH_PORT as $RS_SSH_USER; ${TOTAL}s (logs: $LOG)"
