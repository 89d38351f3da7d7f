#!/usr/bin/env bash
# The streaming edge against nginx serving the same files, on this machine, in one run.
# A 20 s stream is pushed into a release-built livecast; then wrk (2 threads, 10 s per run)
# requests a hot segment and the live-window playlist from the edge and the same bytes from
# nginx, at 100 and 1,000 connections. Prints requests/s, p50 and p99 and the edge/nginx ratios,
# and the livecast process's RSS under load. Bounded: about 2 minutes, stops everything it starts.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/livecast.sh
source bench/livecast.sh
install_missing wrk nginx
cargo build --release --bin livecast

work=$(mktemp -d)
nginx_port=$(free_port)
cleanup() {
  [ -n "${livecast_pid:-}" ] && kill "$livecast_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_livecast "$work"
create_stream "edge bench"
ffmpeg -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t 20 -c:v libx264 -preset ultrafast -g 60 \
  -pix_fmt yuv420p -c:a aac -f flv "$rtmp/$key"

playlist="$base/stream/$id/360p/index.m3u8"
for _ in $(seq 100); do curl -sf "$playlist" | grep -q '\.m4s' && break; sleep 0.2; done
seq=$(curl -sf "$playlist" | grep '\.m4s' | head -1 | sed 's/\.m4s//')
segment="$base/stream/$id/360p/$seq.m4s"

# nginx serves byte-identical copies of the same objects (its workers run unprivileged).
mkdir -p "$work/www"
chmod 755 "$work" "$work/www"
curl -sf "$segment" -o "$work/www/segment.m4s"
curl -sf "$playlist" -o "$work/www/index.m3u8"
chmod 644 "$work/www"/*
cat >"$work/nginx.conf" <<CONF
worker_processes 2;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  types { video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; }
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$nginx_port/segment.m4s" -o /dev/null && break; sleep 0.1; done
cmp <(curl -sf "http://127.0.0.1:$nginx_port/segment.m4s") <(curl -sf "$segment") \
  || { echo "nginx does not serve the same segment bytes" >&2; exit 1; }

ulimit -n 8192
run() { # label url connections
  wrk -t2 -c"$3" -d10s --latency "$2" >"$work/wrk.txt" 2>&1
  python3 - "$1" "$work/wrk.txt" <<'PY'
import re, sys
text = open(sys.argv[2]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
def pct(p):
    m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", text)
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
sock = re.search(r"Socket errors:.*", text)
print(f"{sys.argv[1]}\t{rps:.0f}\t{pct(50):.2f}\t{pct(99):.2f}\t{errors.group(1) if errors else 0}\t{sock.group(0) if sock else ''}")
PY
}
results="$work/results.tsv"
: >"$results"
peak_rss=0
for connections in 100 1000; do
  for kind in segment playlist; do
    if [ "$kind" = segment ]; then edge_url=$segment; nginx_url="http://127.0.0.1:$nginx_port/segment.m4s"
    else edge_url=$playlist; nginx_url="http://127.0.0.1:$nginx_port/index.m3u8"; fi
    run "edge $kind c=$connections" "$edge_url" "$connections" >>"$results"
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$livecast_pid/status")
    [ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
    run "nginx $kind c=$connections" "$nginx_url" "$connections" >>"$results"
  done
done

echo "edge vs nginx, same files, wrk -t2 -d10s, this machine (both share its 2 cores with wrk)"
python3 - "$results" "$peak_rss" <<'PY'
import sys
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[1])]
by = {r[0]: r for r in rows}
print(f"{'run':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
for r in rows:
    print(f"{r[0]:28} {r[1]:>9} {r[2]:>8} {r[3]:>8} {r[4]:>8} {r[5]}")
for c in ("100", "1000"):
    for kind in ("segment", "playlist"):
        e, n = by[f"edge {kind} c={c}"], by[f"nginx {kind} c={c}"]
        print(f"ratio edge/nginx {kind} c={c}: req/s {float(e[1])/float(n[1]):.2f}, p99 {float(e[3])/float(n[3]):.2f}")
print(f"livecast RSS under load (peak sampled): {int(sys.argv[2])//1024} MiB")
PY
