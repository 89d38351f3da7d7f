# Sourced by the benchmark scripts: their packages, cached sources, free ports, and the
# all-in-one livecast started on them.
#   install_missing PKG... installs the Debian packages not installed yet
#   cached_source PATH WxH BITRATE SECONDS
#                          a test picture with a tone, H.264 (GOP 2 s exactly) + AAC in FLV,
#                          encoded once into PATH and reused: pushes of it cost almost no CPU
#   start_livecast WORK    starts ./target/${BENCH_PROFILE:-release}/livecast with its data
#                          in WORK; sets livecast_pid, base (its HTTP URL), rtmp (its RTMP URL
#                          prefix), rtmp_port and token, and waits until it is ready
#   create_stream NAME     creates a stream; sets id and key
#   stop_livecast WORK     stops it and shows the first warnings of its log, if any
#   start_nginx_rtmp WORK RTMP_PORT [HTTP_PORT]
#                          nginx with the rtmp module: `hls on` with 2 s fragments into WORK/hls,
#                          served over HTTP on HTTP_PORT when given; its pid is in WORK/nginx.pid
# The caller's EXIT trap kills "$livecast_pid" and nginx.

install_missing() {
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

cached_source() {
  local path=$1 size=$2 rate=$3 seconds=$4
  [ -s "$path" ] && return 0
  echo "encoding the $size source once ($path)..." >&2
  nice -n 10 ffmpeg -hide_banner -loglevel error -y -f lavfi -i "testsrc2=size=$size:rate=30" \
    -f lavfi -i sine=frequency=440:sample_rate=48000 -t "$seconds" -c:v libx264 -preset veryfast \
    -b:v "$rate" -maxrate "$rate" -bufsize "$((2 * ${rate%M}))M" -g 60 -keyint_min 60 \
    -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -f flv "$path.part"
  mv "$path.part" "$path"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_livecast() {
  local work=$1 http_port grpc_port
  http_port=$(free_port); rtmp_port=$(free_port); grpc_port=$(free_port)
  token=bench-token
  LIVECAST_DATA_DIR="$work/data" LIVECAST_HTTP__ADDR="127.0.0.1:$http_port" \
  LIVECAST_RTMP_ADDR="127.0.0.1:$rtmp_port" LIVECAST_GRPC_ADDR="127.0.0.1:$grpc_port" \
  LIVECAST_ADMIN_TOKEN="$token" LIVECAST_INGEST__RECONNECT_WINDOW_MS=600000 RUST_LOG=warn \
    "./target/${BENCH_PROFILE:-release}/livecast" >"$work/livecast.log" 2>&1 &
  livecast_pid=$!
  base="http://127.0.0.1:$http_port"
  rtmp="rtmp://127.0.0.1:$rtmp_port/live"
  for _ in $(seq 150); do curl -sf "$base/readyz" >/dev/null && return 0; sleep 0.2; done
  echo "livecast did not become ready; its log:" >&2
  cat "$work/livecast.log" >&2
  return 1
}

create_stream() {
  local created
  created=$(curl -sf -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\"}" "$base/v1/videos")
  id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")
  key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_key"])' <<<"$created")
}

stop_livecast() {
  kill "$livecast_pid"; wait "$livecast_pid" 2>/dev/null || true; livecast_pid=
  if grep -qE 'WARN|ERROR' "$1/livecast.log"; then  # RUST_LOG=warn; its banner is not one
    echo "livecast log:" >&2; grep -E 'WARN|ERROR' "$1/livecast.log" | head -5 >&2
  fi
}

start_nginx_rtmp() {
  local work=$1 rtmp_port=$2 http_port=${3:-} http=
  # Its workers run unprivileged.
  mkdir -p "$work/hls"; chmod 755 "$work"; chmod 777 "$work/hls"
  if [ -n "$http_port" ]; then
    http="http { access_log off; types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server { listen 127.0.0.1:$http_port; root $work/hls; add_header Cache-Control no-cache; } }"
  fi
  cat >"$work/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $work/nginx.pid;
events { worker_connections 1024; }
rtmp { server { listen 127.0.0.1:$rtmp_port;
  application live { live on; hls on; hls_path $work/hls; hls_fragment 2s; hls_playlist_length 60s; } } }
$http
CONF
  nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
  for _ in $(seq 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
}
