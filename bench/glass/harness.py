"""The Python side of bench/glass-to-glass.sh (the method is described in its header).

  harness.py source PATH SECONDS [WIDTH HEIGHT]
      encodes the broadcaster's source once: 1280x720 (or WIDTH x HEIGHT, 16:9) 30 fps H.264 (GOP
      2 s exactly, no B-frames) + AAC in FLV, with each frame's number burned into the picture as a
      row of blocks, then reads the code back from a few frames scaled to 240p to check that it
      decodes
  harness.py run RTMP_PORT APP/KEY SOURCE PLAYLIST_URL JOIN_S VIEWS SECONDS OUT.json [SHOT_DIR [MODE]]
      pushes SOURCE (ffmpeg -re -c copy) through the RTMP relay (bench/rtmp_relay.py); from JOIN_S s
      after its first frame, VIEWS viewers (viewer.mjs: hls.js in headless chromium, low-latency
      mode on when MODE is `ll`, the viewer app's settings when it is `app`, and pinned to the
      lowest rendition when it is `app-lowest`) join one after the
      other at evenly spread phases of the keyframe cycle, each measuring SECONDS of playback;
      stops the push; writes when every frame was sent and what each viewer saw
  harness.py summary RUN.json
      one run's figures (glass-to-glass, stalls, fatal errors, problems) as one line of JSON, for
      the tests that play through a fault (tests/src/player.rs)
  harness.py report LIVECAST_LL.json LIVECAST.json NGINX.json
      turns the three runs (livecast with hls.js in low-latency mode, livecast and nginx-rtmp
      with hls.js's defaults) into latencies and prints the table (exit 1 if a run is unusable)

The code (also decoded by index.html, which must agree): the top 64 rows of the 720p picture
(the same share of a smaller one) are a row of 20 blocks of 64x64 pixels, white = 1, black = 0. Block 0 is always 1 and block 1 always 0
(guards: the row is ours and the right way round), blocks 2..17 are the frame number N (16 bits,
most significant first), block 18 is their parity and block 19 its complement. A frame decodes
only if every block is clearly black or white, the guards hold and the parity matches.
"""
import json, math, os, signal, statistics, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rtmp_relay import Relay  # bench/rtmp_relay.py, shared with the *-vs-nginx-rtmp.sh harnesses

W, H, FPS, GOP = 1280, 720, 30, 60
BLOCK, BLOCKS, BITS = 64, 20, 16
SETTLE_MS = 8000  # a low-latency player catches up from where it joined (1.25x) within this
LAUNCH_S = 3  # a viewer's browser is started this long before its join time, then waits for it
VIEWER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "viewer.mjs")


# --- the code -----------------------------------------------------------------------------------
def code_filters(w=W):
    """ffmpeg drawbox filters that burn frame number n into the top row (timeline `enable`) of a
    16:9 picture `w` wide."""
    block = w // BLOCKS
    bit = lambda k: f"mod(floor(n/{2 ** k}),2)"
    parity = f"mod({'+'.join(bit(k) for k in range(BITS))},2)"
    box = lambda i, on: (f"drawbox=x={i * block}:y=0:w={block}:h={block}:color=white:t=fill"
                         + (f":enable='{on}'" if on else ""))
    filters = [f"drawbox=x=0:y=0:w={w}:h={block}:color=black:t=fill", box(0, None)]
    filters += [box(2 + i, bit(k)) for i, k in enumerate(range(BITS - 1, -1, -1))]
    filters += [box(18, parity), box(19, f"1-{parity}")]
    return filters


def decode(levels):
    """Block means (0..255, left to right) -> frame number, or None (unreadable / guard / parity)."""
    bits = []
    for v in levels:
        if v >= 160: bits.append(1)
        elif v <= 96: bits.append(0)
        else: return None
    if bits[0] != 1 or bits[1] != 0: return None
    data = bits[2:2 + BITS]
    parity = sum(data) % 2
    if bits[18] != parity or bits[19] != 1 - parity: return None
    return int("".join(map(str, data)), 2)


def source(path, seconds, width=W, height=H):
    seconds, width, height = int(seconds), int(width), int(height)
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        print(f"encoding the coded {height}p30 source once ({path}, {seconds} s)...", file=sys.stderr)
        graph = ",".join([f"testsrc2=size={width}x{height}:rate={FPS}"] + code_filters(width))
        kbps = 3000 * width * height // (W * H)
        # Above 720p, encoded faster (at a higher bitrate): made once, but on a bare machine.
        preset = "ultrafast" if width > W else "veryfast"
        subprocess.run(["nice", "-n", "10", "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
                        "-f", "lavfi", "-i", graph, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                        "-t", str(seconds), "-c:v", "libx264", "-preset", preset, "-b:v", f"{kbps}k",
                        "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k", "-g", str(GOP), "-keyint_min", str(GOP),
                        "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                        "-f", "flv", path + ".part"], check=True)
        os.replace(path + ".part", path)
    # Self-check: frames picked across the file, scaled to 240p as the lowest rendition is, and
    # squeezed through a low-bitrate x264 pass, must read back as their own numbers.
    picks = [n for n in (0, 1, 2, 29, 30, 59, 60, 61, 255, 256, 1023, 1024) if n < seconds * FPS]
    picks.append(seconds * FPS - 1)
    sel = "+".join(f"eq(n\\,{n})" for n in picks)
    out = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path, "-an",
                          "-vf", f"select='{sel}',scale=426:240", "-vsync", "0", "-c:v", "libx264",
                          "-preset", "ultrafast", "-b:v", "150k", "-f", "h264", "-"],
                         capture_output=True, check=True).stdout
    yuv = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "h264", "-i", "-",
                          "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], input=out, capture_output=True,
                         check=True).stdout
    w, h, got = 426, 240, []
    size = w * h + 2 * (w // 2) * (h // 2)
    for f in range(len(yuv) // size):
        luma = yuv[f * size:f * size + w * h]  # the Y plane, limited range
        got.append(decode(block_means(lambda x, y: luma[y * w + x], w, h * BLOCK / H)))  # 64/720 of h
    if got != picks:
        sys.exit(f"the coded source does not decode back: frames {picks} read as {got}")


def block_means(pixel, width, strip_h):
    """Mean of the middle half (both ways) of each block of the top strip (limited range luma,
    stretched to 0..255 as a browser shows it)."""
    bw, out = width / BLOCKS, []
    y0, y1 = int(strip_h / 4), max(int(strip_h / 4) + 1, int(3 * strip_h / 4))
    for i in range(BLOCKS):
        x0, x1 = int(i * bw + bw / 4), max(int(i * bw + bw / 4) + 1, int(i * bw + 3 * bw / 4))
        vals = [pixel(x, y) for y in range(y0, y1) for x in range(x0, x1)]
        out.append(max(0.0, min(255.0, (sum(vals) / len(vals) - 16) * 255 / 219)))
    return out


# --- one run --------------------------------------------------------------------------------------
def stop(proc, grace=10):
    if proc is None or proc.poll() is not None: return
    proc.terminate()
    try: proc.wait(grace)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()


def run(rtmp_port, path, src, url, join_s, views, seconds, out, shots="", mode="standard"):
    """One push, VIEWS viewers one after the other (a fresh browser each), from JOIN_S s after the
    first frame was sent. Viewer k joins at phase (k + 1/2) * 2/VIEWS s of the 2 s keyframe cycle
    (the midpoints of VIEWS equal slices of it), at the first such moment after the previous
    viewer closed and the next browser is up: its browser starts LAUNCH_S s ahead and waits."""
    join_s, views, seconds = float(join_s), int(views), float(seconds)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the caller's trap: still clean up
    relay, push, viewer, seen, joins = Relay(int(rtmp_port)), None, None, [], []
    try:
        t0 = time.time()
        push = subprocess.Popen(["ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-re", "-i", src,
                                 "-c", "copy", "-f", "flv", f"rtmp://127.0.0.1:{relay.port}/{path}"])
        while len(relay.sent) < 2 and push.poll() is None and time.time() < t0 + 10: time.sleep(0.005)
        base = relay.sent[1][1] if len(relay.sent) > 1 else t0  # frame 0 (a keyframe) sent
        cycle = GOP / FPS
        at_phase = lambda earliest, k: base + math.ceil((earliest - base - (k + 0.5) * cycle / views) / cycle) \
            * cycle + (k + 0.5) * cycle / views  # the first moment >= earliest at viewer k's phase
        at = at_phase(base + join_s, 0)
        for k in range(views):
            while time.time() < at - LAUNCH_S and push.poll() is None: time.sleep(0.05)
            if push.poll() is not None: break
            joins.append(at - base)
            viewer_out = f"{out}.view{k}.json"
            viewer = subprocess.Popen(["node", VIEWER, url, str(seconds), viewer_out, str(int(at * 1000)),
                                       os.path.join(shots, f"view{k}.png") if shots else "", mode])
            try: viewer.wait(timeout=LAUNCH_S + seconds + 90)  # bounded: the page gives up by itself
            except subprocess.TimeoutExpired: stop(viewer)
            seen.append(json.load(open(viewer_out)) if os.path.exists(viewer_out)
                        else {"error": f"viewer {k} wrote nothing (exit {viewer.returncode})"})
            at = at_phase(time.time() + LAUNCH_S, k + 1)
        push_code = push.poll()  # None: still pushing when the last viewer finished, as it should be
    finally:
        stop(viewer); stop(push)
    json.dump(dict(t0=t0, base=base, joins=joins, sent=relay.sent, keyframes=relay.keyframes,
                   push_code=push_code, views=seen), open(out, "w"))


# --- report -----------------------------------------------------------------------------------------
def frames_sent(res):
    """Send time (epoch s) of every frame, by frame number. The first video message of the push is
    the AVC sequence header; with no B-frames every later one is the next frame, in order. Checked
    against the RTMP timestamps (frame N at N/30 s after frame 0) and the keyframes (every 60th frame)."""
    msgs, problems = res["sent"][1:], []
    if len(msgs) > 1 and abs(msgs[-1][0] - msgs[0][0] - (len(msgs) - 1) * 1000 / FPS) > 1:
        msgs = msgs[:-1]  # the AVC end-of-sequence tag ffmpeg sends when the push is stopped
    for n, (ts, _) in enumerate(msgs):  # the source starts at 21 ms (AAC priming): relative to frame 0
        if abs(ts - msgs[0][0] - n * 1000 / FPS) > 1:
            problems.append(f"video message {n + 1} has RTMP timestamp {ts} ms, not frame {n}'s")
            break
    keys = res["keyframes"]
    want = [msgs[n][0] for n in range(0, len(msgs), GOP)]
    if keys[:len(want)] != want[:len(keys)] or abs(len(keys) - len(want)) > 1:
        problems.append("keyframes are not every 60th frame")
    return [t for _, t in msgs], problems


def pct(values, p):
    values = sorted(values)
    return values[max(0, math.ceil(p / 100 * len(values)) - 1)]


def analyse(res):
    sent, problems = frames_sent(res)
    lat, settled, heights, per_view, late_decodes, unreadable, total = [], [], {}, [], 0, {}, 0
    for k, v in enumerate(res["views"]):
        if v.get("error"): problems.append(f"viewer {k}: {v['error']}")
        mine = []
        for s in v.get("samples", []):
            if s["n"] >= len(sent) or sent[s["n"]] > s["t"] / 1000:
                late_decodes += 1  # a number not sent yet: misread (counted, not used)
                continue
            mine.append(s["t"] - sent[s["n"]] * 1000)
            # Once the player has caught up from where it joined (SETTLE_MS after its first frame).
            if v.get("firstPlaying") and s["t"] >= v["firstPlaying"] + SETTLE_MS:
                settled.append(mine[-1])
            heights[s["h"]] = heights.get(s["h"], 0) + 1
        for reason, c in v.get("rejected", {}).items(): unreadable[reason] = unreadable.get(reason, 0) + c
        total += len(v.get("samples", [])) + sum(v.get("rejected", {}).values())
        lat += mine
        per_view.append(dict(p50=statistics.median(mine) if mine else math.nan,
                             phase=(v["loadStart"] / 1000 - max((t for t in sent[::GOP] if t <= v["loadStart"] / 1000),
                                                                  default=math.nan)) if v.get("loadStart") else math.nan,
                             ttff=(v["firstPlaying"] - v["loadStart"]) if v.get("firstPlaying") else math.nan,
                             level=v["samples"][0]["h"] if v.get("samples") else None,
                             behind=v.get("behindEdgeAtStart")))
    if not lat: problems.append("no frame number decoded during playback")
    if total and sum(unreadable.values()) > 0.05 * total:
        problems.append(f"{sum(unreadable.values())} of {total} samples unreadable")
    if late_decodes: problems.append(f"{late_decodes} samples decoded a frame not sent yet")
    views = res["views"]
    total_of = lambda key: sum(v.get(key) or 0 for v in views)
    finite = lambda xs: [x for x in xs if x is not None and math.isfinite(x)]
    ttffs, est = finite(p["ttff"] for p in per_view), finite(v.get("hlsLatency") for v in views)
    return dict(
        p50=statistics.median(lat) if lat else math.nan, p95=pct(lat, 95) if lat else math.nan,
        mean=statistics.mean(lat) if lat else math.nan,
        lo=min(lat, default=math.nan), hi=max(lat, default=math.nan), n=len(lat), unreadable=unreadable,
        hi_settled=max(settled, default=math.nan),
        total=total, per_view=per_view, ttff=statistics.median(ttffs) if ttffs else math.nan,
        waiting=total_of("waiting"), stalled_ms=total_of("stalledMs"), buffer_stalled=total_of("bufferStalled"),
        played_s=total_of("playedSeconds"), window_s=sum(v.get("windowSeconds") or 0 for v in views),
        heights=heights, levels=next((v["levels"] for v in views if v.get("levels")), []),
        hls_latency=statistics.median(est) * 1000 if est else math.nan,
        target=next((v["targetDuration"] for v in views if v.get("targetDuration")), None),
        dropped=total_of("droppedFrames"), fatal=[e for v in views for e in v.get("fatalErrors", [])],
        problems=problems, push_code=res["push_code"], joins=res["joins"], frames=len(sent))


def ratio(a, b):
    if not (math.isfinite(a) and math.isfinite(b)) or b == 0: return "n/a"
    return f"{a / b:.2f}"


def level_text(r):
    if not r["heights"]: return "none"
    total = sum(r["heights"].values())
    return ", ".join(f"{h}p {100 * c / total:.0f} %" for h, c in sorted(r["heights"].items(), reverse=True))


# The low-latency target of the issue: glass-to-glass below 3 s median with the ladder.
LL_TARGET_MS = 3000


def report(ll_file, lc_file, ng_file):
    sides = [("livecast LL-HLS", analyse(json.load(open(ll_file)))),
             ("livecast HLS", analyse(json.load(open(lc_file)))),
             ("nginx-rtmp HLS", analyse(json.load(open(ng_file))))]
    ll, lc, ng = (r for _, r in sides)
    # One statement per line: bench/record.sh keeps the lines that carry a figure, whole.
    print(f"glass-to-glass: a frame sent by the broadcaster (seen by the relay) -> that frame on the screen of "
          f"hls.js in headless chromium (its number read back from the picture every 100 ms); per run its "
          f"viewers one after the other, joined at evenly spread points of the 2 s keyframe cycle: livecast with "
          f"hls.js in low-latency mode {len(ll['per_view'])} viewers x {ll['window_s'] / max(len(ll['per_view']), 1):.0f} s, "
          f"livecast and nginx-rtmp with hls.js's defaults {len(lc['per_view'])} x "
          f"{lc['window_s'] / max(len(lc['per_view']), 1):.0f} s each; figures over all their samples.")
    print()
    ms = "{:,.0f} ms"
    head = " | ".join(name for name, _ in sides)
    print(f"| 720p30 3 Mbit/s push, GOP 2 s, this machine | {head} | LL-HLS / nginx |")
    print("|---|---|---|---|---|")
    row = lambda name, key, fmt: print(
        f"| {name} | " + " | ".join(fmt.format(r[key]) for _, r in sides) + f" | {ratio(ll[key], ng[key])} |")
    for name, key, fmt in [("glass-to-glass, median", "p50", ms), ("glass-to-glass, p95", "p95", ms),
                           ("glass-to-glass, mean (the expectation over join phases)", "mean", ms)]:
        row(name, key, fmt)
    print("| glass-to-glass, min / max | " + " | ".join(f"{r['lo']:,.0f} / {r['hi']:,.0f} ms" for _, r in sides) + " | |")
    joined = lambda r: ", ".join(f"{p['p50']:,.0f}" for p in r["per_view"]) + " ms"
    print("| median of each viewer, in join order | " + " | ".join(joined(r) for _, r in sides) + " | |")
    for name, key, fmt in [("time to first frame (loadSource -> playing), median of viewers", "ttff", ms),
                           ("stalls (waiting events after the first frame), all viewers", "waiting", "{}"),
                           ("time rebuffering, all viewers", "stalled_ms", ms),
                           ("hls.js BUFFER_STALLED_ERROR, all viewers", "buffer_stalled", "{}"),
                           ("hls.js's own latency estimate at the end, median of viewers", "hls_latency", ms)]:
        row(name, key, fmt)
    print("| level played by hls.js (share of samples) | " + " | ".join(level_text(r) for _, r in sides) + " | |")
    print()
    met = "met" if ll["p50"] < LL_TARGET_MS and ll["waiting"] == 0 else "NOT met"
    print(f"target, livecast LL-HLS below {LL_TARGET_MS:,} ms median with no stall: {met} "
          f"({ll['p50']:,.0f} ms median, {ll['waiting']} stalls in {ll['played_s']:.1f} s played).")
    print(f"hls.js with its defaults starts 3 target durations ({3 * (lc['target'] or 0)} s here) behind the end of "
          "the newest segment listed when it loads the playlist, however old that segment is, and plays at speed 1: "
          "glass-to-glass is that, plus how long ago that segment's closing keyframe was sent (the join phase), plus "
          "time to first frame. In low-latency mode it aims at PART-HOLD-BACK (3 part targets) behind the newest part "
          "and catches up by playing slightly faster.")
    for side, r in sides:
        ladder = ", ".join(f"{l['height']}p" for l in r["levels"] if l["height"]) or "one media playlist"
        first = ", ".join(f"{p['level']}p" if p["level"] else "-" for p in r["per_view"])
        phases = ", ".join(f"{p['phase']:.2f}" for p in r["per_view"])
        ttffs = ", ".join(f"{p['ttff']:,.0f}" for p in r["per_view"])
        behind = ", ".join("?" if p["behind"] is None else f"{p['behind']:.2f}" for p in r["per_view"])
        print(f"{side}: levels offered {ladder}; first picture height per viewer {first}; "
              f"joined (hls.loadSource) {phases} s after a keyframe was sent; time to first frame {ttffs} ms; first frame played "
              f"{behind} s behind the end of the newest segment listed; target duration {r['target']} s; {r['n']} samples "
              f"decoded of {r['total']}, unreadable {r['unreadable'] or 0}; {r['played_s']:.1f} s played in "
              f"{r['window_s']:.0f} s; dropped frames {r['dropped']}; {r['frames']} frames sent; push "
              f"{'still running at the end' if r['push_code'] is None else 'exited ' + str(r['push_code'])}; "
              f"fatal hls.js errors {r['fatal'] or 'none'}")
    bad = [f"{side}: {p}" for side, r in sides for p in r["problems"]]
    if any(r["push_code"] is not None for _, r in sides):
        bad.append("a push ended before its last viewer finished (the source is too short or the server refused it)")
    if bad:
        print("WARNING: " + "; ".join(bad)); sys.exit(1)


def summary(run_file):
    r = analyse(json.load(open(run_file)))
    keep = ("p50", "p95", "hi", "hi_settled", "n", "total", "waiting", "stalled_ms", "buffer_stalled", "played_s",
            "window_s", "fatal", "problems", "heights", "frames", "push_code")
    print(json.dumps({k: (None if isinstance(r[k], float) and not math.isfinite(r[k]) else r[k]) for k in keep}))


if __name__ == "__main__":
    {"source": source, "run": run, "summary": summary, "report": report}[sys.argv[1]](*sys.argv[2:])
