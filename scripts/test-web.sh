#!/usr/bin/env bash
# Browser test of the viewer app: builds web/ and livecast, starts livecast on free ports with a
# fresh data dir, drives the app with headless Chromium (tests/web), stops livecast whatever
# happens. Screenshots, logs and results go to the directory given as $1.
#
#   scripts/test-web.sh [ARTIFACT_DIR]          (default .test-servers/web-artifacts)
#   WEB_TEST_BIN=path/to/livecast scripts/test-web.sh   # test an already built binary
# (not LIVECAST_*: livecast reads every LIVECAST_ variable as its configuration)
set -euo pipefail
cd "$(dirname "$0")/.."

artifacts="${1:-.test-servers/web-artifacts}"
mkdir -p "$artifacts"
artifacts="$(cd "$artifacts" && pwd)"
rm -f "$artifacts"/*.png

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- what is missing -------------------------------------------------------------------------
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v node >/dev/null || missing+=(nodejs npm)
command -v curl >/dev/null || missing+=(curl)
command -v python3 >/dev/null || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

npm_ci() { # npm ci, unless node_modules already matches package-lock.json
  if [ ! -f "$1/node_modules/.package-lock.json" ] || [ "$1/package-lock.json" -nt "$1/node_modules/.package-lock.json" ]; then
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci web
npm_ci tests/web

# --- build ------------------------------------------------------------------------------------
(cd web && npm run --silent build)
if [ -z "${WEB_TEST_BIN:-}" ]; then
  cargo build --bin livecast
  WEB_TEST_BIN=target/debug/livecast
fi

# --- start livecast ---------------------------------------------------------------------------
read -r http_port rtmp_port grpc_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
data_dir="$(mktemp -d)"
admin_token="web-test-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
LIVECAST_DATA_DIR="$data_dir" \
LIVECAST_HTTP__ADDR="127.0.0.1:$http_port" \
LIVECAST_RTMP_ADDR="127.0.0.1:$rtmp_port" \
LIVECAST_GRPC_ADDR="127.0.0.1:$grpc_port" \
LIVECAST_ADMIN_TOKEN="$admin_token" \
LIVECAST_INGEST__RECONNECT_WINDOW_MS=3000 \
LIVECAST_WORKER__PRESET=ultrafast \
  "$WEB_TEST_BIN" >"$artifacts/livecast.log" 2>&1 &
livecast_pid=$!
cleanup() {
  kill "$livecast_pid" 2>/dev/null || true
  wait "$livecast_pid" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

base="http://127.0.0.1:$http_port"
for _ in $(seq 1 120); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 "$livecast_pid" 2>/dev/null || { echo "livecast exited; see $artifacts/livecast.log"; tail -20 "$artifacts/livecast.log"; exit 1; }
  sleep 0.5
done
curl -fsS "$base/readyz" >/dev/null || { echo "livecast not ready on $base"; exit 1; }
if ! curl -fsS "$base/" | grep -q '/assets/'; then
  echo "livecast at $base does not serve the web app: merge livecast_web::router() into its routes"
  echo "0 passed, 1 failed"
  exit 1
fi

# --- the browser test ---------------------------------------------------------------------------
started=$(date +%s)
set +e
(cd tests/web && LIVECAST_URL="$base" LIVECAST_ADMIN_TOKEN="$admin_token" LIVECAST_WEB_ARTIFACTS="$artifacts" \
  node --test --test-reporter=spec --test-reporter-destination=stdout \
       --test-reporter=tap --test-reporter-destination="$artifacts/results.tap" viewer.test.mjs)
status=$?
set -e
passed=$(grep -Ec '^ *ok [0-9]+ ' "$artifacts/results.tap" || true)
failed=$(grep -Ec '^ *not ok [0-9]+ ' "$artifacts/results.tap" || true)
# The suite itself is one more "ok" line at the top level; count only the tests inside it.
if grep -Eq '^ok [0-9]+ ' "$artifacts/results.tap"; then passed=$((passed - 1)); fi
if grep -Eq '^not ok [0-9]+ ' "$artifacts/results.tap"; then failed=$((failed - 1)); [ "$failed" -ge 0 ] || failed=0; fi
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "browser test took $(( $(date +%s) - started )) s; screenshots and logs in $artifacts"
echo "$passed passed, $failed failed"
exit "$status"
