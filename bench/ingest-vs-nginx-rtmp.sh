#!/usr/bin/env bash
# RTMP ingest against nginx-rtmp receiving the same pushes, on this machine, in one run.
# Three concurrent 1080p30 6 Mbit/s pushes (`ffmpeg -re -c copy` of one pre-encoded 20 s FLV,
# GOP 2 s) go to the standalone `ingest` (with `catalogue` beside it for the stream keys), then,
# once it has stopped, to nginx-rtmp writing HLS (`hls_fragment 2s`); never both at once.
# Bounded: under a minute once the source is cached; stops everything it starts.
#
# CPU: utime+stime of the server (ingest alone; nginx master + worker) from /proc/PID/stat,
# before and after the pushes, over the push wall time and 3 streams -> % of one core per stream.
# RSS: the server's VmRSS (nginx: master + worker) sampled every 0.2 s, peak.
# Latency, last frame of a chunk sent -> chunk durable, measured the same way on both sides:
#   - sent: each push goes through a relay in the harness that forwards bytes at once and parses
#     the RTMP chunk stream, noting when each video message (by its timestamp) has fully passed.
#     (ffmpeg 5.1's -re sends a frame ~45 ms before start + dts, so the push start is not used.)
#   - durable: inotify wakes the harness when a file or directory appears; it then looks for new
#     complete chunks. Livecast writes a temp file, fsyncs it and renames it to
#     source/{id}/{epoch}/{seq}.flv: the final name appearing is the moment (its directory fsync
#     comes just after and is not counted). nginx-rtmp writes a .ts fragment in place and lists it
#     in the playlist (renamed into place) once closed: that entry is the moment (no fsync).
#   - which frame: ffprobe of the chunk, its last video dts (decode order), relative to the first
#     video dts of the stream's first chunk (MPEG-TS clocks start at an offset), matched to the
#     RTMP timestamp relative to the first video message.
#   Both servers close a chunk only when the next keyframe arrives, so this includes one frame
#   interval; the "closing keyframe" row starts from that keyframe instead. The last chunk of each
#   stream is excluded (closed by the end of the push, not by a keyframe).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=bench/livecast.sh
source bench/livecast.sh
install_missing ffmpeg nginx libnginx-mod-rtmp
[ "${NO_BUILD:-}" = 1 ] || cargo build --release --bin ingest --bin catalogue  # NO_BUILD=1: as built

# One source, encoded once and cached: the pushes then cost almost no CPU.
src=/tmp/livecast-bench-1080p.flv
cached_source "$src" 1920x1080 6M 20

work=$(mktemp -d)
cat_http=$(free_port); cat_grpc=$(free_port); ing_http=$(free_port); rtmp_port=$(free_port)
nginx_port=$(free_port); token=bench-token
cleanup() {
  for pid in ${ingest_pid:-} ${catalogue_pid:-}; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The harness: `run` relays the pushes, watches the chunks and samples the server; `report` probes.
# The relay and the inotify wrapper are shared with latency-vs-nginx-rtmp.sh: bench/rtmp_relay.py.
cat >"$work/bench.py" <<'PY'
import json, math, os, re, statistics, subprocess, sys, time
from rtmp_relay import Inotify, Relay  # bench/rtmp_relay.py, shared with latency-vs-nginx-rtmp.sh
def proc_stat(pid): return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
def ticks(pids): return sum(int(proc_stat(p)[11]) + int(proc_stat(p)[12]) for p in pids)  # utime+stime
def rss_kb(pids): return sum(int(re.search(r"VmRSS:\s+(\d+)", open(f"/proc/{p}/status").read())[1]) for p in pids)
def new_chunks(kind, root, labels, seen):
    found = []
    for label in labels:
        if kind == "livecast":  # {root}/source/{id}/{epoch}/{seq}.flv, final names only
            for d, _, files in os.walk(os.path.join(root, "source", label)):
                found += [(label, int(f[:-4]), os.path.join(d, f)) for f in files if f.endswith(".flv")]
        elif os.path.exists(playlist := os.path.join(root, label + ".m3u8")):  # closed fragments
            found += [(label, int(l[:-3].rsplit("-", 1)[1]), os.path.join(root, l))
                      for l in open(playlist).read().split() if l.endswith(".ts")]
    return [c for c in found if c[2] not in seen]
def run(kind, root, server, port, src, out, pushes):  # pushes: label=rtmp path (live/KEY)
    pids = [server] + [int(p) for p in os.listdir("/proc") if p.isdigit() and  # + nginx worker
                       os.path.exists(f"/proc/{p}/stat") and proc_stat(p)[1] == str(server)]
    labels, relays = [p.split("=")[0] for p in pushes], [Relay(int(port)) for _ in pushes]
    ticks0, t0 = ticks(pids), time.time()
    procs = [subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", src, "-c", "copy",
                               "-f", "flv", f"rtmp://127.0.0.1:{r.port}/{p.split('=')[1]}"]) for p, r in zip(pushes, relays)]
    inotify = Inotify()
    seen, chunks, peak, next_rss, ended = set(), [], 0, 0, None
    while ended is None or time.time() < ended + 1.5:  # after the pushes, the last chunks land
        for d in [root] + [d for d, _, _ in os.walk(os.path.join(root, "source"))]:  # idempotent
            inotify.watch(d)
        now = time.time()  # woken by a file or directory appearing: look what is new
        for label, seq, path in new_chunks(kind, root, labels, seen):
            seen.add(path); chunks.append(dict(label=label, seq=seq, path=path, t=now))
        if now >= next_rss: peak, next_rss = max(peak, rss_kb(pids)), now + 0.2
        if ended is None and (all(p.poll() is not None for p in procs) or now > t0 + 60):  # bounded
            ended, ticks1 = now, ticks(pids); [p.kill() for p in procs if p.poll() is None]
        inotify.wait(0.05)
    json.dump(dict(cpu_s=(ticks1 - ticks0) / os.sysconf("SC_CLK_TCK"), wall_s=ended - t0, rss_kb=peak,
                   chunks=chunks, sent={l: r.sent for l, r in zip(labels, relays)},
                   codes=[p.returncode for p in procs]), open(out, "w"))
def video_dts(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "packet=dts_time", "-of", "json", path], capture_output=True, text=True).stdout
    return [float(p["dts_time"]) for p in json.loads(out)["packets"] if "dts_time" in p]
def analyse(result):
    lat, key_lat, lengths = [], [], []
    for label, sent in result["sent"].items():
        at = dict(map(tuple, sent)); base = min(at)  # RTMP timestamp (ms) -> when it had passed
        chunks = sorted((c for c in result["chunks"] if c["label"] == label), key=lambda c: c["seq"])
        dts = [video_dts(c["path"]) for c in chunks]
        sent_at = lambda d: at[base + round((d - min(dts[0])) * 1000)]  # KeyError: no such frame
        for c, d, following in zip(chunks, dts, dts[1:]):  # not the last: closed by the push's end
            lat.append((c["t"] - sent_at(max(d))) * 1000)
            key_lat.append((c["t"] - sent_at(min(following))) * 1000)
            lengths.append(min(following) - min(d))
    lat.sort()
    return dict(cpu=100 * result["cpu_s"] / result["wall_s"] / 3, rss=result["rss_kb"] / 1024,
                p50=statistics.median(lat), p95=lat[math.ceil(0.95 * len(lat)) - 1],
                key=statistics.median(key_lat), n=len(lat), length=statistics.median(lengths),
                wall=result["wall_s"], codes=result["codes"])
def report(lc_file, ng_file):
    lc, ng = analyse(json.load(open(lc_file))), analyse(json.load(open(ng_file)))
    print("| 3 pushes, 1080p30 6 Mbit/s, this machine | livecast ingest | nginx-rtmp | livecast/nginx |")
    print("|---|---|---|---|")
    for name, key, fmt in [("server CPU, % of one core per stream", "cpu", "{:.2f}"),
                           ("server RSS peak, MiB", "rss", "{:.1f}"),
                           ("last frame sent -> chunk durable, median ms", "p50", "{:.1f}"),
                           ("last frame sent -> chunk durable, p95 ms", "p95", "{:.1f}"),
                           ("closing keyframe sent -> chunk durable, median ms", "key", "{:.1f}")]:
        print(f"| {name} | {fmt.format(lc[key])} | {fmt.format(ng[key])} | {lc[key] / ng[key]:.2f} |")
    for side, r in (("livecast", lc), ("nginx-rtmp", ng)):
        print(f"{side}: {r['n']} chunks measured, median chunk {r['length']:.2f} s, push wall time "
              f"{r['wall']:.1f} s, ffmpeg exit codes {r['codes']}")
if sys.argv[1] == "run": run(sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:8], sys.argv[8:])
else: report(sys.argv[2], sys.argv[3])
PY

# --- livecast: catalogue + standalone ingest (no encode worker), in-process bus each. ---
LIVECAST_HTTP__ADDR="127.0.0.1:$cat_http" LIVECAST_GRPC_ADDR="127.0.0.1:$cat_grpc" \
LIVECAST_ADMIN_TOKEN="$token" LIVECAST_METADATA__KIND=embedded \
LIVECAST_METADATA__PATH="$work/metadata.sqlite" RUST_LOG=warn \
  ./target/release/catalogue >"$work/catalogue.log" 2>&1 &
catalogue_pid=$!
LIVECAST_HTTP__ADDR="127.0.0.1:$ing_http" LIVECAST_RTMP_ADDR="127.0.0.1:$rtmp_port" \
LIVECAST_GRPC_ADDR="127.0.0.1:$(free_port)" LIVECAST_CATALOGUE_ENDPOINT="http://127.0.0.1:$cat_grpc" LIVECAST_BLOB__KIND=local \
LIVECAST_BLOB__DIR="$work/blobs" LIVECAST_INGEST__CHUNK_TARGET_MS=2000 RUST_LOG=warn \
  ./target/release/ingest >"$work/ingest.log" 2>&1 &
ingest_pid=$!
for port in "$cat_http" "$ing_http"; do
  for _ in $(seq 100); do curl -sf -m 2 "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
  curl -sf -m 2 "http://127.0.0.1:$port/readyz" >/dev/null || { echo "no /readyz on $port" >&2; cat "$work"/*.log >&2; exit 1; }
done
pushes=()
for i in 1 2 3; do
  created=$(curl -sf -m 10 -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"ingest bench $i\"}" "http://127.0.0.1:$cat_http/v1/videos")
  pushes+=("$(python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["id"] + "=live/" + d["stream_key"])' <<<"$created")")
done
PYTHONPATH=bench python3 "$work/bench.py" run livecast "$work/blobs" "$ingest_pid" "$rtmp_port" "$src" "$work/livecast.json" "${pushes[@]}"
kill "$ingest_pid" "$catalogue_pid"; wait "$ingest_pid" "$catalogue_pid" 2>/dev/null || true; ingest_pid=; catalogue_pid=
for log in ingest catalogue; do  # RUST_LOG=warn: anything logged is a warning or an error
  [ -s "$work/$log.log" ] && { echo "$log log:" >&2; head -5 "$work/$log.log" >&2; }
done

# --- nginx-rtmp: HLS fragments are its durable chunks. Its workers run unprivileged. ---
start_nginx_rtmp "$work" "$nginx_port"
PYTHONPATH=bench python3 "$work/bench.py" run nginx "$work/hls" "$(cat "$work/nginx.pid")" "$nginx_port" "$src" \
  "$work/nginx.json" s1=live/s1 s2=live/s2 s3=live/s3

echo
echo "ingest vs nginx-rtmp, one after the other (nginx-rtmp: worker_processes 1, which live needs)"
PYTHONPATH=bench python3 "$work/bench.py" report "$work/livecast.json" "$work/nginx.json"
