#!/usr/bin/env bash
# The whole test suite on a fresh machine: virtual environment, real services, lint, types, tests.
#
#   bash scripts/test.sh [PYTEST ARGS...]
#
# Starting SLURM, HTCondor, containers, the OIDC provider, the WebDAV storage, the ESAP gateway, Rosetta and PostgreSQL needs root: as root they
# start directly; otherwise through `sudo` when it exists (it may ask for your password once);
# without either the tests that need a service skip and say why (CI=true makes them fail).
# Without PYTEST ARGS the SLURM tests (tests/slurm, a CWL and a Snakemake case) of the Slurm
# 24.11 and 26.05 clusters run as two pytest processes (each against its own cluster) beside
# three that share out the rest on the host's cluster (tests/groups.py); then the tests that
# stop a shared daemon run alone. The time of every part is printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
started=$(date +%s.%N)
say() { echo "[test.sh $(date +%T) +$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%d", b-a}')s] $*"; }
PARTS=()  # "name|seconds|result" for the summary
part_start=0
begin() { part_start=$(date +%s.%N); }
end() { PARTS+=("$1|$(awk -v a="$part_start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')|$2"); }
summary() {
  echo
  echo "== time of each part (total $(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}') s)"
  local p
  for p in "${PARTS[@]}"; do IFS='|' read -r name secs result <<< "$p"; printf '  %-32s %8s s  %s\n' "$name" "$secs" "$result"; done
}
trap summary EXIT

begin
if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv || { say "cannot create the virtual environment .venv (on Debian, as root: apt-get install python3-venv)"; exit 1; }
fi
say "installing esap-executors with the cwl, snakemake and test extras"
.venv/bin/pip install -q -e ".[cwl,snakemake,test]"
end "venv + pip" ok

# how to run a service script as root: directly, through sudo, or not at all
AS_ROOT=()
if [ "$(id -u)" = 0 ]; then
  can_start=1
elif command -v sudo >/dev/null 2>&1; then
  can_start=1; AS_ROOT=(sudo --preserve-env=CI)
  say "not root: services start through sudo (it may ask for your password)"
else
  can_start=0
  say "not root and no sudo: services are not started and the tests needing them skip (CI=true: fail)."
  say "  to run them: as root, 'bash scripts/services/<slurm|htcondor|containers|oidc>.sh start' (or install sudo), then run this again"
fi
start_service() { # start_service NAME [ARGS...]: one part of the summary; CI=true stops at a failure
  local name=$1 label; shift; label="$name${*:+ $*}"
  begin; say "starting $label"
  local log="/tmp/esap-service-$name${1:+-$1}.$(id -u).log"
  if "${AS_ROOT[@]}" bash "scripts/services/$name.sh" start "$@" > "$log" 2>&1; then
    grep READY "$log" | tail -n 3; end "start $label" ok
  else
    tail -n 60 "$log"; end "start $label" FAILED
    if [ "${CI:-}" = true ]; then say "FAILED to start $label"; exit 1; fi
    say "could not start $label: its tests will skip"
  fi
}
SLURM_NEXT="24.11 26.05"
if [ "$can_start" = 1 ]; then
  start_service slurm host
  for v in $SLURM_NEXT; do start_service slurm "$v"; done
  # postgres before esap: the store of ESAP's UWS worker
  for service in htcondor containers oidc webdav postgres esap rosetta chromium; do start_service "$service"; done
fi

begin; say "ruff"; .venv/bin/ruff check src tests benchmarks; end ruff ok
begin; say "mypy"; .venv/bin/mypy src; end mypy ok

code=0
set +e
if [ $# -gt 0 ]; then
  begin; say "pytest $*"
  .venv/bin/python -m pytest -ra --durations=25 "$@"; code=$?
  end "pytest $*" "exit $code"
else
  # the newer clusters' SLURM tests in parallel with everything else (the host's cluster):
  # tests/slurm and the CWL, Snakemake, JDL and auth cases parametrized by Slurm version
  VERSION_TESTS=(tests/slurm tests/cwl/test_mpi.py
                 tests/snakemake/test_workflows.py::test_fifty_jobs_with_dependencies_and_wildcards
                 tests/jdl/test_reference_example.py::test_runs_where_a_site_publishes_pbs
                 tests/auth/test_policy.py::test_user_outside_the_groups_is_denied_before_submission
                 tests/auth/test_policy.py::test_billed_account_reaches_slurm
                 tests/auth/test_security.py::test_token_stays_out_of_ps_logs_store_and_jobs
                 tests/auth/test_centre_credentials.py::test_slurmrestd_site_runs_a_job_with_a_jwt_file
                 tests/auth/test_centre_credentials.py::test_slurmrestd_refuses_a_forged_jwt
                 tests/faults/test_slurmdbd_down.py)  # last: it stops 26.05's slurmdbd (deselected on 24.11)
  rm -f .pytest_cache/esap-faults.json  # the fault ledger of this run only (RELIABILITY.md)
  pids=(); logs=()
  for v in $SLURM_NEXT; do
    log="/tmp/esap-pytest-slurm-$v.$(id -u).log"; logs+=("$v|$log"); rm -f "$log.rc"
    ( s=$(date +%s.%N)
      ESAP_TEST_SLURM=$v .venv/bin/python -m pytest -ra --basetemp="/tmp/esap-pytest-slurm-$v.$(id -u)" \
        "${VERSION_TESTS[@]}" > "$log" 2>&1
      rc=$?; echo "$rc $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" > "$log.rc" ) &
    pids+=($!)
  done
  # the host cluster's tests in parts that run at the same time, each owning the services it
  # loads hard (tests/groups.py); then the tests that stop a shared daemon, alone
  PARTS_TOGETHER=(htcondor slurm platforms)
  say "pytest (Slurm $SLURM_NEXT: ${VERSION_TESTS[*]}; host cluster: parts ${PARTS_TOGETHER[*]}; all in parallel, logs /tmp/esap-pytest-*.log)"
  for part in "${PARTS_TOGETHER[@]}"; do
    log="/tmp/esap-pytest-$part.$(id -u).log"; logs+=("part $part|$log"); rm -f "$log.rc"
    ( s=$(date +%s.%N)
      ESAP_TEST_SLURM=host ESAP_TEST_GROUP=$part .venv/bin/python -m pytest -ra --durations=15 \
        --basetemp="/tmp/esap-pytest-$part.$(id -u)" --junitxml="${log%.log}.xml" > "$log" 2>&1
      rc=$?; echo "$rc $(awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')" > "$log.rc" ) &
    pids+=($!)
  done
  progress() { # each process's pytest progress, once a minute while any runs
    local entry line=""
    for entry in "${logs[@]}"; do
      [ -e "${entry#*|}.rc" ] && continue
      line="$line ${entry%%|*}:$(grep -o '\[ *[0-9]*%\]' "${entry#*|}" 2>/dev/null | tail -n 1 | tr -d '[] ')"
    done
    [ -z "$line" ] || say "running:$line"
  }
  tick=0
  while [ -n "$(jobs -rp)" ]; do [ $((tick++ % 12)) != 0 ] || progress; sleep 5; done
  for p in "${pids[@]}"; do wait "$p"; done
  for entry in "${logs[@]}"; do
    name=${entry%%|*}; log=${entry#*|}
    read -r rc secs < "$log.rc"
    case $name in
      part*) title="pytest ${name#part }, host cluster"
             # failures, durations and the skip report (-ra) of the part
             echo; say "$title (exit $rc):"; sed -n '/^=* \(FAILURES\|ERRORS\|slowest\) /,$p' "$log" | grep . || tail -n 40 "$log";;
      *) title="pytest SLURM tests, Slurm $name"
         echo; say "$title (exit $rc):"; tail -n 15 "$log";;
    esac
    PARTS+=("$title|$secs|exit $rc (parallel)")
    [ "$rc" = 0 ] || code=1
  done
  begin; say "pytest: the tests that stop or restart a shared daemon, alone"
  ESAP_TEST_SLURM=host ESAP_TEST_GROUP=alone .venv/bin/python -m pytest -ra --durations=5 \
    --basetemp="/tmp/esap-pytest-alone.$(id -u)"; rc=$?
  end "pytest alone, host cluster" "exit $rc"
  [ "$rc" = 0 ] || code=1
  # the fault and bad-input results of this run -> RELIABILITY.md (tests/faults, tests/corpus)
  .venv/bin/python scripts/reliability_table.py || code=1
fi
set -e
say "pytest exit code $code"
exit $code
