#!/usr/bin/env bash
# Starts or stops the real engines the tests run against, all on 127.0.0.1:
#   an S3-compatible server (s3s-fs) and a Kafka-protocol broker (tansu, SQLite storage).
#   scripts/test-servers.sh start DIR   writes DIR/env with the LIVECAST_TEST_* variables
#   scripts/test-servers.sh stop DIR
set -euo pipefail

action="${1:?usage: test-servers.sh start|stop DIR}"
dir="${2:?usage: test-servers.sh start|stop DIR}"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() { # name port log
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not start listening on 127.0.0.1:$2; its log:" >&2
  tail -n 40 "$3" >&2 || true
  return 1
}

stop_all() {
  for pidfile in "$dir"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case "$action" in
  start)
    stop_all 2>/dev/null || true
    rm -rf "$dir"
    mkdir -p "$dir/s3"

    s3_port=$(free_port)
    s3_access="livecast-test"
    s3_secret="livecast-test-secret"
    s3s-fs --host 127.0.0.1 --port "$s3_port" --access-key "$s3_access" --secret-key "$s3_secret" \
      "$dir/s3" >"$dir/s3.log" 2>&1 &
    echo $! >"$dir/s3.pid"

    kafka_port=$(free_port)
    # tansu resolves sqlite:// paths against its working directory.
    (cd "$dir" && exec tansu broker \
      --storage-engine "sqlite://kafka.db" \
      --listener-url "tcp://127.0.0.1:$kafka_port" \
      --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
      >"$dir/kafka.log" 2>&1) &
    echo $! >"$dir/kafka.pid"

    wait_for_port "s3s-fs" "$s3_port" "$dir/s3.log"
    wait_for_port "tansu" "$kafka_port" "$dir/kafka.log"
    cat >"$dir/env" <<ENV
export LIVECAST_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
export LIVECAST_TEST_S3_ACCESS_KEY=$s3_access
export LIVECAST_TEST_S3_SECRET_KEY=$s3_secret
export LIVECAST_TEST_KAFKA_BROKERS=127.0.0.1:$kafka_port
ENV
    echo "test servers: S3 on 127.0.0.1:$s3_port, Kafka on 127.0.0.1:$kafka_port (logs in $dir)"
    ;;
  stop)
    stop_all
    echo "test servers stopped"
    ;;
  *)
    echo "usage: test-servers.sh start|stop DIR" >&2
    exit 2
    ;;
esac
