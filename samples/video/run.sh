#!/usr/bin/env bash
# Sample 2, video (from the repository root, after the build): samples/video/run.sh [VIDEO...]
# Starts a stack for runnel.yaml, uploads a video (default: samples/data/clip.mp4, 6 s made by
# make_clip), waits for its thumbnails and contact sheet, says where they are, stops the stack.
set -euo pipefail
source "$(dirname "$0")/../stack.sh"
videos=("$@")
[[ ${#videos[@]} -gt 0 ]] || videos=("$SAMPLES_ROOT/samples/data/clip.mp4")
start_stack "$SAMPLES_ROOT/samples/video/runnel.yaml"
echo
echo "== runnel upload ${videos[*]} =="
runnel upload "${videos[@]}" --wait
echo
echo "contact sheets:"
find "$RUNNEL_STATE_DIR/outputs/video.thumbnails" -name contact.jpg | sort | sed 's/^/  /'
