#!/usr/bin/env bash
# Sample 4, a nightly batch (from the repository root, after the build): samples/batch/run.sh
# Fills a folder with 12 photos and one broken file, starts a stack for runnel.yaml with that folder
# (RUNNEL_BATCH_DIR), shows the schedule, runs tonight's job now (`runnel job run --wait`) and
# prints its completion report, then stops the stack.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
photos="$RUNNEL_STATE_DIR/photos"
rm -rf "$photos" && mkdir -p "$photos"
for i in $(seq -w 1 12); do cp "$SAMPLES_ROOT/samples/data/landscape.jpg" "$photos/photo-$i.jpg"; done
cp "$SAMPLES_ROOT/samples/data/corrupt.jpg" "$photos/broken.jpg"
export RUNNEL_BATCH_DIR="$photos"
start_stack "$SAMPLES_ROOT/samples/batch/runnel.yaml"
echo
echo "== runnel job list =="
runnel job list
echo
echo "== runnel job run nightly-thumbnails --wait (broken.jpg is meant to fail) =="
status=0
runnel job run nightly-thumbnails --wait || status=$?
# 0: every item done; 1: some item failed (broken.jpg must); 2 or more: a real failure.
[[ $status -le 1 ]] || exit "$status"
echo
echo "job records: $RUNNEL_STATE_DIR/jobs/; thumbnails: $RUNNEL_STATE_DIR/outputs/image.thumbnail/"
