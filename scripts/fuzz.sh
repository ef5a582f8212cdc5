#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang with ASan and UBSan) in ./build-fuzz and runs each
# for SECONDS (default 60) on its seed corpus, one after the other. Fails on the first target that
# crashes, leaks, hangs or breaks an assertion, naming the input that did it.
#   scripts/fuzz.sh [SECONDS] [TARGET...]    e.g. scripts/fuzz.sh 300 cron config
# New inputs a run finds go to build-fuzz/corpus/<target>/ (kept across runs, seeding the next);
# the seeds in tests/fuzz/corpus/<target>/ are only read. Reproduce a failure with
#   build-fuzz/tests/fuzz/fuzz_<target> <reproducer>
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
[ $# -eq 0 ] || shift
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac

root="$PWD"
build="$root/build-fuzz"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRUNNEL_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build "$build" -j "$(nproc)"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for dir in tests/fuzz/corpus/*/; do targets+=("$(basename "$dir")"); done
  for binary in "$build"/tests/fuzz/fuzz_*; do
    name="${binary##*/fuzz_}"
    [ -d "tests/fuzz/corpus/$name" ] || { echo "fuzz: fuzz_$name has no seed corpus tests/fuzz/corpus/$name/" >&2; exit 1; }
  done
fi

# Sanitizer reports abort (so libFuzzer keeps the input) and show symbolised stacks.
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}"
# The targets that write files (the exec control file) do so in a scratch directory.
scratch="$build/tmp"
mkdir -p "$scratch"
export TMPDIR="$scratch"

for target in "${targets[@]}"; do
  binary="$build/tests/fuzz/fuzz_$target"
  seeds="$root/tests/fuzz/corpus/$target"
  [ -x "$binary" ] || { echo "fuzz: no target fuzz_$target (tests/fuzz/CMakeLists.txt)" >&2; exit 1; }
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus tests/fuzz/corpus/$target/" >&2; exit 1; }
  work="$build/corpus/$target"
  crashes="$build/crashes/$target"
  mkdir -p "$work" "$crashes"
  log="$build/fuzz-$target.log"
  echo "fuzz: $target for ${seconds}s (log $log)"
  # -timeout: a single input taking over 10 s is a hang.
  if ! "$binary" "$work" "$seeds" -max_total_time="$seconds" -timeout=10 \
      -rss_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    reproducer="$(grep -o "Test unit written to .*" "$log" | tail -n 1 | sed 's/Test unit written to //')"
    echo "fuzz: $target FAILED; reproducer: ${reproducer:-see $log}" >&2
    echo "fuzz: reproduce with $binary ${reproducer:-<input>}" >&2
    exit 1
  fi
  grep -E "^stat::number_of_executed_units" "$log" | sed "s/^stat::number_of_executed_units: */fuzz: $target: executions: /" || true
done
rm -rf "$scratch"
echo "fuzz: ${#targets[@]} target(s) ran ${seconds}s each without a finding"
