#!/usr/bin/env bash
# Every long-form benchmark of `make bench`, one after the other (never two at once). Each runs
# through bench/record.sh, which shows its output and saves its figures to
# bench/results/SECTION.md (left as they were when it fails); then bench/write-results.sh
# rewrites bench/RESULTS.md. Exits 1 at the end, naming them, if any benchmark failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

cargo build --release -p livecast-bench || exit 1
failed=()
record() { bench/record.sh "$@" || failed+=("$1"); }
record catalogue -- ./target/release/catalogue-bench
(ulimit -n 8192 && bench/record.sh notification -- ./target/release/notification-bench) ||
  failed+=(notification)
record transcode -- ./target/release/transcode-bench
record edge -- bench/edge-vs-nginx.sh
record ingest -- bench/ingest-vs-nginx-rtmp.sh
record viewers -- bench/viewers-vs-nginx.sh
record latency -- bench/latency-vs-nginx-rtmp.sh
record glass-to-glass -- bench/glass-to-glass.sh
(ulimit -n 8192 && bench/record.sh ll-reload -- ./target/release/ll-reload-bench) ||
  failed+=(ll-reload)
bench/write-results.sh || failed+=(write-results)
if [ ${#failed[@]} -gt 0 ]; then
  echo "make bench: FAILED: ${failed[*]} (their last good figures kept)"
  exit 1
fi
echo "make bench: every benchmark recorded in bench/RESULTS.md"
