#!/usr/bin/env bash
# Function @NAME@ through Runnel (ctest runs it after the build, with HANDLER_LIBRARY set to the
# library built): `runnel config check runnel.yaml` (which loads the plugin and checks its entry
# point), then a stack of its own (`runnel up` on the embedded broker, in a scratch state dir)
# answers `runnel invoke @NAME@ --file sample-input.txt` with expected-output.txt.
# The runnel binary: $RUNNEL, else the installed Runnel's that CMake found, else PATH's; exit 77
# (ctest: skipped) without one.
set -euo pipefail
RUNNEL_BIN=${RUNNEL:-}
if [[ -z "$RUNNEL_BIN" && -n "${RUNNEL_FOUND:-}" && "$RUNNEL_FOUND" != *NOTFOUND ]]; then RUNNEL_BIN=$RUNNEL_FOUND; fi
RUNNEL_BIN=${RUNNEL_BIN:-$(command -v runnel || true)}
if [[ -z "$RUNNEL_BIN" ]]; then
  echo "skip: no runnel binary (set RUNNEL=/path/to/runnel or put runnel on PATH)"
  exit 77
fi
if [[ -n "$RUNNEL_BIN" ]]; then # made absolute before the cd (RUNNEL may be a relative path)
  RUNNEL_BIN=$(command -v "$RUNNEL_BIN") || {
    echo "FAIL RUNNEL=$RUNNEL is not a program" >&2
    exit 1
  }
  RUNNEL_BIN=$(realpath "$RUNNEL_BIN")
fi
cd "$(dirname "$0")"
export HANDLER_LIBRARY=${HANDLER_LIBRARY:-$PWD/build/lib@NAME@.so}
echo "runnel: $RUNNEL_BIN, plugin: $HANDLER_LIBRARY"
failures=0
pass() { echo "ok   $1"; }
fail() {
  echo "FAIL $1" >&2
  failures=$((failures + 1))
}

if out=$("$RUNNEL_BIN" config check runnel.yaml 2>&1) && grep -qF -- "  @NAME@ " <<<"$out"; then
  pass "runnel config check runnel.yaml"
else
  fail "runnel config check runnel.yaml: $out"
fi

# A stack of its own, in its own process group (setsid), stopped and removed when the script ends.
state=$(mktemp -d)
setsid "$RUNNEL_BIN" up --config runnel.yaml --state-dir "$state" >"$state/stack.log" 2>&1 &
stack=$!
stop_stack() {
  kill -TERM "$stack" 2>/dev/null || true # drains, then exits
  timeout 30 tail --pid="$stack" -f /dev/null || true
  kill -KILL -- "-$stack" 2>/dev/null || true # anything left of its group
  wait "$stack" 2>/dev/null || true
  rm -rf "$state"
}
trap stop_stack EXIT
# Up once it prints its summary; tail ends with the stack, so a stack that fails ends the wait.
if grep -q -m1 '^runnel stack up' < <(timeout 60 tail -n +1 -f --pid="$stack" "$state/stack.log"); then
  if got=$("$RUNNEL_BIN" invoke @NAME@ --file sample-input.txt --timeout 30s --state-dir "$state") &&
    [[ "$got" == "$(cat expected-output.txt)" ]]; then
    pass "runnel invoke @NAME@ --file sample-input.txt through a stack"
  else
    fail "runnel invoke @NAME@ answered '${got:-}'; the stack's log: $(cat "$state/stack.log")"
  fi
else
  fail "the stack did not start; its log: $(cat "$state/stack.log")"
fi
[[ $failures -eq 0 ]]
