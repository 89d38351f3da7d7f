#!/usr/bin/env bash
# A bounded fuzz run of every parser that reads what clients send (fuzz/fuzz_targets): each
# target runs for FUZZ_SECONDS (default 15) under libFuzzer, starting from seeds made here
# (a real FLV file from ffmpeg, real HLS push names and playlists). A panic, a failed assertion,
# a timeout (> 5 s for one input) or more than 1 GiB of memory fails the run; the input that did
# it is left in fuzz/artifacts/<target>/ to reproduce with `cargo fuzz run <target> <file>`.
#
# cargo fuzz wants a nightly compiler for its -Z flags; this machine has one stable toolchain,
# so RUSTC_BOOTSTRAP=1 lets it accept them. No sanitizer is used: the code under test forbids
# `unsafe`, so the run looks for panics, hangs and runaway memory, not memory errors.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-15}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz --version 0.13.2

seeds=$(mktemp -d)
trap 'rm -rf "$seeds"' EXIT
mkdir -p "$seeds"/{flv_file,flv_chunker,rtmp_session,http_names}
ffmpeg -hide_banner -loglevel error -f lavfi -i testsrc2=size=64x48:rate=10 \
  -f lavfi -i sine=sample_rate=8000 -t 1 -c:v libx264 -g 5 -c:a aac -b:a 16k \
  -f flv "$seeds/flv_file/tiny.flv"
printf '#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nindex0.ts\n#EXT-X-ENDLIST\n' \
  >"$seeds/http_names/playlist"
printf 'index12.ts' >"$seeds/http_names/segment"
printf 'lck_0123456789abcdef' >"$seeds/http_names/key"
printf '\x00' >"$seeds/rtmp_session/empty"
printf '\x00\x00\x00\x00\x00\x00\x05\x17\x00\x00\x00\x00' >"$seeds/flv_chunker/avc"

rm -rf artifacts
cargo fuzz build --sanitizer none -O
for target in flv_file flv_chunker rtmp_session http_names; do
  echo "fuzzing $target for ${seconds}s"
  mkdir -p "corpus/$target"
  cargo fuzz run --sanitizer none -O "$target" "corpus/$target" "$seeds/$target" -- \
    -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 2>&1 \
    | grep -E '^(Done|==|SUMMARY)|DONE|panicked' || true
  # libFuzzer's exit status is lost in the pipe; an artifact is what a failure leaves.
  if compgen -G "artifacts/$target/*" >/dev/null; then
    echo "fuzz target $target failed; inputs in fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
echo "fuzz smoke: every target ran ${seconds}s without a failure"
