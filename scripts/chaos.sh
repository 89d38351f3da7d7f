#!/usr/bin/env bash
# The fault scenarios, long form included: starts the real test servers, runs the worker chaos
# run (a 2-minute live stream played by hls.js in low-latency mode, the worker making its parts
# SIGKILLed every 20 s and started again) and every short fault scenario of `make test` (worker
# crash with and without a live feed, a worker short of CPU, corrupted chunk, broadcaster away, camera stalled, blob
# store and broker stopped, region down, hostile clients, ingest instance killed, uplink
# throttled and cut), printing what each measured, and stops the servers. About 10 minutes
# after the build.
# Each scenario's test prints its row of the fault table as a `fault result: | ... |` line; the
# rows are collected from the output. When every scenario passed, those rows replace
# bench/results/faults.rows (stamped in bench/results/faults.stamp) and bench/write-results.sh
# rewrites bench/RESULTS.md; when one failed, the last good rows stay.
set -euo pipefail
cd "$(dirname "$0")/.."

servers_dir="$(pwd)/.test-servers"
output=$(mktemp)
fault_rows=$(mktemp)
scripts/test-servers.sh start "$servers_dir" || { rm -f "$output" "$fault_rows"; exit 1; }
trap 'scripts/test-servers.sh stop "$servers_dir"; rm -f "$output" "$fault_rows"' EXIT
# shellcheck source=/dev/null
source "$servers_dir/env"
export LIVECAST_TEST_REQUIRE_ENGINES=1
# Stamped before the run: the date it started, the tree it ran from.
stamp=$(bench/write-results.sh --stamp "make chaos")

status=0
cargo build --workspace --bins
cargo nextest run -p livecast-tests --test worker_failover --test worker_overload \
  --run-ignored ignored-only --no-capture 2>&1 | tee -a "$output" || status=1
cargo nextest run --no-fail-fast --success-output immediate \
  -p livecast-encode-worker --test crash_and_bad_media --test standby \
  -p livecast-tests --test backend_outages --test degraded_input --test regions \
  --test hostile_clients --test ingest_failover --test uplink --test worker_failover \
  2>&1 | tee -a "$output" || status=1
sed -n 's/^ *fault result: //p' "$output" | sort >"$fault_rows"
if [ "$status" -ne 0 ]; then
  echo "make chaos: FAILED (bench/results/faults.rows left as it was)"
  exit 1
fi
echo "make chaos: every fault scenario passed"

if [ ! -s "$fault_rows" ]; then
  echo "make chaos: no scenario wrote a fault table row; bench/results/faults.rows left as it was"
  exit 0
fi
bench/write-results.sh --check-rows "$fault_rows" || {
  echo "make chaos: malformed fault table rows (above); bench/results/faults.rows left as it was"
  exit 1
}
cp "$fault_rows" bench/results/faults.rows.part
mv bench/results/faults.rows.part bench/results/faults.rows
echo "$stamp" >bench/results/faults.stamp
echo "make chaos: $(grep -c . bench/results/faults.rows) fault table rows saved to bench/results/faults.rows"
bench/write-results.sh
