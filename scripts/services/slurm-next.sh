#!/usr/bin/env bash
# slurm-next.sh - start a REAL Slurm 24.11 (Debian 13) or 26.05 (Debian sid) cluster beside
# the host's own cluster of slurm.sh, without touching it, and prove it with a real job.
#
#   munged -> mariadbd -> slurmdbd -> slurmctld -> N x slurmd (fake nodes) -> slurmrestd (JWT)
#
# Each version has its own everything: Debian root, cluster name, ports, munge key and socket,
# MariaDB (own datadir, TCP on loopback), state directory, configuration. Same partitions,
# accounts, users, QoS and fake GPUs as slurm.sh (the tests expect them on every cluster).
#
#   version  cluster  root (Debian 12 host)  ctld/dbd/restd    slurmd ports  mariadb
#   24.11    ci2411   /opt/slurm-2411        6917/6919/6920   17101..       127.0.0.1:3317
#   26.05    ci2605   /opt/slurm-2605        7017/7019/7020   17201..       127.0.0.1:3318
#
# Where the binaries come from: a Debian 13 root made with debootstrap (the way htcondor.sh
# runs HTCondor on Debian 12), one root per version since both versions share package names;
# 26.05's root takes Slurm from sid (its Release is past Valid-Until: check-valid-until=no).
# On a Debian 13 host, 24.11 is the native packages (no root), with its own SLURM_CONF.
#
# Client commands: /var/lib/slurm-ci-<2411|2605>/bin on the host holds sbatch, squeue, sacct, scancel, scontrol, sacctmgr, sshare,
# sinfo, srun and munge wrappers that run the version's own binaries with its SLURM_CONF (inside
# its root: needs root). A site reaches the cluster with `options: {commands: that directory}`
# (examples/sites.yaml: slurm-2411, slurm-2605, and their -rest twins for `scontrol token`);
# `source .../env` next to it puts them first on PATH for a shell. Logs and state:
# $ROOT/var/lib/slurm-ci-<tag>.
#
# Start times measured on a 2-core Debian 12 host under load (timings: $ROOT/var/lib/slurm-ci-<tag>/log):
#   cold (debootstrap + apt + daemons + verify job): 24.11 199 s (83 + 99 + 17), 26.05 157 s (77 + 71 + 9);
#   warm re-run: 24.11 7 s, 26.05 3 s (mostly the verifying job).
#
# Usage: bash slurm-next.sh start|stop|status|umount VERSION     (VERSION: 24.11 | 26.05)
# Env: SLURM_CI_NODES=2 SLURM_CI_CPUS=16 SLURM_CI_MEM=4000 SLURM_CI_SHORT_MAXTIME=5
#      SLURM_CI_GPUS=2 SLURM_CI_TIMEOUT=120 SLURM_CI_CLEAN=0 SLURM_NEXT_ROOT_BASE=/opt
set -euo pipefail
ACTION=${1:-}; VERSION=${2:-}
case "$VERSION" in
  24.11) TAG=2411; SUITE=trixie; BASEPORT=6917; NODEPORT=17100; DBPORT=3317;;
  26.05) TAG=2605; SUITE=sid;    BASEPORT=7017; NODEPORT=17200; DBPORT=3318;;
  *) echo "usage: $0 start|stop|status|umount 24.11|26.05" >&2; exit 2;;
esac
: "${SLURM_CI_NODES:=2}"
: "${SLURM_CI_CPUS:=16}"
: "${SLURM_CI_MEM:=4000}"
: "${SLURM_CI_SHORT_MAXTIME:=5}"
: "${SLURM_CI_GPUS:=2}"
: "${SLURM_CI_TIMEOUT:=120}"
: "${SLURM_CI_CLEAN:=0}"
: "${SLURM_NEXT_ROOT_BASE:=/opt}"
PROJECT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLUSTER=ci$TAG
CTLD_PORT=$BASEPORT; DBD_PORT=$((BASEPORT + 2)); RESTD_PORT=$((BASEPORT + 3))
MIRROR=http://deb.debian.org/debian
HOST_OS_VERSION=$(. /etc/os-release; echo "${VERSION_ID:-}")
if [ "$VERSION" = 24.11 ] && [ "$HOST_OS_VERSION" = 13 ]; then ROOT=""; else ROOT="$SLURM_NEXT_ROOT_BASE/slurm-$TAG"; fi
# D: the state directory as the daemons see it; $ROOT$D on the host
D=/var/lib/slurm-ci-$TAG
if [ -n "$ROOT" ]; then CONFDIR=/etc/slurm; else CONFDIR=/etc/slurm-$TAG; fi
CONF=$CONFDIR/slurm.conf
# a root has its own /run: munge's default socket there is this cluster's alone (some client
# paths of Slurm 24.11, e.g. sacctmgr -> slurmdbd, ignore AuthInfo=socket=)
if [ -n "$ROOT" ]; then MUNGE_SOCK=/run/munge/munge.socket.2; else MUNGE_SOCK=/run/munge-$TAG/munge.socket.2; fi
MUNGE_KEY=/etc/munge/munge-$TAG.key
HOST_STATE=$ROOT$D
# on the host at the same place whatever the host: the client command wrappers and the env file
CLIENT_DIR=/var/lib/slurm-ci-$TAG
LOG=$HOST_STATE/log; RUN=$HOST_STATE/run
mkdir -p "$LOG" "$RUN" "$CLIENT_DIR/bin"
T0=$(date +%s.%N)
SERVICE_TAG=slurm-$TAG; SERVICE_TIMEOUT=$SLURM_CI_TIMEOUT
# shellcheck source=common.sh
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
die()  { say "ERROR: $*"; for f in "$LOG"/*.log; do echo "---- tail $f" >&2; tail -n 20 "$f" >&2 || true; done; exit 1; }
nodes(){ seq -f "n%g" 1 "$SLURM_CI_NODES"; }
# run a command with this cluster's binaries and configuration (inside its root, clean env)
inroot(){
  if [ -n "$ROOT" ]; then env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 SLURM_CONF="$CONF" chroot "$ROOT" "$@"
  else SLURM_CONF="$CONF" "$@"; fi
}
cluster_registered(){ inroot sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; }
assoc_known(){ inroot scontrol show assoc_mgr flags=assoc accounts=esap users=root | grep -q UserName=root; }
ctld_up(){ inroot scontrol ping | grep -q UP; }
munge_ok(){ inroot munge -n -S "$MUNGE_SOCK" | inroot unmunge -S "$MUNGE_SOCK"; }

stop_all(){
  killpid "$RUN/slurmrestd.pid" slurmrestd
  for f in "$RUN"/slurmd-*.pid; do [ -e "$f" ] && killpid "$f" slurmd; done
  killpid "$RUN/slurmctld.pid" slurmctld
  killpid "$RUN/slurmdbd.pid" slurmdbd
  killpid "$RUN/mariadbd.pid" mariadbd
  killpid "$RUN/munged.pid" munged
}
umount_all(){
  [ -n "$ROOT" ] || return 0
  mount | awk -v r="$ROOT" '$3==r || index($3, r"/")==1 {print $3}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
}
case "$ACTION" in
  stop) stop_all; exit 0;;
  umount) stop_all; umount_all; exit 0;;
  status) for f in "$RUN"/*.pid; do [ -e "$f" ] || continue; n=$(basename "$f" .pid); alive "$f" "${n%%-*}" && echo "$n running pid $(cat "$f")" || echo "$n NOT running"; done; exit 0;;
  start) echo "--- run $(date -Is)" >> "$LOG/timings.txt";;
  *) echo "usage: $0 start|stop|status|umount $VERSION" >&2; exit 2;;
esac
[ "$(id -u)" = 0 ] || die "starting the Slurm $VERSION cluster needs root"

# ---------------------------------------------------------------- packages
export DEBIAN_FRONTEND=noninteractive
PKGS="munge slurmctld slurmd slurm-client slurmdbd slurmrestd slurm-wlm-jwt-plugin"
EXTRA="mariadb-server curl python3"
missing(){ local m=""; for p in "$@"; do inroot dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || m="$m $p"; done; echo "$m"; }
make_root(){
  [ -n "$ROOT" ] || return 0
  if [ ! -e "$ROOT/etc/debian_version" ]; then
    command -v debootstrap >/dev/null || { apt-get update -qq >> "$LOG/apt.log" 2>&1; apt-get install -y -qq --no-install-recommends debootstrap >> "$LOG/apt.log" 2>&1 || die "cannot install debootstrap"; }
    mountpoint -q "$ROOT/proc" 2>/dev/null && die "$ROOT has mounts but no system: run '$0 umount $VERSION' first"
    say "debootstrap trixie -> $ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR" >> "$LOG/debootstrap.log" 2>&1 || die "debootstrap failed (see $LOG/debootstrap.log)"
  fi
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"; chmod +x "$ROOT/usr/sbin/policy-rc.d"
  if [ "$SUITE" = sid ] && [ ! -e "$ROOT/etc/apt/sources.list.d/sid.list" ]; then
    echo "deb [check-valid-until=no] $MIRROR sid main" > "$ROOT/etc/apt/sources.list.d/sid.list"
    printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > "$ROOT/etc/apt/preferences.d/sid"
  fi
}
mount_root(){
  [ -n "$ROOT" ] || return 0
  mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
  mountpoint -q "$ROOT/sys"  || { mount --rbind /sys "$ROOT/sys"; mount --make-rslave "$ROOT/sys"; }
  mountpoint -q "$ROOT/dev"  || { mount --rbind /dev "$ROOT/dev"; mount --make-rslave "$ROOT/dev"; }
  # jobs see the paths they were submitted from: the same directories at the same places
  local binds="/tmp /var/tmp /home /root" extra covered
  for extra in "$PWD" "$PROJECT_DIR"; do
    covered=0; for b in $binds; do case "$extra/" in "$b"/*) covered=1;; esac; done
    [ "$covered" = 1 ] || [ "$extra" = / ] || binds="$binds $extra"
  done
  for d in $binds; do
    [ -d "$d" ] || continue
    mkdir -p "$ROOT$d"
    if mountpoint -q "$ROOT$d" && [ "$(stat -c %d:%i "$d")" != "$(stat -c %d:%i "$ROOT$d")" ]; then umount -l "$ROOT$d"; fi
    mountpoint -q "$ROOT$d" || mount --bind "$d" "$ROOT$d"
  done
  cp /etc/hosts "$ROOT/etc/hosts"; cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
}
install_pkgs(){
  local m_extra m_slurm
  m_extra=$(missing $EXTRA); m_slurm=$(missing $PKGS)
  [ -z "$m_extra$m_slurm" ] && return 0
  if [ -z "$ROOT" ]; then [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }; fi
  inroot apt-get update -qq >> "$LOG/apt.log" 2>&1 || die "apt-get update failed (see $LOG/apt.log)"
  local target=(); [ "$SUITE" = sid ] && target=(-t sid)
  say "apt-get install:$m_extra$m_slurm"
  [ -z "$m_extra" ] || inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $m_extra >> "$LOG/apt.log" 2>&1 || die "apt-get install$m_extra failed (see $LOG/apt.log)"
  [ -z "$m_slurm" ] || inroot env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" $m_slurm >> "$LOG/apt.log" 2>&1 || die "apt-get install$m_slurm failed (see $LOG/apt.log)"
}
timed root make_root
timed mounts mount_root
timed install install_pkgs
SLURM_VER=$(inroot slurmd -V | awk '{print $2}')
case "$SLURM_VER" in "$VERSION".*) ;; *) die "expected Slurm $VERSION, found '$SLURM_VER'";; esac

# ---------------------------------------------------------------- users (same uids as the host)
# who may submit: root, the test user, and whoever called this script through sudo
USERS="root esapuser"; [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ] && [ "$SUDO_USER" != esapuser ] && USERS="$USERS $SUDO_USER"
setup_users(){
  id esapuser >/dev/null 2>&1 || useradd -m -s /bin/bash esapuser
  id slurmrest >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin slurmrest
  [ -n "$ROOT" ] || return 0
  local u uid gid
  for u in slurmrest ${USERS#root }; do
    uid=$(id -u "$u"); gid=$(id -g "$u")
    inroot getent group "$gid" >/dev/null || inroot groupadd -g "$gid" "$u"
    inroot id "$u" >/dev/null 2>&1 || inroot useradd -u "$uid" -g "$gid" -M -d "$(getent passwd "$u" | cut -d: -f6)" -s /bin/bash "$u"
    [ "$(inroot id -u "$u")" = "$uid" ] || die "uid of $u differs inside $ROOT"
  done
}
timed users setup_users

# ---------------------------------------------------------------- munge (own key and socket)
start_munge(){
  local hk=$ROOT$MUNGE_KEY
  [ -s "$hk" ] || { mkdir -p "$(dirname "$hk")"; dd if=/dev/urandom of="$hk" bs=1024 count=1 2>/dev/null; }
  inroot chown munge:munge "$MUNGE_KEY"; chmod 400 "$hk"
  inroot mkdir -p "$(dirname "$MUNGE_SOCK")" "$D/munge"
  inroot chown munge:munge "$(dirname "$MUNGE_SOCK")" "$D/munge"; chmod 755 "$ROOT$(dirname "$MUNGE_SOCK")"
  if ! alive "$RUN/munged.pid" munged; then
    rm -f "$ROOT$MUNGE_SOCK"*
    inroot runuser -u munge -- /usr/sbin/munged --socket="$MUNGE_SOCK" --key-file="$MUNGE_KEY" \
      --pid-file="$D/munge/munged.pid" --log-file="$D/munge/munged.log" --seed-file="$D/munge/munged.seed"
    wait_for munged test -s "$HOST_STATE/munge/munged.pid"
    cp "$HOST_STATE/munge/munged.pid" "$RUN/munged.pid"
  fi
  wait_for munge munge_ok
}
timed munge start_munge

# ---------------------------------------------------------------- mariadb (own datadir, loopback port)
start_mariadb(){
  inroot mkdir -p "$D/mysql" "$D/mysqld" "$D/log/mariadb"; inroot chown mysql:mysql "$D/mysql" "$D/mysqld" "$D/log/mariadb"
  [ -d "$HOST_STATE/mysql/mysql" ] || inroot mariadb-install-db --user=mysql --datadir="$D/mysql" >> "$LOG/mariadb.log" 2>&1 || die "mariadb-install-db failed"
  if ! alive "$RUN/mariadbd.pid" mariadbd; then
    inroot setsid /usr/sbin/mariadbd --user=mysql --datadir="$D/mysql" --socket="$D/mysqld/mysqld.sock" \
      --pid-file="$D/mysqld/mysqld.pid" --bind-address=127.0.0.1 --port="$DBPORT" --log-error="$D/log/mariadb/server.log" \
      --innodb-buffer-pool-size=64M --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1 &
    wait_for mariadbd inroot mariadb-admin --socket="$D/mysqld/mysqld.sock" ping
    cp "$HOST_STATE/mysqld/mysqld.pid" "$RUN/mariadbd.pid"
  fi
  local sql="CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmci'; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmci'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  [ "$SLURM_CI_CLEAN" = 1 ] && sql="DROP DATABASE IF EXISTS slurm_acct_db; $sql"
  inroot mariadb --socket="$D/mysqld/mysqld.sock" -e "$sql" || die "mariadb: cannot create the accounting database"
}

# ---------------------------------------------------------------- configuration
JWTKEY=$D/jwt_hs256.key
[ -s "$ROOT$JWTKEY" ] || dd if=/dev/urandom of="$ROOT$JWTKEY" bs=32 count=1 2>/dev/null
chmod 600 "$ROOT$JWTKEY"
mkdir -p "$HOST_STATE/ctld" "$ROOT$CONFDIR"
if [ "$SLURM_CI_CLEAN" = 1 ]; then rm -rf "$HOST_STATE/ctld"/* "$HOST_STATE"/spool-*; fi
GPUNODE=""; GRESTYPES=""
# 26.05 enforces memory requests, as a production site does (the other clusters keep CR_CPU):
# memory is consumable, a job without --mem gets the node's memory per CPU (DefMemPerCPU, so
# the same SLURM_CI_CPUS one-core jobs still fit a node), and jobacct_gather's OverMemoryKill
# kills a step whose RSS passes its request at the next sample (task=1: about 1 s later), its
# job ending OUT_OF_MEMORY. No cgroups (they are not usable here, services.md).
SELECT_PARAMS=CR_CPU; MEMORY_ENFORCEMENT=""
if [ "$VERSION" = 26.05 ]; then
  SELECT_PARAMS=CR_CPU_Memory
  MEMORY_ENFORCEMENT="DefMemPerCPU=$((SLURM_CI_MEM / SLURM_CI_CPUS))
JobAcctGatherParams=OverMemoryKill"
fi
if [ "$SLURM_CI_GPUS" -gt 0 ]; then
  GRESTYPES="GresTypes=gpu"; GPUNODE="n$SLURM_CI_NODES"
  for g in $(seq 0 $((SLURM_CI_GPUS-1))); do [ -e "/dev/slurmci-gpu$g" ] || mknod -m 666 "/dev/slurmci-gpu$g" c 1 3 2>/dev/null || : > "/dev/slurmci-gpu$g"; done
fi
CHANGED=0
install_file(){ # install_file PATH MODE < content : replace only when different
  local new; new=$(mktemp); cat > "$new"
  if ! cmp -s "$new" "$ROOT$1"; then cp "$new" "$ROOT$1"; CHANGED=1; fi; rm -f "$new"; chmod "$2" "$ROOT$1"
}
{
cat <<EOF
# generated by slurm-next.sh (Slurm $SLURM_VER) - single host, $SLURM_CI_NODES fake node(s)
ClusterName=$CLUSTER
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWTKEY
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool-%n
SlurmctldPidFile=$D/run/slurmctld.pid
SlurmdPidFile=$D/run/slurmd-%n.pid
SlurmctldLogFile=$D/log/slurmctld.log
SlurmdLogFile=$D/log/slurmd-%n.log
SlurmctldPort=$CTLD_PORT
SlurmdPort=$((NODEPORT))
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=$SELECT_PARAMS
SchedulerType=sched/backfill
SlurmdParameters=config_overrides
ReturnToService=2
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
AccountingStorageEnforce=associations,limits,qos
AccountingStoreFlags=job_comment
$GRESTYPES
JobCompType=jobcomp/filetxt
JobCompLoc=$D/log/jobcomp.txt
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
SlurmctldTimeout=60
EOF
[ -z "$MEMORY_ENFORCEMENT" ] || echo "$MEMORY_ENFORCEMENT"
i=0; for n in $(nodes); do i=$((i+1)); g=""; [ "$n" = "$GPUNODE" ] && g=" Gres=gpu:$SLURM_CI_GPUS"
  echo "NodeName=$n NodeHostname=$n NodeAddr=127.0.0.1 Port=$((NODEPORT+i)) CPUs=$SLURM_CI_CPUS RealMemory=$SLURM_CI_MEM TmpDisk=10000$g State=UNKNOWN"; done
echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
echo "PartitionName=short Nodes=ALL MaxTime=$SLURM_CI_SHORT_MAXTIME State=UP"
} | install_file "$CONF" 644
echo "CgroupPlugin=disabled" | install_file "$CONFDIR/cgroup.conf" 644
{ [ -n "$GPUNODE" ] && echo "NodeName=$GPUNODE Name=gpu File=/dev/slurmci-gpu[0-$((SLURM_CI_GPUS-1))]"; true; } | install_file "$CONFDIR/gres.conf" 644
install_file "$CONFDIR/slurmdbd.conf" 600 <<EOF
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
AuthAltTypes=auth/jwt
AuthAltParameters=jwt_key=$JWTKEY
DbdHost=localhost
DbdPort=$DBD_PORT
SlurmUser=root
PidFile=$D/run/slurmdbd.pid
LogFile=$D/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DBPORT
StorageUser=slurm
StoragePass=slurmci
StorageLoc=slurm_acct_db
EOF
if [ "$CHANGED" = 1 ]; then
  say "configuration changed: restarting Slurm daemons"
  killpid "$RUN/slurmrestd.pid" slurmrestd
  for f in "$RUN"/slurmd-*.pid; do [ -e "$f" ] && killpid "$f" slurmd; done
  killpid "$RUN/slurmctld.pid" slurmctld; killpid "$RUN/slurmdbd.pid" slurmdbd
fi

# ---------------------------------------------------------------- client command wrappers
write_wrappers(){
  local c w
  for c in sbatch squeue sacct scancel scontrol sacctmgr sshare sinfo srun salloc sstat sprio; do
    w=$CLIENT_DIR/bin/$c
    if [ -n "$ROOT" ]; then
      # root: chroot; other users: bubblewrap (an unprivileged mount namespace: munged still
      # sees the caller's real uid). The root's own mounts (/tmp, /home, ...) come along.
      cat > "$w.new" <<EOF
#!/bin/sh
# $c of the Slurm $VERSION cluster $CLUSTER (scripts/services/slurm-next.sh): runs in $ROOT
run='cd "\$0" 2>/dev/null || cd /; exec "\$@"'
if [ "\$(id -u)" = 0 ]; then
  exec /usr/sbin/chroot $ROOT /usr/bin/env SLURM_CONF=$CONF /bin/sh -c "\$run" "\$PWD" $c "\$@"
elif command -v bwrap >/dev/null 2>&1; then
  exec bwrap --bind $ROOT / --proc /proc --dev /dev /usr/bin/env SLURM_CONF=$CONF /bin/sh -c "\$run" "\$PWD" $c "\$@"
fi
echo "$c: the Slurm $VERSION cluster's commands run in the Debian root $ROOT: they need root or bwrap (apt-get install bubblewrap)" >&2
exit 1
EOF
    else
      cat > "$w.new" <<EOF
#!/bin/sh
# $c of the Slurm $VERSION cluster $CLUSTER (scripts/services/slurm-next.sh)
SLURM_CONF=$CONF exec /usr/bin/$c "\$@"
EOF
    fi
    chmod 755 "$w.new"; mv "$w.new" "$w"
  done
}
timed wrappers write_wrappers

# ---------------------------------------------------------------- daemons
inroot mkdir -p "$D/log" "$D/run"
start_dbd(){
  alive "$RUN/slurmdbd.pid" slurmdbd || inroot slurmdbd
  wait_for slurmdbd inroot sacctmgr -n -P list cluster
}
start_ctld(){
  alive "$RUN/slurmctld.pid" slurmctld || inroot slurmctld
  wait_for slurmctld ctld_up
}
timed mariadb start_mariadb
timed slurmdbd start_dbd
timed slurmctld start_ctld

ACCOUNTS="esap cta lofar"
setup_accounts(){
  local s=(inroot sacctmgr)
  wait_for "cluster $CLUSTER in slurmdbd" cluster_registered
  "${s[@]}" -n -P list qos format=name | grep -qx debug || \
    "${s[@]}" -i add qos debug MaxWall=00:10:00 Priority=10 >> "$LOG/sacctmgr.log" 2>&1 || die "sacctmgr add qos failed"
  local a u
  for a in $ACCOUNTS; do
    "${s[@]}" -n -P list account "$a" format=account | grep -qx "$a" || \
      "${s[@]}" -i add account "$a" cluster="$CLUSTER" Description="$a (CI)" Organization=escape >> "$LOG/sacctmgr.log" 2>&1 || die "sacctmgr add account $a failed"
  done
  for u in $USERS; do
    for a in $ACCOUNTS; do
      "${s[@]}" -n -P list assoc cluster="$CLUSTER" account="$a" user="$u" format=user | grep -qx "$u" || \
        "${s[@]}" -i add user "$u" account="$a" cluster="$CLUSTER" >> "$LOG/sacctmgr.log" 2>&1 || die "sacctmgr add user $u to $a failed"
    done
  done
  "${s[@]}" -i modify user esapuser set DefaultAccount=esap >> "$LOG/sacctmgr.log" 2>&1 || true
  local names; names=$(echo $USERS | tr ' ' ,)
  "${s[@]}" -i modify user where name="$names" cluster="$CLUSTER" set QOS=normal,debug DefaultQOS=normal \
    >> "$LOG/sacctmgr.log" 2>&1 || true
  "${s[@]}" -n -P list assoc cluster="$CLUSTER" users="$names" format=qos | grep -vq debug && die "sacctmgr could not give the users QoS normal and debug"
  wait_for "association esap in slurmctld" assoc_known
}
timed accounts setup_accounts

all_idle(){ local st; st=$(inroot sinfo -h -N -o '%N %T' | sort -u); [ "$(echo "$st" | grep -cE ' (idle|mixed|allocated|completing)$')" -eq "$SLURM_CI_NODES" ]; }
start_slurmd(){
  local n
  for n in $(nodes); do
    inroot mkdir -p "$D/spool-$n"
    alive "$RUN/slurmd-$n.pid" slurmd || inroot slurmd -N "$n"
  done
  local end=$(( $(date +%s) + SLURM_CI_TIMEOUT ))
  until all_idle; do
    for n in $(inroot sinfo -h -N -t down,drain,drained,fail -o '%N' 2>/dev/null); do inroot scontrol update nodename="$n" state=resume 2>/dev/null || true; done
    [ "$(date +%s)" -lt "$end" ] || { inroot sinfo -N -l >&2; die "timeout waiting for slurmd nodes"; }
    sleep 0.2
  done
}
timed slurmd start_slurmd

RESTD_URL=http://127.0.0.1:$RESTD_PORT
start_restd(){
  if ! alive "$RUN/slurmrestd.pid" slurmrestd; then
    # not root, not SlurmUser: -u; SLURM_JWT=daemon: auth/jwt towards slurmctld (else 401)
    if [ -n "$ROOT" ]; then
      env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SLURM_CONF="$CONF" SLURM_JWT=daemon \
        setsid chroot "$ROOT" slurmrestd -u slurmrest -a rest_auth/jwt "127.0.0.1:$RESTD_PORT" </dev/null >> "$LOG/slurmrestd.log" 2>&1 &
    else
      SLURM_CONF="$CONF" SLURM_JWT=daemon setsid slurmrestd -u slurmrest -a rest_auth/jwt "127.0.0.1:$RESTD_PORT" </dev/null >> "$LOG/slurmrestd.log" 2>&1 &
    fi
    echo $! > "$RUN/slurmrestd.pid"
  fi
  local tok; tok=$(inroot scontrol token username=root lifespan=3600 | sed 's/^SLURM_JWT=//')
  wait_for slurmrestd curl -sf -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $tok" "$RESTD_URL/openapi/v3"
}
timed slurmrestd start_restd
API_VERSIONS=$(curl -sf -H "X-SLURM-USER-NAME: root" -H "X-SLURM-USER-TOKEN: $(inroot scontrol token username=root lifespan=60 | sed 's/^SLURM_JWT=//')" "$RESTD_URL/openapi/v3" \
  | grep -o 'slurm\\\?/v0\.0\.[0-9]*\\\?/ping' | grep -o '0\.0\.[0-9]*' | sort -uV | paste -sd, || true)

cat > "$CLIENT_DIR/env" <<EOF
# the Slurm $VERSION cluster $CLUSTER: its client commands (wrappers) first on PATH
export PATH=$CLIENT_DIR/bin:\$PATH
export SLURM_CI_VERSION=$SLURM_VER
export SLURM_CI_CLUSTER=$CLUSTER
export SLURM_CI_LOGS=$LOG
export SLURMRESTD_URL=$RESTD_URL
EOF

# ---------------------------------------------------------------- verify with a real job
verify_job(){
  local d; d=$(mktemp -d /tmp/slurm-$TAG-verify.XXXXXX)
  local jid; jid=$(cd "$d" && "$CLIENT_DIR/bin/sbatch" --parsable -J ci-verify -N "$SLURM_CI_NODES" -n "$SLURM_CI_NODES" -o "$d/out.txt" \
      --wrap 'srun bash -c "echo ok \$SLURMD_NODENAME"') || die "verify sbatch failed"
  local end=$(( $(date +%s) + SLURM_CI_TIMEOUT )) st=""
  while :; do
    st=$("$CLIENT_DIR/bin/sacct" -j "$jid" -X -n -P -o State 2>/dev/null | head -1)
    case "$st" in COMPLETED) break;; FAILED*|CANCELLED*|TIMEOUT|NODE_FAIL|OUT_OF_ME*) die "verify job $jid ended $st";; esac
    [ "$(date +%s)" -lt "$end" ] || die "verify job $jid not completed (state '$st')"
    sleep 0.2
  done
  [ "$(grep -c '^ok n' "$d/out.txt")" -eq "$SLURM_CI_NODES" ] || die "verify job output wrong: $(cat "$d/out.txt")"
  VERIFIED_JOB=$jid; rm -rf "$d"
}
timed verify_job verify_job

TOTAL=$(since "$T0"); echo "total ${TOTAL}s" >> "$LOG/timings.txt"
echo "SLURM $VERSION READY: Slurm $SLURM_VER cluster=$CLUSTER (${ROOT:-native}) partitions=debug,short(${SLURM_CI_SHORT_MAXTIME}m) accounts=$(echo $ACCOUNTS | tr ' ' ,) gpus=${GPUNODE:+$GPUNODE:$SLURM_CI_GPUS} nodes=$(nodes | paste -sd,), slurmctld 127.0.0.1:$CTLD_PORT pid $(cat "$RUN/slurmctld.pid"), slurmrestd=$RESTD_URL (API $API_VERSIONS), job $VERIFIED_JOB COMPLETED, ${TOTAL}s (commands: $CLIENT_DIR/bin; env: source $CLIENT_DIR/env; logs: $LOG)"
