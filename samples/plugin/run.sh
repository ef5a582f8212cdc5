#!/usr/bin/env bash
# Sample 5a, a plugin in C (from the repository root, after the build): samples/plugin/run.sh
# Starts a stack for runnel.yaml with the plugin Runnel's build made (build/samples/plugin/), calls
# both of its functions synchronously with `runnel invoke`, and stops the stack.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
if [[ -z "${RUNNEL_TEXT_TOOLS:-}" && -f "$SAMPLES_ROOT/build/samples/plugin/librunnel_text_tools.so" ]]; then
  export RUNNEL_TEXT_TOOLS="$SAMPLES_ROOT/build/samples/plugin/librunnel_text_tools.so"
fi
start_stack "$SAMPLES_ROOT/samples/plugin/runnel.yaml"
echo
echo '== runnel invoke words --data "the quick brown fox jumps over a lazy dog" =='
runnel invoke words --data "the quick brown fox jumps over a lazy dog"
echo  # the outputs end without a newline
echo
echo '== runnel invoke shout --data "hello from a plugin" =='
runnel invoke shout --data "hello from a plugin"
echo
