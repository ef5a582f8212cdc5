#!/usr/bin/env bash
# Sample 1, uploaded images (from the repository root, after the build): samples/images/run.sh
# Starts a stack for runnel.yaml, uploads the sample images (and one corrupt file), waits for every
# thumbnail and every metadata record of the pipeline, shows them, and stops the stack.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
data="$SAMPLES_ROOT/samples/data"
start_stack "$SAMPLES_ROOT/samples/images/runnel.yaml"

# The pipeline's second step reports on the live results feed: listen before uploading.
listen_results image.metadata "$RUNNEL_STATE_DIR/metadata.ndjson"
echo
echo "== runnel upload (3 images and corrupt.jpg, which is text with an image's name) =="
status=0
runnel upload "$data/landscape.jpg" "$data/square.webp" "$data/banner.png" "$data/corrupt.jpg" --wait || status=$?
# 0: all done; 1: some failed (corrupt.jpg must); anything else is a real failure.
[[ $status -le 1 ]] || exit "$status"

echo
echo "== image.metadata, fed by every thumbnail (3 images x 3 sizes) =="
wait_outcomes image.metadata 9 60
stop_listeners
jq -r 'select(.status == "ok") | (.output | fromjson) as $m | "\($m.width)x\($m.height) \($m.format)  \($m.bytes) bytes"' \
  "$RUNNEL_STATE_DIR/metadata.ndjson" | sort | uniq -c
echo
echo "thumbnails are under $RUNNEL_STATE_DIR/outputs/image.thumbnail/<event id>/:"
find "$RUNNEL_STATE_DIR/outputs/image.thumbnail" -type f | sort | sed "s|^$RUNNEL_STATE_DIR/|  |" | head -12
