#!/bin/sh
# esap step runner: the entrypoint of the runner image that Rosetta starts as a task.
# Rosetta passes no command to a task; the step is named by the task password, which Rosetta
# hands to the container as AUTH_PASS. The token is "<run>-<step>"; the step lives on the
# storage bound at $ESAP_STORAGE (default /storage) as esap/<run>/<step>/step.sh. The runner
# writes the step's stdout/stderr there, touches esap/<run>/status/<step>.hb every heartbeat
# period while the step runs, and last renames esap/<run>/status/<step>.exit-<code> into place,
# so one listing of the status folder tells the backend every step's state.
storage=${ESAP_STORAGE:-/storage}
token=${AUTH_PASS:-}
case "$token" in
  r*-*) ;;
  *) echo "esap-runner: AUTH_PASS does not name an esap step" >&2; exit 2;;
esac
case "$token" in *[!a-z0-9-]*) echo "esap-runner: bad step token" >&2; exit 2;; esac
run=${token%%-*}
step=${token#*-}
dir="$storage/esap/$run/$step"
status="$storage/esap/$run/status"
mkdir -p "$status" "$dir/work"
period=10
[ -s "$dir/heartbeat" ] && period=$(cat "$dir/heartbeat")
finish() {
  code=$1
  kill "$beat" 2>/dev/null
  echo "$code" > "$status/.$step.exit.tmp"
  mv -f "$status/.$step.exit.tmp" "$status/$step.exit-$code"
  exit 0
}
touch "$status/$step.hb"
( while :; do sleep "$period"; touch "$status/$step.hb"; done ) &
beat=$!
if [ ! -f "$dir/step.sh" ]; then
  echo "esap-runner: no step script $dir/step.sh" > "$dir/stderr"
  finish 127
fi
cd "$dir/work" || finish 126
/bin/sh "$dir/step.sh" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
finish $?
