#!/usr/bin/env bash
# The tests of function @NAME@: ./test.sh
#  1. handler.sh run as Runnel runs it (the exec protocol: the sample input on stdin, RUNNEL_* in
#     the environment): its output must be expected-output.json; empty input must exit 2.
#  2. With a `runnel` binary ($RUNNEL, else `runnel` on PATH; skipped without one): `runnel config
#     check runnel.yaml`, then the function for real: a stack of its own (`runnel up` on the
#     embedded broker, in a scratch state dir) answers `runnel invoke @NAME@ --file sample-input.txt`.
# Exit status 0 when every check passed.
set -euo pipefail
RUNNEL_BIN=${RUNNEL:-$(command -v runnel || true)}
if [[ -n "$RUNNEL_BIN" ]]; then # made absolute before the cd (RUNNEL may be a relative path)
  RUNNEL_BIN=$(command -v "$RUNNEL_BIN") || {
    echo "FAIL RUNNEL=$RUNNEL is not a program" >&2
    exit 1
  }
  RUNNEL_BIN=$(realpath "$RUNNEL_BIN")
fi
cd "$(dirname "$0")"
failures=0
pass() { echo "ok   $1"; }
fail() {
  echo "FAIL $1" >&2
  failures=$((failures + 1))
}

if got=$(RUNNEL_ID=test-event-1 RUNNEL_FUNCTION=@NAME@ ./handler.sh <sample-input.txt) &&
  [[ "$got" == "$(cat expected-output.json)" ]]; then
  pass "handler.sh answers sample-input.txt with expected-output.json"
else
  fail "handler.sh answered '${got:-}', expected '$(cat expected-output.json)'"
fi
status=0
./handler.sh </dev/null 2>/dev/null || status=$?
if [[ $status -eq 2 ]]; then pass "empty input exits 2 (bad input)"; else fail "empty input exited $status, expected 2"; fi

if [[ -z "$RUNNEL_BIN" ]]; then
  echo "skip the runnel checks: no runnel binary (set RUNNEL=/path/to/runnel or put runnel on PATH)"
  [[ $failures -eq 0 ]]
  exit
fi

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
    [[ "$got" == "$(cat expected-output.json)" ]]; then
    pass "runnel invoke @NAME@ --file sample-input.txt through a stack"
  else
    fail "runnel invoke @NAME@ answered '${got:-}'; the stack's log: $(cat "$state/stack.log")"
  fi
else
  fail "the stack did not start; its log: $(cat "$state/stack.log")"
fi
[[ $failures -eq 0 ]]
