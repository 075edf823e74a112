#!/bin/sh
# esap step runner: the entrypoint of the runner image that Rosetta starts as a task.
# Rosetta passes no command to a task; the step is named by the task password, which Rosetta
# hands to the container as AUTH_PASS: "<run>-<step>.<secret>" (the secret makes it unguessable;
# the runner needs only the token "<run>-<step>" before the dot, and hides the password from the
# step's environment). On the storage bound at
# $ESAP_STORAGE (default /storage) the step is esap/<run>/steps/<step>.sh; the runner runs it in
# esap/<run>/<step>/work with its stdout/stderr in esap/<run>/<step>/, touches
# esap/<run>/status/<step>.hb every heartbeat period (the script's "# esap-heartbeat: N" line,
# default 10 s) while it runs, and last renames esap/<run>/status/<step>.exit-<code> into place:
# one listing of the status folder tells the backend every step's state. A "# esap-walltime: N"
# line kills the step after N seconds (status/<step>.timeout marks it); esap/<run>/<step>/usage
# gets "wall_s user_s system_s" of the step (its reaped processes, as the shell's `times`).
# A step submitted with others may instead be a section of a bundle esap/<run>/steps/*.steps
# (one upload for many steps): "#esap-step <step> <nonce>" ... "#esap-end <nonce>".
# Before its exit code the runner writes esap/<run>/<step>/result: the exit code, usage, stdout
# and stderr in one file (one download for the backend): lines "esap-result 1", "exit N",
# "usage ...", "stdout <bytes>", the bytes, "stderr <bytes>", the bytes.
storage=${ESAP_STORAGE:-/storage}
token=${AUTH_PASS:-}
token=${token%%.*}
unset AUTH_PASS
case "$token" in
  r*-*) ;;
  *) echo "esap-runner: AUTH_PASS does not name an esap step" >&2; exit 2;;
esac
case "$token" in *[!a-z0-9-]*) echo "esap-runner: bad step token" >&2; exit 2;; esac
run=${token%%-*}
step=${token#*-}
script="$storage/esap/$run/steps/$step.sh"
dir="$storage/esap/$run/$step"
status="$storage/esap/$run/status"
mkdir -p "$status" "$dir/work"
if [ ! -f "$script" ]; then
  for bundle in "$storage/esap/$run/steps/"*.steps; do
    [ -f "$bundle" ] || continue
    nonce=$(sed -n "s/^#esap-step $step \([0-9a-f][0-9a-f]*\)\$/\1/p" "$bundle" | head -n 1)
    [ -n "$nonce" ] || continue
    sed -n "/^#esap-step $step $nonce\$/,/^#esap-end $nonce\$/p" "$bundle" | sed '1d;$d' > "$dir/step.sh"
    script="$dir/step.sh"
    break
  done
fi
period=$(sed -n 's/^# esap-heartbeat: *\([0-9][0-9]*\)$/\1/p' "$script" 2>/dev/null | head -n 1)
[ -n "$period" ] || period=10
walltime=$(sed -n 's/^# esap-walltime: *\([0-9][0-9]*\)$/\1/p' "$script" 2>/dev/null | head -n 1)
finish() {
  kill "$beat" 2>/dev/null
  echo "$1" > "$status/.$step.exit.tmp"
  mv -f "$status/.$step.exit.tmp" "$status/$step.exit-$1"
  exit 0
}
touch "$status/$step.hb"
( while :; do sleep "$period"; touch "$status/$step.hb"; done ) &
beat=$!
if [ ! -f "$script" ]; then
  echo "esap-runner: no step script $script" > "$dir/stderr"
  finish 127
fi
cd "$dir/work" || finish 126
started=$(date +%s)
if [ -n "$walltime" ]; then
  timeout -s KILL "$walltime" /bin/sh "$script" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
else
  /bin/sh "$script" > "$dir/stdout" 2> "$dir/stderr" < /dev/null
fi
code=$?
ended=$(date +%s)
if [ -n "$walltime" ] && [ "$code" -ge 128 ] && [ $((ended - started)) -ge "$walltime" ]; then
  : > "$status/$step.timeout"
fi
times > "$dir/.times"  # in this shell: in a pipeline it would count a subshell's children
echo "$((ended - started)) $(sed -n 2p "$dir/.times")" > "$dir/usage"
rm -f "$dir/.times"
{
  echo "esap-result 1"; echo "exit $code"; echo "usage $(cat "$dir/usage")"
  echo "stdout $(wc -c < "$dir/stdout")"; cat "$dir/stdout"
  echo "stderr $(wc -c < "$dir/stderr")"; cat "$dir/stderr"
} > "$dir/.result.tmp" && mv -f "$dir/.result.tmp" "$dir/result"
finish "$code"
