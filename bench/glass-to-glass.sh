#!/usr/bin/env bash
# Glass-to-glass latency as a viewer sees it in a browser: hls.js in headless Chromium playing
# livecast's Low-Latency HLS (hls.js's low-latency mode), then livecast's HLS with hls.js's
# defaults, then nginx-rtmp's HLS, on the same kind of push, on this machine, one after the other
# (never two at once). Bounded: about 5 minutes once built and the source is cached (the first
# time, about 60 s more to encode it); stops everything it starts; binds 127.0.0.1 only.
#
# The broadcaster: one 1280x720 30 fps H.264 (x264 veryfast, ~3 Mbit/s, GOP exactly 2 s, no
# B-frames) + AAC source, encoded once and cached under /tmp, carries its own frame number N in
# the picture: the top 64 rows are 20 black/white blocks of 64x64 px (two guard blocks, N in 16
# bits, a parity block and its complement), drawn with ffmpeg's drawbox and its timeline `enable`
# expressions on n. Blocks this big stay readable at 240p (21 px) after x264; the harness checks
# that frames scaled to 240p and squeezed to 150 kbit/s read back as their own numbers. It is
# pushed with `ffmpeg -re -c copy -f flv` through the relay in the harness (bench/rtmp_relay.py),
# which notes when each video message has fully passed to the server: with no B-frames, video
# message 1+N is frame N (message 0 is the AVC header), checked against its RTMP timestamp (N/30 s)
# and the keyframes (every 60th). So sent(N) is that frame's own send time, not start + N/30.
# The broadcaster's capture and encode are not included (pre-encoded): both servers get the
# same bytes at the same pace, so "glass" here is the moment the frame leaves the broadcaster.
#
# The viewer (bench/glass/: viewer.mjs drives Debian's /usr/bin/chromium with playwright-core,
# as tests/web does; index.html): hls.js 1.7.4 (the viewer app's version) with its default live
# settings and lowLatencyMode off, muted autoplay, the playlist given as a viewer would open it
# (livecast: the master playlist of its whole ladder, hls.js's ABR picks the level; nginx-rtmp:
# its one media playlist). The page is served from the playlist's own origin by the driver (no
# CORS, nothing added to either server). From its first `playing` event, every 100 ms for
# BENCH_GLASS_SECONDS s (10), the picture on screen is drawn onto a canvas and its number read
# back (a block must be clearly black or white, guards and parity must hold, else the sample is
# counted as unreadable): latency = Date.now() at the draw - sent(N). Same clock on both sides
# (this machine's wall clock, in chromium and in the relay). A sample lands anywhere within the
# 33 ms its frame is on screen, so figures are about 17 ms above first-shown-to-sent, on both.
# A stall shows as growing latency (the last picture stays on screen), and is counted too:
# `waiting` events after the first frame, time until `playing` again, hls.js BUFFER_STALLED_ERROR.
# Also printed: time to first frame (hls.loadSource -> first `playing`), which levels hls.js
# played (share of samples by decoded height), and hls.js's own latency estimate at the end.
#
# Joins: hls.js starts 3 target durations (6 s) behind the end of the newest segment it sees,
# without knowing how long ago that segment was listed, and then plays at speed 1: a viewer's
# latency holds for its whole session but depends, by up to a segment (2 s), on when in the
# keyframe cycle it joined; and a server that lists a segment d after its closing keyframe puts
# a viewer joining within d a whole segment further back (so on average it costs d, as expected).
# So each run has BENCH_GLASS_VIEWS (4) viewers, one after the other, each a fresh browser, from
# BENCH_GLASS_JOIN s (12) after the first frame was sent (a viewer arriving mid-stream, several
# segments listed), viewer k opening the playlist (k + 1/2) * 2/VIEWS s after a keyframe was sent
# (its browser is started 3 s ahead and waits): the joins sample the cycle evenly, at the same
# phases on both servers. Figures are over all their samples (4 x 10 s = 40 s per server); the
# mean estimates the expectation over join phases, each viewer's median is printed too. With fixed
# phases, a listing delay d shows in the mean in steps of 2/VIEWS s (which joins fall within d):
# with 4 viewers, livecast's ~0.8 s transcode shows as 0.5 or 1 s; more viewers, finer steps.
#
# Run 1: the release all-in-one `livecast` (ingest, the whole ladder transcoded live with x264
# veryfast, edge), played by hls.js with `lowLatencyMode: true`: it reads the parts, preload hints
# and PART-HOLD-BACK of the playlists, so each viewer plays BENCH_GLASS_LL_SECONDS (60) s, twice,
# and its stalls are counted (the issue's target: under 3 s median, no stall). Run 2: the same
# livecast, a new push, hls.js with its defaults (the standard-HLS figure). Run 3: nginx with the
# rtmp module (`hls on; hls_fragment 2s;`, as bench/latency-vs-nginx-rtmp.sh: remux only, one
# rendition), its HLS directory served by nginx.
#   BENCH_NO_BUILD=1          use ./target/release/livecast as built (no cargo build)
#   BENCH_GLASS_VIEWS=4       viewers per standard-HLS run, one after the other
#   BENCH_GLASS_SECONDS=10    each such viewer's measurement window, from its first frame
#   BENCH_GLASS_LL_VIEWS=2    viewers of the low-latency run
#   BENCH_GLASS_LL_SECONDS=60 each low-latency viewer's window
#   BENCH_GLASS_JOIN=12       seconds after the first frame when the first viewer may join
#   BENCH_GLASS_ARTIFACTS=DIR keep each run's JSON (samples, send times) and screenshots there
set -euo pipefail
cd "$(dirname "$0")/.."

views=${BENCH_GLASS_VIEWS:-4}
seconds=${BENCH_GLASS_SECONDS:-10}
ll_views=${BENCH_GLASS_LL_VIEWS:-2}
ll_seconds=${BENCH_GLASS_LL_SECONDS:-60}
join=${BENCH_GLASS_JOIN:-12}
started=$(date +%s)

# shellcheck source=bench/livecast.sh
source bench/livecast.sh
install_missing ffmpeg nginx libnginx-mod-rtmp chromium python3 curl
command -v npm >/dev/null || install_missing nodejs npm  # node may come with its own npm
# hls.js and playwright-core, as pinned in bench/glass/package-lock.json (npm ci unless current).
if [ ! -f bench/glass/node_modules/.package-lock.json ] ||
   [ bench/glass/package-lock.json -nt bench/glass/node_modules/.package-lock.json ]; then
  (cd bench/glass && npm ci --no-audit --no-fund --loglevel=error)
fi
[ "${BENCH_NO_BUILD:-}" = 1 ] || nice -n 10 cargo build --release --bin livecast

# The coded source, long enough for every viewer of the longer run (browser start, first frame,
# window, wait for its join point: about 6 s besides the window) and 20 s to spare.
standard_run=$(( views * (${seconds%.*} + 6) )); ll_run=$(( ll_views * (${ll_seconds%.*} + 6) ))
src_seconds=$(( ${join%.*} + (standard_run > ll_run ? standard_run : ll_run) + 20 ))
src=/tmp/livecast-bench-glass-720p30-${src_seconds}s.flv
python3 bench/glass/harness.py source "$src" "$src_seconds"

work=$(mktemp -d)
nginx_rtmp=$(free_port); nginx_http=$(free_port)
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  if [ -n "${harness_pid:-}" ]; then kill "$harness_pid" 2>/dev/null; wait "$harness_pid" 2>/dev/null || true; fi
  if [ -n "${livecast_pid:-}" ]; then kill "$livecast_pid" 2>/dev/null || true; fi
  if [ -f "$work/nginx.pid" ]; then kill "$(cat "$work/nginx.pid")" 2>/dev/null || true; fi
  if [ -n "${BENCH_GLASS_ARTIFACTS:-}" ]; then
    mkdir -p "$BENCH_GLASS_ARTIFACTS"; cp -r "$work"/*.json "$work"/shots-* "$BENCH_GLASS_ARTIFACTS"/ 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One run: push through the relay, the viewers join and measure, push stopped. In the background
# so that the EXIT trap can stop it (it stops its ffmpeg and its browser on SIGTERM).
measure() {  # RTMP_PORT APP/KEY PLAYLIST_URL NAME [ll]
  local mode=${5:-standard} n=$views s=$seconds
  [ "$mode" = ll ] && { n=$ll_views; s=$ll_seconds; }
  mkdir -p "$work/shots-$4"
  python3 bench/glass/harness.py run "$1" "$2" "$src" "$3" "$join" "$n" "$s" "$work/$4.json" "$work/shots-$4" "$mode" &
  harness_pid=$!
  wait "$harness_pid" || true
  harness_pid=
}

# --- runs 1 and 2: livecast all-in-one (ingest, encode worker, edge), embedded backends. ---
start_livecast "$work"
create_stream "glass-to-glass bench, low latency"
echo "livecast: pushing; $ll_views hls.js low-latency viewers from ${join} s on, ${ll_seconds} s each..." >&2
measure "$rtmp_port" "live/$key" "$base/stream/$id/master.m3u8" livecast-ll ll
create_stream "glass-to-glass bench"
echo "livecast: pushing; $views viewers from ${join} s on, ${seconds} s each..." >&2
measure "$rtmp_port" "live/$key" "$base/stream/$id/master.m3u8" livecast
stop_livecast "$work"

# --- run 3: nginx-rtmp HLS into a directory its http server serves. Its workers run unprivileged. ---
start_nginx_rtmp "$work" "$nginx_rtmp" "$nginx_http"
echo "nginx-rtmp: pushing; $views viewers from ${join} s on, ${seconds} s each..." >&2
measure "$nginx_rtmp" live/s1 "http://127.0.0.1:$nginx_http/s1.m3u8" nginx
kill "$(cat "$work/nginx.pid")"; rm -f "$work/nginx.pid"

echo
echo "glass-to-glass: livecast (all-in-one, whole ladder; LL-HLS and HLS) vs nginx-rtmp HLS, hls.js in headless chromium"
status=0
python3 bench/glass/harness.py report "$work/livecast-ll.json" "$work/livecast.json" "$work/nginx.json" || status=$?
echo "(took $(( $(date +%s) - started )) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
exit "$status"
