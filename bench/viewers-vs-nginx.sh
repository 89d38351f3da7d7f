#!/usr/bin/env bash
# Simulated HLS viewers on one streaming edge against nginx serving the same live files, in one
# run. A 720p test stream is pushed live into a release-built livecast (all-in-one: ingest,
# live transcode, edge); once its master playlist lists the whole ladder, viewer-load
# (bench/src/bin/viewer_load.rs) runs VIEWERS players (default 2000) for LOAD_SECONDS (default
# 60; not SECONDS, which bash owns) against nginx serving a live mirror of the edge's files
# (playlists, init and segments copied byte for byte every 0.5 s), then the same load against the
# edge, both while the push is live. Prints both tables and the edge/nginx ratios, with the
# edge's CPU and memory net of what livecast spends without viewers (measured during the nginx
# run: the all-in-one process also ingests and transcodes the stream).
# EDGE_ONLY=1 runs the edge part alone (the short form: VIEWERS=200 LOAD_SECONDS=20 EDGE_ONLY=1,
# about a minute). Exits non-zero when a request failed. Bounded: about 2 x LOAD_SECONDS + 1
# minute (under 4 minutes by default); stops everything it starts.
set -euo pipefail
cd "$(dirname "$0")/.."
viewers=${VIEWERS:-2000}
load_seconds=${LOAD_SECONDS:-60}
edge_only=${EDGE_ONLY:-0}

# shellcheck source=bench/livecast.sh
source bench/livecast.sh
install_missing nginx ffmpeg
# One invocation: built apart, the two would unify dependency features differently and rebuild
# the shared crates each time.
# BENCH_PROFILE=debug uses the debug build (make test's short form).
profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release --bin livecast --bin viewer-load
else
  cargo build --bin livecast --bin viewer-load
fi

# One descriptor per viewer connection on each side, plus room for the rest.
need=$((viewers + 1024))
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ]; then limit=65536; else limit=$hard; fi
if [ "$limit" -lt "$need" ]; then
  echo "the open files hard limit is $hard; $viewers viewers need $need (raise it or lower VIEWERS)" >&2
  exit 1
fi
ulimit -n "$limit"
umask 022

started_at=$(date +%s)
work=$(mktemp -d)
chmod 755 "$work"
nginx_port=$(free_port)
cleanup() {
  for pid in "${sampler_pid:-}" "${mirror_pid:-}" "${push_pid:-}" "${livecast_pid:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  for pid in "${mirror_pid:-}" "${push_pid:-}" "${livecast_pid:-}"; do
    [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

start_livecast "$work"
create_stream "viewer load"

# Live for both runs: startup, two loads with their last requests, and a margin; stopped at the end.
push_seconds=$((2 * load_seconds + 90))
[ "$edge_only" = 1 ] && push_seconds=$((load_seconds + 60))
ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi -i testsrc2=size=1280x720:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$push_seconds" -c:v libx264 \
  -preset ultrafast -g 60 -pix_fmt yuv420p -c:a aac -f flv "$rtmp/$key" \
  >"$work/ffmpeg.log" 2>&1 &
push_pid=$!

# Ready when the master lists the ladder and every media playlist has 3 segments for players
# to start behind the live edge.
master_path="/stream/$id/master.m3u8"
ready=""
for _ in $(seq 240); do
  if master=$(curl -sf "$base$master_path") && [ -n "$master" ]; then
    ready=yes
    for uri in $(grep -v '^#' <<<"$master"); do
      count=$(curl -sf "$base/stream/$id/$uri" | grep -c '\.m4s$' || true)
      [ "${count:-0}" -ge 3 ] || ready=""
    done
    [ -n "$ready" ] && break
  fi
  sleep 0.5
done
[ -n "$ready" ] || { echo "the stream never became playable" >&2; tail -20 "$work/livecast.log" >&2; exit 1; }
renditions=$(grep -c "^[^#]" <<<"$master")
echo "stream $id live with $renditions renditions after $(($(date +%s) - started_at)) s"

cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
load() { # label pid url
  local status=0
  echo "+ viewer-load --viewers $viewers --seconds $load_seconds --pid $2 --label $1 $3"
  "./target/$profile/viewer-load" --viewers "$viewers" --seconds "$load_seconds" --pid "$2" \
    --label "$1" --summary "$work/$1.summary" "$3" >"$work/$1.out" 2>"$work/$1.err" || status=$?
  cat "$work/$1.out"
  if [ -s "$work/$1.err" ]; then sed 's/^/  stderr: /' "$work/$1.err" | head -15; fi
  return "$status"
}

if [ "$edge_only" = 1 ]; then
  echo
  echo "## edge: $viewers viewers, $load_seconds s, $base"
  edge_status=0
  load edge "$livecast_pid" "$base$master_path" || edge_status=$?
  kill -0 "$push_pid" 2>/dev/null || echo "the push ended during the run" >&2
  echo "took $(($(date +%s) - started_at)) s after the build"
  exit "$edge_status"
fi

# The live mirror for nginx: the edge's own files, unchanged, in the same paths. Segments and
# init first, then the playlist that lists them, each written whole and renamed into place.
# It runs during both loads so that both see the same background work.
mkdir -p "$work/www"
python3 - "$base" "$id" "$work/www" >"$work/mirror.log" 2>&1 <<'PY' &
import os, re, sys, time, urllib.request
edge, stream, root = sys.argv[1:4]
base = f"{edge}/stream/{stream}"
out = os.path.join(root, "stream", stream)
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
have = set()

def get(path):
    with opener.open(f"{base}/{path}", timeout=5) as response:
        return response.read()

def put(path, data):
    target = os.path.join(out, path)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target + ".part", "wb") as f:
        f.write(data)
    os.replace(target + ".part", target)

def uris(text):
    return [l.strip() for l in text.splitlines() if l.strip() and not l.startswith("#")]

while True:
    began = time.monotonic()
    try:
        master = get("master.m3u8")
        for variant in uris(master.decode()):
            folder = os.path.dirname(variant)
            playlist = get(variant)
            text = playlist.decode()
            names = re.findall(r'#EXT-X-MAP:URI="([^"]+)"', text) + uris(text)
            for name in names:
                path = os.path.join(folder, name)
                if path not in have:
                    put(path, get(path))
                    have.add(path)
            put(variant, playlist)
        put("master.m3u8", master)
    except Exception as e:
        print(f"mirror: {e}", flush=True)
    time.sleep(max(0.0, 0.5 - (time.monotonic() - began)))
PY
mirror_pid=$!

cat >"$work/nginx.conf" <<CONF
worker_processes 2;
worker_rlimit_nofile $limit;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections $((viewers + 1024)); }
http {
  access_log off;
  sendfile on; tcp_nopush on; keepalive_requests 100000;
  types { video/iso.segment m4s; video/mp4 mp4; application/vnd.apple.mpegurl m3u8; }
  server { listen 127.0.0.1:$nginx_port; root $work/www; }
}
CONF
nginx -c "$work/nginx.conf" -p "$work"
nginx_base="http://127.0.0.1:$nginx_port"
for _ in $(seq 60); do curl -sf "$nginx_base$master_path" >/dev/null && break; sleep 0.25; done
first_uri=$(grep -v '^#' <<<"$master" | head -1)
segment=$(curl -sf "$nginx_base/stream/$id/$first_uri" | grep '\.m4s$' | head -1)
segment_path="/stream/$id/$(dirname "$first_uri")/$segment"
cmp <(curl -sf "$nginx_base$segment_path") <(curl -sf "$base$segment_path") \
  || { echo "nginx does not serve the edge's segment bytes" >&2; exit 1; }

# nginx first: meanwhile livecast runs without viewers (ingest, live transcode, the mirror's
# polls), which gives the baseline its CPU time and memory are compared with in the edge run.
echo
echo "## nginx: $viewers viewers, $load_seconds s, $nginx_base (live mirror of the edge)"
idle_rss_start=$(awk '/^VmRSS:/ { print $2 }' "/proc/$livecast_pid/status")
echo "$idle_rss_start" >"$work/idle-rss"
(
  peak=$idle_rss_start
  while sleep 0.25; do
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$livecast_pid/status" 2>/dev/null || echo 0)
    if [ "${rss:-0}" -gt "$peak" ]; then peak=$rss; echo "$peak" >"$work/idle-rss"; fi
  done
) &
sampler_pid=$!
idle_start=$(cpu_ticks "$livecast_pid"); idle_began=$(date +%s.%N)
nginx_status=0
load nginx "$(cat "$work/nginx.pid")" "$nginx_base$master_path" || nginx_status=$?
idle_end=$(cpu_ticks "$livecast_pid"); idle_ended=$(date +%s.%N)
kill "$sampler_pid" 2>/dev/null || true
kill -0 "$push_pid" 2>/dev/null || { echo "the push ended before the edge run" >&2; exit 1; }

echo
echo "## edge: $viewers viewers, $load_seconds s, $base"
edge_status=0
load edge "$livecast_pid" "$base$master_path" || edge_status=$?
live=yes; kill -0 "$push_pid" 2>/dev/null || live=no

echo
echo "## edge / nginx, same stream, same files, same run"
python3 - "$work/edge.summary" "$work/nginx.summary" "$idle_start" "$idle_end" "$idle_began" \
  "$idle_ended" "$idle_rss_start" "$(cat "$work/idle-rss")" <<'PY'
import sys
def read(path):
    return dict(line.split("=", 1) for line in open(path).read().splitlines() if "=" in line)
edge, nginx = read(sys.argv[1]), read(sys.argv[2])
idle_cpu_rate = (int(sys.argv[4]) - int(sys.argv[3])) / 100 / (float(sys.argv[6]) - float(sys.argv[5]))
idle_rss_start, idle_rss = int(sys.argv[7]) / 1024, int(sys.argv[8]) / 1024
def row(name, e, n, fmt):
    ratio = f"{e / n:.2f}" if n > 0 else "-"
    print(f"| {name} | {fmt.format(e)} | {fmt.format(n)} | {ratio} |")
print("| figure | edge | nginx | edge/nginx |")
print("|---|---|---|---|")
for name, key, fmt in [
    ("requests/s (set by the players, not a capacity)", "req_per_s", "{:.0f}"),
    ("media playlist p50 ms", "playlist_p50_ms", "{:.2f}"),
    ("media playlist p99 ms", "playlist_p99_ms", "{:.2f}"),
    ("media segment p50 ms", "segment_p50_ms", "{:.2f}"),
    ("media segment p99 ms", "segment_p99_ms", "{:.2f}"),
    ("server CPU s (edge: the whole livecast process)", "server_cpu_s", "{:.1f}"),
]:
    row(name, float(edge[key]), float(nginx[key]), fmt)
serving = float(edge["server_cpu_s"]) - idle_cpu_rate * float(edge["elapsed_s"])
row(f"server CPU s serving viewers (edge: minus livecast's {idle_cpu_rate:.2f} CPU s/s without viewers)",
    serving, float(nginx["server_cpu_s"]), "{:.1f}")
row("server RSS peak MiB (edge: the whole livecast process)",
    float(edge["server_rss_peak_mib"]), float(nginx["server_rss_peak_mib"]), "{:.0f}")
added = float(edge["server_rss_peak_mib"]) - max(idle_rss, float(edge["server_rss_start_mib"]))
n_added = float(nginx["server_rss_peak_mib"]) - float(nginx["server_rss_start_mib"])
row("server RSS MiB added during the load (edge: over livecast's peak before it; an upper bound)",
    added, n_added, "{:.0f}")
print(f"| errors | {edge['errors']} | {nginx['errors']} | |")
print(f"| load tool CPU s / machine busy % | {float(edge['load_cpu_s']):.1f} / {float(edge['machine_busy_pct']):.0f} "
      f"| {float(nginx['load_cpu_s']):.1f} / {float(nginx['machine_busy_pct']):.0f} | |")
PY
python3 -c 'import sys; print(f"livecast RSS with no viewers, over the nginx run: {int(sys.argv[1]) / 1024:.0f} -> {int(sys.argv[2]) / 1024:.0f} MiB (peak): the transcoder grows on its own")' \
  "$idle_rss_start" "$(cat "$work/idle-rss")"
echo "push live through both runs: $live; nginx figures are its master and 2 workers together"
echo "took $(($(date +%s) - started_at)) s after the build"
[ "$edge_status" -eq 0 ] && [ "$nginx_status" -eq 0 ]
