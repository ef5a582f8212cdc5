#!/usr/bin/env bash
# The README's second command: install what is missing, build, run every test tier.
# Tiers (CTest labels): unit, broker, dispatcher, interop, e2e, chaos, kafka, deploy, docs, lint,
# fuzz. The `kafka` tier needs a real Kafka named by RUNNEL_TEST_KAFKA and skips itself, saying why, without
# one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@"
