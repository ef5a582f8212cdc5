#!/usr/bin/env bash
# Sample 3, IoT (from the repository root, after the build): samples/iot/run.sh
# Starts a stack for runnel.yaml, streams readings from simulated devices at a low, a high and a low
# rate again (`runnel simulate`), prints each second what the autoscaler does, then watches the
# workers go back to zero, sums up the results and stops the stack.
#   DEVICES=50 RATES=50,1500,50 PHASE_SECONDS=8 samples/iot/run.sh      (the defaults)
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
start_stack "$SAMPLES_ROOT/samples/iot/runnel.yaml"
listen_results iot.ingest "$RUNNEL_STATE_DIR/results.ndjson"
echo
echo "== runnel simulate: readings at ${RATES:-50,1500,50}/s, ${PHASE_SECONDS:-8} s each =="
runnel simulate --devices "${DEVICES:-50}" --rate "${RATES:-50,1500,50}" --duration "${PHASE_SECONDS:-8}s" \
  | tee "$RUNNEL_STATE_DIR/simulate.txt"
sent=$(sed -n 's/^published \([0-9]*\) reading.*/\1/p' "$RUNNEL_STATE_DIR/simulate.txt")

echo
echo "== readings stopped: the workers drain the backlog, then go back to zero =="
wait_outcomes iot.ingest "$sent" 120
for second in $(seq 60); do
  s=$(function_status iot.ingest)
  echo "$s" | jq -r --arg t "$second" '"\($t) s  lag \(.lag)  workers \(.running) running, \(.desired) desired  (\(.reason))"'
  [[ $(echo "$s" | jq '.running') == 0 ]] && break
  sleep 1
done
stop_listeners

echo
echo "== results =="
function_status iot.ingest | jq -r --arg sent "$sent" \
  '"iot.ingest outcomes (runnel status): \(.succeeded) ok, \(.errors) errors, \(.dead_lettered) dead letters, for \($sent) readings published"'
echo "from the results feed (which drops outcomes a slow reader cannot take, so possibly fewer):"
jq -s '[.[] | select(.status == "ok") | .output | fromjson] |
       "  \(map(.readings.accepted) | add) readings accepted, \(map(.readings.rejected) | add) rejected, " +
       "\(map(.aggregates | length) | add) window aggregates, \(map(.alerts | length) | add) alerts"' -r \
  "$RUNNEL_STATE_DIR/results.ndjson"
jq -r 'select(.status == "ok") | (.output | fromjson) | .alerts[]? |
       "  alert: \(.device) \(.metric) = \(.value)"' "$RUNNEL_STATE_DIR/results.ndjson" | head -5
echo "(all results: $RUNNEL_STATE_DIR/results.ndjson; published $sent readings)"
