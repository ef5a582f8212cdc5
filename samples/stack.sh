# Sourced by each sample's run.sh: runs a stack for the sample's runnel.yaml on the embedded broker
# in the background, in the sample's own state dir, and stops it when the script exits (also on
# failure or Ctrl-C), so a sample never leaves anything running.
#
#   start_stack CONFIG     starts `runnel up --config CONFIG`, returns once it serves
#   runnel ARGS...         the runnel binary, pointed at that stack's state dir
#   listen_results F FILE  F's outcomes from the live results feed into FILE, in the background
#   wait_outcomes F N [S]  waits until F has N final outcomes (runnel status --json)
#
# RUNNEL (default: build/cli/runnel of this checkout) picks the binary; RUNNEL_STATE_DIR (default:
# .runnel/sample-<folder>) the state dir, where outputs and worker logs stay after the run.

SAMPLES_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUNNEL_BIN="${RUNNEL:-$SAMPLES_ROOT/build/cli/runnel}"
if [[ ! -x "$RUNNEL_BIN" ]]; then
  echo "no runnel binary at $RUNNEL_BIN: build first (scripts/build.sh) or set RUNNEL" >&2
  exit 1
fi
export RUNNEL_STATE_DIR="${RUNNEL_STATE_DIR:-$SAMPLES_ROOT/.runnel/sample-$(basename "$(cd "$(dirname "$0")" && pwd)")}"
STACK_PID=""
LISTENERS=()

runnel() { "$RUNNEL_BIN" "$@"; }

# Follows FUNCTION's outcomes on the live results feed into FILE (JSON lines) in the background,
# until stop_listeners (or the script's end). Start it before publishing.
listen_results() {
  "$RUNNEL_BIN" results --function "$1" --json >"$2" 2>"$2.log" &
  LISTENERS+=($!)
  # Live once the feed has greeted it (it says so on stderr).
  for _ in $(seq 100); do
    grep -q "following the results feed" "$2.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "runnel results did not connect within 10 s: $(cat "$2.log")" >&2
  exit 1
}

stop_listeners() {
  local pid
  for pid in "${LISTENERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${LISTENERS[@]}"; do wait "$pid" 2>/dev/null || true; done
  LISTENERS=()
}

stop_stack() {
  stop_listeners
  [[ -n "$STACK_PID" ]] || return 0
  kill -TERM "$STACK_PID" 2>/dev/null || true
  # `runnel up` drains within its own bounds (calls in flight: the slowest timeout + 5 s, quick when
  # idle, as here); SIGKILL the group after 40 s.
  for _ in $(seq 400); do
    kill -0 "$STACK_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$STACK_PID" 2>/dev/null || true
  wait "$STACK_PID" 2>/dev/null || true
  STACK_PID=""
}

start_stack() {
  local config="$1"
  mkdir -p "$RUNNEL_STATE_DIR"
  rm -f "$RUNNEL_STATE_DIR/endpoints.json"
  trap stop_stack EXIT
  trap 'exit 130' INT TERM
  # Its own process group (set -m), so stop_stack can end it and its workers together.
  set -m
  "$RUNNEL_BIN" up --config "$config" >"$RUNNEL_STATE_DIR/stack.log" 2>&1 &
  STACK_PID=$!
  set +m
  # Ready when `runnel up` prints its summary, after every dispatcher and the scheduler started.
  for _ in $(seq 300); do
    if grep -q "^runnel stack up" "$RUNNEL_STATE_DIR/stack.log" 2>/dev/null; then
      echo "stack up (pid $STACK_PID, state dir $RUNNEL_STATE_DIR, log $RUNNEL_STATE_DIR/stack.log)"
      return 0
    fi
    if ! kill -0 "$STACK_PID" 2>/dev/null; then
      echo "the stack did not start:" >&2
      cat "$RUNNEL_STATE_DIR/stack.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "the stack was not up within 30 s; its log: $RUNNEL_STATE_DIR/stack.log" >&2
  exit 1
}

# The stack's status of one function as JSON (`runnel status --json`), or {} when it does not answer.
function_status() {
  runnel status --json 2>/dev/null | jq -c --arg f "$1" '.functions[] | select(.name == $f)' || echo '{}'
}

# Waits until FUNCTION has N final outcomes (ok, error or dead letter) since the stack started, or
# SECONDS (default 60) pass; returns 1 on timeout.
wait_outcomes() {
  local function="$1" want="$2" seconds="${3:-60}" got=0
  for _ in $(seq $((seconds * 10))); do
    got=$(function_status "$function" | jq '(.succeeded // 0) + (.errors // 0) + (.dead_lettered // 0)')
    [[ "${got:-0}" -ge "$want" ]] && return 0
    sleep 0.1
  done
  echo "$function: $got of $want outcomes after $seconds s" >&2
  return 1
}
