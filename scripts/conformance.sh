#!/usr/bin/env bash
# conformance.sh - the CWL v1.2 conformance suite through `esap-cwltool --executor esap` on each
# backend, and through stock cwltool (the baseline), on the same copy of the suite.
# Writes the counts and the date into CONFORMANCE.md (between the "results" markers; rows of
# earlier runs with other tags or sites are kept).
# Usage: scripts/conformance.sh [--tags TAGS] [SITE...]     (default sites: local slurm-local htcondor-local htcondor-transfer)
#        scripts/conformance.sh --report DIR [--tags TAGS] SITE...   (table from an earlier run's logs)
# Env: CWL_CONFORMANCE_DIR (default ../shared/cwl-v1.2-conformance), JOBS (parallel tests, default 4),
#      ESAP_SITES (default examples/sites.yaml), TIMEOUT (per test, default 600 s)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SUITE=${CWL_CONFORMANCE_DIR:-$ROOT/../shared/cwl-v1.2-conformance}
JOBS=${JOBS:-4}
TIMEOUT=${TIMEOUT:-600}
BIN=$ROOT/.venv/bin
export ESAP_SITES=${ESAP_SITES:-$ROOT/examples/sites.yaml}
TAGS=""
REPORT=""
if [ "${1:-}" = "--report" ]; then REPORT=$2; shift 2; fi
if [ "${1:-}" = "--tags" ]; then TAGS=$2; shift 2; fi
SITES=("$@"); [ ${#SITES[@]} -gt 0 ] || SITES=(local slurm-local htcondor-local htcondor-transfer)
[ -f "$SUITE/conformance_tests.yaml" ] || { echo "conformance suite not found at $SUITE (set CWL_CONFORMANCE_DIR)" >&2; exit 2; }
if [ -n "$REPORT" ]; then OUT=$REPORT; else OUT=$(mktemp -d /tmp/esap-conformance.XXXXXX); fi
chmod 755 "$OUT"

run() {  # run NAME TOOL [TOOL ARGS...]
  local name=$1 tool=$2; shift 2
  local tagargs=(); [ -n "$TAGS" ] && tagargs=(--tags "$TAGS")
  mkdir -p "$OUT/$name"
  local start; start=$(date +%s)
  echo "[conformance] $name: cwltest -j$JOBS ${TAGS:+--tags $TAGS} ..." >&2
  (cd "$OUT/$name" && "$BIN/cwltest" --test "$SUITE/conformance_tests.yaml" --tool "$tool" -j "$JOBS" \
      --timeout "$TIMEOUT" --junit-xml "$OUT/$name/junit.xml" "${tagargs[@]}" -- "$@" > "$OUT/$name/log.txt" 2>&1) || true
  echo $(( $(date +%s) - start )) > "$OUT/$name/seconds"
  tail -1 "$OUT/$name/log.txt" >&2
}

if [ -z "$REPORT" ]; then
  run stock "$BIN/cwltool" --no-container
  for site in "${SITES[@]}"; do
    run "$site" "$BIN/esap-cwltool" --executor esap --site "$site" --no-container
  done
fi
CWLTOOL_VERSION=$("$BIN/cwltool" --version | awk '{print $NF}')
export CWLTOOL_VERSION

"$BIN/python" - "$OUT" "$ROOT/CONFORMANCE.md" "${TAGS:-all}" "$SUITE" stock "${SITES[@]}" <<'PY'
import os, sys, time, xml.etree.ElementTree as ET
from pathlib import Path
out, target, tags, suite, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]

def read(name):
    result = {"passed": set(), "failed": set(), "unsupported": set()}
    junit = out / name / "junit.xml"
    if junit.is_file():
        for case in ET.parse(junit).getroot().iter("testcase"):
            test = case.get("file") or case.get("name")
            if case.find("failure") is not None or case.find("error") is not None:
                result["failed"].add(test)
            elif case.find("skipped") is not None:
                result["unsupported"].add(test)
            else:
                result["passed"].add(test)
    return result

results = {n: read(n) for n in names}
stock = results["stock"]
cwltool = os.environ["CWLTOOL_VERSION"]
date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
rows = []
for name in names:
    r = results[name]
    runner = f"stock cwltool {cwltool}" if name == "stock" else f"esap-cwltool --executor esap --site {name}"
    if name == "stock":
        diff = "(baseline)"
    else:
        lost, gained = sorted(stock["passed"] - r["passed"]), sorted(r["passed"] - stock["passed"])
        diff = "same pass set" if not lost and not gained else "; ".join(
            x for x in (f"fails only here: {', '.join(lost)}" if lost else "",
                        f"passes only here: {', '.join(gained)}" if gained else "") if x)
    total = sum(len(v) for v in r.values())
    seconds = (out / name / "seconds").read_text().strip()
    failed = ", ".join(sorted(r["failed"])) or "-"
    rows.append(f"| {runner} | {tags} | {len(r['passed'])}/{total} | {len(r['failed'])} | {len(r['unsupported'])} "
                f"| {diff} | {failed} | {seconds} s | {date} |")
start, end = "<!-- results:start -->", "<!-- results:end -->"
text = target.read_text() if target.is_file() else f"# CWL conformance\n\n{start}\n{end}\n"
head, rest = text.split(start, 1)
body, tail = rest.split(end, 1)
header = ("| runner | tags | passed | failed | unsupported (33) | vs stock | failing tests | time | date |\n"
          "|---|---|---|---|---|---|---|---|---|")
old = [line for line in body.strip().splitlines()[2:] if line.startswith("|")]
mine = {(row.split("|")[1].strip(), row.split("|")[2].strip()) for row in rows}
kept = [line for line in old if (line.split("|")[1].strip(), line.split("|")[2].strip()) not in mine]
target.write_text(head + start + "\n" + header + "\n" + "\n".join(kept + rows) + "\n" + end + tail)
print("\n".join(rows))
PY
echo "[conformance] logs in $OUT" >&2
