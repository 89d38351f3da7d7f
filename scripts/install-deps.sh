#!/usr/bin/env bash
# Installs what building and running Livecast needs on Debian, skipping what is already there.
#   scripts/install-deps.sh          build and run dependencies
#   scripts/install-deps.sh test     plus the real test servers (S3-compatible, Kafka-protocol)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential pkg-config clang libclang-dev cmake protobuf-compiler zlib1g-dev
  libcurl4-openssl-dev curl ca-certificates python3
  ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libswresample-dev
  libavfilter-dev libavdevice-dev
)
# The tests also play streams as viewers do: hls.js in Debian's Chromium.
[ "${1:-}" = "test" ] && packages+=(chromium)
# Node.js builds the viewer app; the machine's own install is used when there is one.
command -v node >/dev/null || packages+=(nodejs npm)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "cargo is required (install Rust with rustup)" >&2; exit 1; }

if [ "${1:-}" = "test" ]; then
  # The real engines the conformance suites run against, built once per machine.
  if ! command -v cargo-nextest >/dev/null; then
    cargo install --locked cargo-nextest
  fi
  if ! command -v s3s-fs >/dev/null; then
    echo "building the S3-compatible test server (s3s-fs), once per machine"
    cargo install --locked s3s-fs --version 0.14.1 --features binary
  fi
  if ! command -v tansu >/dev/null; then
    echo "building the Kafka-protocol test broker (tansu), once per machine"
    cargo install --locked tansu --version 0.6.0 --features dynostore,libsql
  fi
  if ! command -v cargo-fuzz >/dev/null; then
    cargo install --locked cargo-fuzz --version 0.13.2
  fi
  # hls.js and playwright-core for the player tests, as pinned by each package-lock.json (npm ci
  # unless node_modules already matches it).
  for dir in tests/web bench/glass; do
    if [ ! -f "$dir/node_modules/.package-lock.json" ] ||
       [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
      (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    fi
  done
fi
