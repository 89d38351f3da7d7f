//! Prometheus metrics of the RTMP server.

use std::sync::LazyLock;

use prometheus::IntCounterVec;

static CONNECTIONS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_ingest_rtmp_connections_total",
        "RTMP connections by how they ended (closed, shutdown, rejected, bad_handshake, \
         handshake_timeout, idle_timeout, protocol_error, invalid_media, publisher_failed, \
         io_error, over_limit).",
        &["outcome"],
    )
});

static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_ingest_rtmp_rejected_total",
        "RTMP requests refused by reason (app, play, bad_name, second_publish, denied, \
         conflict, unavailable, internal).",
        &["reason"],
    )
});

/// Counts a connection that ended with `outcome`.
pub(super) fn connection_ended(outcome: &str) {
    CONNECTIONS.with_label_values(&[outcome]).inc();
}

/// Counts a refused connect, publish or play request.
pub(super) fn rejected(reason: &str) {
    REJECTED.with_label_values(&[reason]).inc();
}
