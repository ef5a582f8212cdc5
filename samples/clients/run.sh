#!/usr/bin/env bash
# Sample 7, a third-party CURVE client (from the repository root, after the build): samples/clients/run.sh
# Starts a stack, subscribes to its results feed with pyzmq and the stack's local keys
# (curve_subscriber.py), publishes two events and prints their outcomes as that client read them.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
start_stack "$SAMPLES_ROOT/samples/clients/runnel.yaml"
out="$RUNNEL_STATE_DIR/subscriber.out"
/usr/bin/python3 "$SAMPLES_ROOT/samples/clients/curve_subscriber.py" "$RUNNEL_STATE_DIR" 2 >"$out" &
subscriber=$!
for _ in $(seq 100); do
  grep -q subscribed "$out" 2>/dev/null && break
  sleep 0.1
done
echo '== runnel publish echo (two events) =='
runnel publish echo --data "hello over curve"
runnel publish echo --data "and again"
wait "$subscriber"
echo '== what curve_subscriber.py read from the results feed =='
cat "$out"
