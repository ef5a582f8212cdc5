#!/usr/bin/env bash
# Sample 5b, a function in Python (from the repository root, after the build): samples/exec-python/run.sh
# Starts a stack for runnel.yaml, calls `enrich` with a good reading and a bad one (dead-lettered
# at once: exit status 2 from the script), shows the dead letter, and stops the stack.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
start_stack "$SAMPLES_ROOT/samples/exec-python/runnel.yaml"
echo
echo "== runnel invoke enrich --data '{\"device\":\"d1\",\"celsius\":21.5}' =="
runnel invoke enrich --data '{"device":"d1","celsius":21.5}'
echo
echo "== runnel invoke enrich --data 'not json' (exit status 1: the function failed) =="
status=0
runnel invoke enrich --data 'not json' || status=$?
[[ $status -eq 1 ]] || { echo "expected exit status 1, got $status" >&2; exit 1; }
echo
echo "== runnel dlq enrich =="
runnel dlq enrich
