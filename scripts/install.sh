#!/usr/bin/env bash
# Builds Runnel (Release, like scripts/build.sh) and installs `runnel`, `runnel-worker`, the media
# module and the plugin SDK under a prefix, so that the README's `runnel ...` commands work as typed:
#   scripts/install.sh                 # into /usr/local (bin/runnel, lib/runnel/librunnel-media.so)
#   scripts/install.sh --prefix ~/.local
#   PREFIX=/opt/runnel scripts/install.sh
# Without installing, every `runnel` in the docs is build/cli/runnel.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix="${PREFIX:-/usr/local}"
case "${1:-}" in
  '') ;;
  --prefix) [[ $# -eq 2 && -n "$2" ]] || { echo "usage: $0 [--prefix DIR]" >&2; exit 2; }; prefix="$2" ;;
  --prefix=?*) [[ $# -eq 1 ]] || { echo "usage: $0 [--prefix DIR]" >&2; exit 2; }; prefix="${1#--prefix=}" ;;
  *) echo "usage: $0 [--prefix DIR]" >&2; exit 2 ;;
esac
# Configured as scripts/build.sh does; built: only what is installed (no tests).
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target runnel runnel-worker runnel_media_module
sudo=()
mkdir -p "$prefix" 2>/dev/null || true
if [[ ! -w "$prefix" ]]; then
  command -v sudo >/dev/null || { echo "install: $prefix is not writable and there is no sudo" >&2; exit 1; }
  sudo=(sudo)
fi
"${sudo[@]}" cmake --install build --prefix "$prefix"
echo "installed: $prefix/bin/runnel and $prefix/bin/runnel-worker"
case ":$PATH:" in
  *":$prefix/bin:"*) ;;
  *) echo "note: $prefix/bin is not on PATH; add it (export PATH=\"$prefix/bin:\$PATH\") or type $prefix/bin/runnel" ;;
esac
