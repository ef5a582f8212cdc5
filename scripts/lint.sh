#!/usr/bin/env bash
# Lint the C and C++ sources the repository tracks.
#   scripts/lint.sh           check that .clang-format is applied (what CI runs); exit 1 naming
#                             each file that is not, with `--fix` as the remedy
#   scripts/lint.sh --fix     apply .clang-format in place
#   scripts/lint.sh --tidy    clang-tidy (.clang-tidy's checks) over build/compile_commands.json,
#                             one job per core; any finding fails it. A full run took 29 minutes
#                             (28m42s) on the 2-core development machine, so CI does not run it
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-check}
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.c')

case "$mode" in
  check)
    bad=()
    for f in "${files[@]}"; do
      clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
    done
    if [ "${#bad[@]}" -gt 0 ]; then
      printf 'not formatted: %s\n' "${bad[@]}" >&2
      echo "lint: ${#bad[@]} file(s) do not follow .clang-format; run scripts/lint.sh --fix" >&2
      exit 1
    fi
    echo "lint: ${#files[@]} files follow .clang-format"
    ;;
  --fix)
    clang-format -i "${files[@]}"
    ;;
  --tidy)
    [ -f build/compile_commands.json ] || { echo "lint: run scripts/build.sh first (no build/compile_commands.json)" >&2; exit 1; }
    # Our own translation units only (the compile database also lists generated and test-fuzz ones).
    mapfile -t units < <(git ls-files '*.cpp' | grep -v '^tests/fuzz/')
    run-clang-tidy -quiet -j "$(nproc)" -p build "${units[@]/#/$PWD/}"
    ;;
  *)
    echo "usage: scripts/lint.sh [--fix | --tidy]" >&2
    exit 2
    ;;
esac
