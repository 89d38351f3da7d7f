#!/usr/bin/env bash
# The fault scenarios, long form included: starts the real test servers, runs the worker chaos
# run (a 2-minute live stream, one of two worker processes SIGKILLed every 20 s) and every
# short fault scenario of `make test` (worker crash, corrupted chunk, broadcaster away, camera
# stalled, blob store and broker stopped, region down, hostile clients), printing what each
# measured, and stops the servers. About 6 minutes after the build.
set -uo pipefail
cd "$(dirname "$0")/.."

servers_dir="$(pwd)/.test-servers"
scripts/test-servers.sh start "$servers_dir" || exit 1
trap 'scripts/test-servers.sh stop "$servers_dir"' EXIT
# shellcheck source=/dev/null
source "$servers_dir/env"
export LIVECAST_TEST_REQUIRE_ENGINES=1

status=0
cargo nextest run -p livecast-encode-worker --test chaos --run-ignored ignored-only \
  --no-capture || status=1
cargo nextest run --no-fail-fast --success-output immediate \
  -p livecast-encode-worker --test crash_and_bad_media \
  -p livecast-tests --test backend_outages --test degraded_input --test regions \
  --test hostile_clients || status=1
if [ "$status" -ne 0 ]; then
  echo "make chaos: FAILED"
  exit 1
fi
echo "make chaos: every fault scenario passed"
