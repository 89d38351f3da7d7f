#!/usr/bin/env bash
# Publish-to-available latency of livecast's live HLS against nginx-rtmp's HLS on the same push,
# on this machine, one after the other (never both at once). Glass-to-glass is not measured here.
# One pre-encoded 720p30 source (30 s, ~3 Mbit/s, GOP exactly 2 s, AAC), cached under /tmp, is
# pushed with `ffmpeg -re -c copy -f flv` through a relay in the harness (bench/rtmp_relay.py),
# once into an all-in-one `livecast` (ingest, live transcode of the whole ladder with x264
# `veryfast`, edge), once into nginx-rtmp (`hls on`, `hls_fragment 2s`: remux only, one rendition).
# Bounded: about 70 s once the source is cached; stops everything it starts; binds 127.0.0.1.
#
# publish-to-available = when a segment is first listed in the playlist a player polls, minus when
# the last video frame of the source chunk it carries had been sent by the broadcaster:
#   - sent: the relay forwards the push byte for byte and parses its RTMP chunk stream, noting
#     when each video message (by RTMP timestamp) has fully passed and which ones are keyframes.
#     Source chunk N runs from keyframe N to the frame before keyframe N+1; its last frame is the
#     last video message sent before keyframe N+1 (decode order, as RTMP carries it).
#   - available: the harness GETs the media playlist over HTTP every 20 ms on average (keep-alive) and notes
#     when a segment URI first appears (the response's arrival): livecast's edge top video
#     rendition (720p: a 720p source gets no 1080p) and its lowest (240p; the worker announces
#     the lowest renditions first, after transcoding the whole ladder), and nginx's s1.m3u8, which
#     nginx serves from the HLS directory. Polling makes both late by 10 ms on average: the gap
#     between polls is drawn from 10-30 ms, since a fixed 20 ms would stay in step with the 2 s
#     chunks and add about the same 0-20 ms to every segment of a run. For nginx, inotify on the
#     playlist being renamed into place also gives the moment without polling.
#   - matching: segment N of a run carries source chunk N. Both servers cut at every keyframe
#     once 2 s have passed, and the GOP is exactly 2 s, so segments and chunks correspond one to
#     one from the first keyframe. Verified per run (a failed check is printed, then exit 1): the
#     segment seqs are consecutive, each EXTINF is its chunk's keyframe-to-keyframe duration
#     (+-0.1 s), the segments listed are as many as the chunks, and where the server says where
#     a segment starts: livecast's EXT-X-PROGRAM-DATE-TIME (the ingest's wall clock for the
#     chunk's start) is within 0.3 s of keyframe N being sent; nginx's fragment N (on disk) starts
#     at keyframe N's media time (ffprobe, first video dts relative to fragment 0's, +-5 ms).
#   Both servers close a chunk only when the next keyframe arrives, so every figure includes one
#   frame interval (33 ms); the "closing keyframe" row starts from that keyframe instead. The last
#   segment of each run is excluded (closed by the end of the push, not by a keyframe).
# Also printed: livecast's mean transcode time per chunk (its /metrics), to compare against.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/livecast.sh
source bench/livecast.sh
install_missing ffmpeg nginx libnginx-mod-rtmp
[ "${NO_BUILD:-}" = 1 ] || nice -n 10 cargo build --release --bin livecast  # NO_BUILD=1: as built

# One source, encoded once and cached: the pushes then cost almost no CPU.
src=/tmp/livecast-bench-720p30-gop2.flv
cached_source "$src" 1280x720 3M 30

work=$(mktemp -d)
nginx_rtmp=$(free_port); nginx_http=$(free_port)
cleanup() {
  [ -n "${livecast_pid:-}" ] && kill "$livecast_pid" 2>/dev/null || true
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The harness: `run` pushes through the relay and watches the playlists; `report` matches.
cat >"$work/latency.py" <<'PY'
import calendar, http.client, json, math, os, random, re, statistics, subprocess, sys, threading, time, urllib.parse
from rtmp_relay import Inotify, Relay  # bench/rtmp_relay.py, shared with ingest-vs-nginx-rtmp.sh
POLL_S = (0.010, 0.030)  # between polls: 20 ms on average, never in step with the 2 s chunks
def entries(text):  # media playlist -> [(uri, EXTINF s, PROGRAM-DATE-TIME as epoch s or None)]
    out, extinf, pdt = [], None, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"): extinf = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            pdt = calendar.timegm(time.strptime(line[25:44], "%Y-%m-%dT%H:%M:%S"))
            pdt += float("0" + line[44:].rstrip("Z").split("+")[0]) if line[44:45] == "." else 0
        elif line and not line.startswith("#"):
            out.append((line, extinf, pdt)); extinf = pdt = None
    return out
class Watcher(threading.Thread):  # notes when each segment URI first appears in a playlist
    def __init__(self, stop):
        super().__init__(daemon=True); self.stop, self.first, self.looks = stop, {}, 0
    def note(self, text, now):
        self.looks += 1
        for uri, extinf, pdt in entries(text):
            if uri not in self.first: self.first[uri] = dict(uri=uri, t=now, extinf=extinf, pdt=pdt)
class Poller(Watcher):  # GET every POLL_S (on a schedule) over one keep-alive connection
    def __init__(self, stop, url):
        super().__init__(stop); u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path, self.errors = u.hostname, u.port, u.path, 0
    def run(self):
        conn, tick = None, time.time()
        while not self.stop.is_set():
            try:
                conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=2)
                conn.request("GET", self.path); resp = conn.getresponse(); body = resp.read()
                if resp.status == 200: self.note(body.decode(), time.time())
            except (OSError, http.client.HTTPException):
                self.errors += 1; conn and conn.close(); conn = None
            tick = max(tick + random.uniform(*POLL_S), time.time())  # late: no catch-up burst
            time.sleep(max(0.0, tick - time.time()))
class FileWatcher(Watcher):  # re-reads a playlist file whenever a file appears in its directory
    def __init__(self, stop, path):
        super().__init__(stop); self.path, self.inotify = path, Inotify()
        self.inotify.watch(os.path.dirname(path))
    def run(self):
        while not self.stop.is_set():
            if self.inotify.wait(0.05) and os.path.exists(self.path):
                now = time.time(); self.note(open(self.path).read(), now)
def run(port, path, src, out, *targets):  # targets: label=URL (polled) or label=file:PATH (inotify)
    relay, stop = Relay(int(port)), threading.Event()
    watchers = {label: FileWatcher(stop, where[5:]) if where.startswith("file:") else Poller(stop, where)
                for label, where in (t.split("=", 1) for t in targets)}
    for w in watchers.values(): w.start()
    t0 = time.time()
    push = subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
                             "-f", "flv", f"rtmp://127.0.0.1:{relay.port}/{path}"])
    try: push.wait(timeout=60)  # bounded: the source is 30 s
    except subprocess.TimeoutExpired: push.kill(); push.wait()
    ended = time.time()
    while time.time() < ended + 8 and any(len(w.first) < len(relay.keyframes) for w in watchers.values()):
        time.sleep(0.05)  # the last segments land after the push (at most 8 s more)
    stop.set(); [w.join(1) for w in watchers.values()]
    json.dump(dict(sent=relay.sent, keyframes=relay.keyframes, code=push.returncode, wall_s=ended - t0,
                   segments={l: sorted(w.first.values(), key=lambda s: s["t"]) for l, w in watchers.items()},
                   looks={l: w.looks for l, w in watchers.items()},
                   errors={l: getattr(w, "errors", 0) for l, w in watchers.items()}), open(out, "w"))
def chunks_of(result):  # source chunks from the relay: [keyframe N, keyframe N+1)
    keys, out = sorted(set(result["keyframes"])), []
    for i, k in enumerate(keys):
        end = keys[i + 1] if i + 1 < len(keys) else math.inf
        msgs = [(ts, t) for ts, t in result["sent"] if k <= ts < end]
        out.append(dict(start=k, end=end, key_sent=max(t for ts, t in msgs if ts == k),
                        last_sent=max(t for _, t in msgs)))
    return out
def first_dts(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
                          "-show_entries", "packet=dts_time", "-of", "csv=p=0", path],
                         capture_output=True, text=True).stdout.split()
    return float(out[0].strip(",")) if out else None
def analyse(result, label, hls_dir=None):
    chunks, segs = chunks_of(result), result["segments"][label]
    seq = lambda s: int(re.search(r"(\d+)\.(m4s|ts)$", s["uri"])[1])
    segs.sort(key=seq); problems = []
    if [seq(s) for s in segs] != list(range(seq(segs[0]), seq(segs[0]) + len(segs))):
        problems.append(f"seqs not consecutive: {[seq(s) for s in segs]}")
    if len(segs) != len(chunks): problems.append(f"{len(segs)} segments listed for {len(chunks)} chunks")
    base = first_dts(os.path.join(hls_dir, segs[0]["uri"])) if hls_dir else None
    lat, key_lat = [], []
    for n, (s, c) in enumerate(zip(segs, chunks)):
        if c["end"] != math.inf and abs(s["extinf"] - (c["end"] - c["start"]) / 1000) > 0.1:
            problems.append(f"segment {seq(s)}: EXTINF {s['extinf']} for a {(c['end'] - c['start']) / 1000} s chunk")
        if s["pdt"] is not None and abs(s["pdt"] - c["key_sent"]) > 0.3:
            problems.append(f"segment {seq(s)}: PROGRAM-DATE-TIME {s['pdt'] - c['key_sent']:+.3f} s from keyframe {n} sent")
        if base is not None:
            d = first_dts(os.path.join(hls_dir, s["uri"]))
            if d is None or abs((d - base) * 1000 - (c["start"] - chunks[0]["start"])) > 5:
                problems.append(f"fragment {s['uri']} starts at {d} s, chunk {n} at {c['start']} ms")
        if n + 1 < min(len(segs), len(chunks)):  # not the last: closed by the end of the push
            lat.append((s["t"] - c["last_sent"]) * 1000)
            key_lat.append((s["t"] - chunks[n + 1]["key_sent"]) * 1000)
    lat.sort()
    return dict(p50=statistics.median(lat), p95=lat[math.ceil(0.95 * len(lat)) - 1],
                key=statistics.median(key_lat), n=len(lat), segs=len(segs), chunks=len(chunks),
                extinf=statistics.median(s["extinf"] for s in segs[:-1]), problems=problems,
                checked="PROGRAM-DATE-TIME" if segs[0]["pdt"] is not None else "fragment dts" if hls_dir else "")
def report(lc_file, ng_file, hls_dir, ladder, transcode):
    lc, ng = json.load(open(lc_file)), json.load(open(ng_file))
    top, low, nginx, exact = analyse(lc, "720p"), analyse(lc, "240p"), analyse(ng, "hls", hls_dir), analyse(ng, "file")
    print("publish-to-available: last frame of a 2 s source chunk sent by the broadcaster -> its segment")
    print("listed in the playlist (polled over HTTP every 20 ms on average), excluding each run's last segment")
    print()
    print("| 720p30 3 Mbit/s push, GOP 2 s, this machine | livecast 720p | livecast 240p | nginx-rtmp HLS "
          "| livecast 720p / nginx | livecast 240p / nginx |")
    print("|---|---|---|---|---|---|")
    for name, key in [("publish-to-available, median ms", "p50"), ("publish-to-available, p95 ms", "p95"),
                      ("closing keyframe sent -> listed, median ms", "key")]:
        print(f"| {name} | {top[key]:.0f} | {low[key]:.0f} | {nginx[key]:.0f} "
              f"| {top[key] / nginx[key]:.1f} | {low[key] / nginx[key]:.1f} |")
    print()
    print(f"livecast: the whole ladder ({ladder}) transcoded live with x264 veryfast, then listed by its "
          "edge; nginx-rtmp: remux only into MPEG-TS, one rendition, no transcoding.")
    print(f"nginx-rtmp without polling (inotify on s1.m3u8 renamed into place): median {exact['p50']:.0f} ms, "
          f"p95 {exact['p95']:.0f} ms")
    if transcode: print(f"livecast transcode of one chunk into the ladder (its /metrics): mean {transcode}")
    for side, r, res, label in (("livecast 720p", top, lc, "720p"), ("livecast 240p", low, lc, "240p"),
                                ("nginx-rtmp", nginx, ng, "hls"), ("nginx-rtmp inotify", exact, ng, "file")):
        check = f"; checked {r['checked']}" if r["checked"] else ""
        print(f"{side}: {r['n']} segments measured, {r['segs']} listed for {r['chunks']} source chunks, "
              f"median EXTINF {r['extinf']:.3f} s{check}: {'; '.join(r['problems']) or 'matching OK'}; "
              f"{res['looks'][label]} playlist reads, {res['errors'][label]} errors; push {res['wall_s']:.1f} s, "
              f"ffmpeg exit code {res['code']}")
    if any(r["problems"] for r in (top, low, nginx, exact)):
        print("WARNING: segment-to-chunk matching failed for at least one column (see above)"); sys.exit(1)
if sys.argv[1] == "run": run(*sys.argv[2:])
else: report(*sys.argv[2:])
PY

# --- livecast: all-in-one (ingest, encode worker, edge), embedded backends, in-process bus. ---
start_livecast "$work"
create_stream "latency bench"
PYTHONPATH=bench python3 "$work/latency.py" run "$rtmp_port" "live/$key" "$src" "$work/livecast.json" \
  "720p=$base/stream/$id/720p/index.m3u8" "240p=$base/stream/$id/240p/index.m3u8"
transcode=$(curl -sf -m 5 "$base/metrics" | awk '/^livecast_worker_transcode_seconds_sum/ {s=$2}
  /^livecast_worker_transcode_seconds_count/ {n=$2} END {if (n > 0) printf "%.2f s over %d chunks", s/n, n}' || true)
ladder=$(curl -sf -m 5 "$base/stream/$id/master.m3u8" | sed -n 's#/index\.m3u8$##p' | paste -sd, - || true)
stop_livecast "$work"

# --- nginx-rtmp: HLS into a directory its http server serves. Its workers run unprivileged. ---
start_nginx_rtmp "$work" "$nginx_rtmp" "$nginx_http"
PYTHONPATH=bench python3 "$work/latency.py" run "$nginx_rtmp" live/s1 "$src" "$work/nginx.json" \
  "hls=http://127.0.0.1:$nginx_http/s1.m3u8" "file=file:$work/hls/s1.m3u8"

echo
echo "latency: livecast (all-in-one) vs nginx-rtmp HLS, same push, one after the other"
PYTHONPATH=bench python3 "$work/latency.py" report "$work/livecast.json" "$work/nginx.json" "$work/hls" "$ladder" "$transcode"
