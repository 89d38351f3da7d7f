#!/usr/bin/env bash
# Starts the real test servers, runs every test against them, and stops them whatever happens:
#   1. the Rust workspace (unit, conformance, service and end-to-end tests) with cargo nextest;
#   2. a bounded fuzz run of every client-facing parser (scripts/fuzz-smoke.sh);
#   3. the deployment checks (Helm chart rendered, linted and validated; Dockerfile in step);
#   4. the viewer web app in headless Chromium against a running livecast;
#   5. 200 simulated HLS viewers on a live stream for 20 s (bench/viewers-vs-nginx.sh).
# Every part runs even when an earlier one failed; the exit status says whether all passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

servers_dir="$(pwd)/.test-servers"
scripts/test-servers.sh start "$servers_dir" || exit 1
trap 'scripts/test-servers.sh stop "$servers_dir"' EXIT
# shellcheck source=/dev/null
source "$servers_dir/env"
export LIVECAST_TEST_REQUIRE_ENGINES=1

failed=()
# The service binaries first: the multi-process scenarios run them (and would build them inside
# their own time otherwise).
cargo build --workspace --bins || failed+=("build")
cargo nextest run --workspace --no-fail-fast --failure-output final "$@" || failed+=("workspace tests")
scripts/fuzz-smoke.sh || failed+=("fuzz smoke")
scripts/check-deploy.sh || failed+=("deployment checks")
scripts/test-web.sh "$servers_dir/web-artifacts" || failed+=("browser test")
# Short form of the viewer load: 200 HLS players on a live stream for 20 s, zero errors.
VIEWERS=200 LOAD_SECONDS=20 EDGE_ONLY=1 BENCH_PROFILE=debug bench/viewers-vs-nginx.sh \
  || failed+=("viewer load")

if [ "${#failed[@]}" -gt 0 ]; then
  echo "make test: FAILED: ${failed[*]}"
  exit 1
fi
echo "make test: every part passed"
