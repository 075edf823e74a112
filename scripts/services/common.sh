# Helpers shared by scripts/services/*.sh. Source it after setting:
#   SERVICE_TAG      the prefix of this service's messages, e.g. slurm-ci
#   LOG              its log directory (start.log and timings.txt are written there)
#   SERVICE_TIMEOUT  seconds wait_for waits (default 90)
# and define die() yourself (each service tails its own logs).
# shellcheck shell=bash

now()  { date +%s.%N; }
# since START: seconds from START to now, one decimal
since(){ awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }
say()  { echo "[$SERVICE_TAG $(date +%T)] $*" | tee -a "$LOG/start.log" >&2; }
# timed NAME CMD...: run CMD, log its time in timings.txt
timed(){ local name=$1; shift; local s; s=$(now); "$@"; local d; d=$(since "$s")
  echo "$name ${d}s" >> "$LOG/timings.txt"; say "step $name took ${d}s"; }
# wait_for DESCRIPTION CMD...: poll every 0.2 s until CMD succeeds, die after SERVICE_TIMEOUT
wait_for(){ local what=$1; shift; local end=$(( $(date +%s) + ${SERVICE_TIMEOUT:-90} ))
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || die "timeout waiting for $what"; sleep 0.2; done; }
# alive PIDFILE [NAME]: the pid file names a live process (whose command starts with NAME, if given)
alive(){ local p; [ -s "$1" ] || return 1; p=$(cat "$1"); [ -d "/proc/$p" ] || return 1
  if [ -n "${2:-}" ]; then grep -q "^${2:0:15}" "/proc/$p/comm" 2>/dev/null || return 1; fi
  ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; }
# killpid PIDFILE [NAME]: stop that process (up to 5 s) and remove the pid file
killpid(){ local f=$1 n=${2:-}; if alive "$f" "$n"; then local p; p=$(cat "$f"); kill "$p" 2>/dev/null || true
  for _ in $(seq 50); do [ -d "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null || break; sleep 0.1; done
  say "stopped ${n:-$(basename "$f" .pid)} (pid $p)"; fi; rm -f "$f"; }
