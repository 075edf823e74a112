#!/usr/bin/env bash
# The whole test suite on a fresh machine: virtual environment, real services, lint, types, tests.
# Starting SLURM, HTCondor, containers, the OIDC provider and the ESAP gateway needs root; without root the tests
# that need them skip with the reason (under CI=true they fail instead).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
started=$(date +%s)
say() { echo "[test.sh $(date +%T) +$(( $(date +%s) - started ))s] $*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "$PY" -m venv .venv
fi
say "installing esap-executors with the cwl, snakemake and test extras"
.venv/bin/pip install -q -e ".[cwl,snakemake,test]"

if [ "$(id -u)" = 0 ]; then
  for service in slurm htcondor containers oidc esap; do
    say "starting $service"
    if ! bash "scripts/services/$service.sh" start > "/tmp/esap-service-$service.log" 2>&1; then
      tail -n 60 "/tmp/esap-service-$service.log"
      if [ "${CI:-}" = true ]; then say "FAILED to start $service"; exit 1; fi
      say "could not start $service: its tests will skip"
    else
      tail -n 1 "/tmp/esap-service-$service.log"
    fi
  done
else
  say "not root: services are not started; tests needing them skip (CI=true makes them fail)"
fi

say "ruff"
.venv/bin/ruff check src tests benchmarks
say "mypy"
.venv/bin/mypy src
say "pytest"
set +e
.venv/bin/python -m pytest -ra --durations=25 "$@"
code=$?
set -e
say "pytest exit code $code"
exit $code
