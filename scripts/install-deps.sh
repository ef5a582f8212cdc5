#!/usr/bin/env bash
# Installs the Debian packages Runnel builds and tests with; does nothing when all are present.
# Works as root or through sudo. README.md says why each dependency is there.
#   scripts/install-deps.sh               everything: build, tests, benchmarks
#   scripts/install-deps.sh --build-only  only what a Release build with -DRUNNEL_BUILD_TESTS=OFF
#                                         needs (deploy/Dockerfile's build stage uses this)
set -euo pipefail

build_only=0
case "${1:-}" in
  "") ;;
  --build-only) build_only=1 ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

build_packages=(
  build-essential cmake ninja-build pkg-config
  librdkafka-dev            # Kafka client and the embedded (mock) broker
  libzmq3-dev cppzmq-dev    # dispatcher <-> worker and results transport
  libopencv-dev             # media functions
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev  # video: decode, scale kept frames to thumbnail size
  libboost-fiber-dev libboost-context-dev  # worker task pool
  libspdlog-dev libfmt-dev  # logging and formatting
  libcli11-dev              # command line
  nlohmann-json3-dev        # JSON for config, results, endpoints.json
  libsimdjson-dev           # hot-path JSON (IoT ingest)
  libyaml-cpp-dev           # runnel.yaml stack config
  libabsl-dev               # time zones for cron schedules (absl::TimeZone reads the system tzdata)
  prometheus-cpp-dev        # the /metrics endpoint (prometheus-cpp core and pull)
  libcurl4-openssl-dev      # workers fetch http(s) input references
  libcivetweb-dev           # the HTTP gateway (gateway/); also the tests' HTTP server
  tzdata                    # the IANA time-zone database itself
)
test_packages=(
  git                       # working with the repository; a build does not need it
  libgtest-dev libgmock-dev libbenchmark-dev  # tests and micro-benchmarks
  curl                      # the gateway's e2e tests call it with curl (and Python's urllib)
  kcat python3 python3-kafka  # third-party Kafka clients for the interop tests
  python3-zmq               # a third-party ZeroMQ client with CURVE (samples/clients, its e2e test)
  iproute2                  # ip netns and veth pairs: the two-hosts e2e test
  libvips-tools             # vipsthumbnail, the baseline of the thumbnail benchmark
  docker-compose python3-yaml  # deploy tier: parse deploy/docker-compose.yml and deploy/k8s/ statically
  jq                        # samples/*/run.sh (and their e2e tests) read runnel's --json output
  clang libclang-rt-14-dev llvm  # fuzz tier: libFuzzer with ASan/UBSan (scripts/fuzz.sh); llvm-symbolizer
  clang-format clang-tidy   # scripts/lint.sh: the format check CI runs, and clang-tidy on demand
)

packages=("${build_packages[@]}")
[ "$build_only" -eq 1 ] || packages+=("${test_packages[@]}")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
