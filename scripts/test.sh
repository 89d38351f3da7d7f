#!/usr/bin/env bash
# Starts the real test servers, runs every test against them, and stops them whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

servers_dir="$(pwd)/.test-servers"
scripts/test-servers.sh start "$servers_dir"
trap 'scripts/test-servers.sh stop "$servers_dir"' EXIT
# shellcheck source=/dev/null
source "$servers_dir/env"
export LIVECAST_TEST_REQUIRE_ENGINES=1

cargo nextest run --workspace --no-fail-fast --failure-output final "$@"
