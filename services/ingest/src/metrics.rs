//! Prometheus metrics of ingest.

use std::sync::LazyLock;

use livecast_core::StreamId;
use prometheus::{IntCounter, IntCounterVec, IntGaugeVec};

static PUBLISHES: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_publishes_total",
        "Publishing sessions admitted (RTMP and HLS push).",
    )
});

static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_ingest_publishes_rejected_total",
        "Publishing attempts refused, by reason.",
        &["reason"],
    )
});

static CHUNKS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_chunks_total",
        "Source chunks made durable and announced.",
    )
});

static REPLACED: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_publishes_replaced_total",
        "Publishers cut off because a backup input took their stream over.",
    )
});

static SLATE_CHUNKS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_slate_chunks_total",
        "Slate chunks announced while broadcasters were away inside the reconnect window.",
    )
});

static CHUNK_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_chunk_bytes_total",
        "Bytes of source chunks made durable.",
    )
});

static INPUT_BITRATE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    livecast_service::metrics::gauge_vec(
        "livecast_ingest_input_bitrate_bps",
        "Bits per second of the latest source chunk, per live stream.",
        &["stream_id"],
    )
});

static REALTIME_RATIO: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    livecast_service::metrics::gauge_vec(
        "livecast_ingest_realtime_ratio_milli",
        "Media time received over wall time since the session began, x1000, per live stream.",
        &["stream_id"],
    )
});

/// The uplink of `stream` as of its latest chunk.
pub fn uplink(stream: &StreamId, bitrate: u32, ratio_milli: u32) {
    INPUT_BITRATE
        .with_label_values(&[stream.as_str()])
        .set(i64::from(bitrate));
    REALTIME_RATIO
        .with_label_values(&[stream.as_str()])
        .set(i64::from(ratio_milli));
}

/// `stream` completed: its per-stream series go away.
pub fn stream_gone(stream: &StreamId) {
    let _ = INPUT_BITRATE.remove_label_values(&[stream.as_str()]);
    let _ = REALTIME_RATIO.remove_label_values(&[stream.as_str()]);
}

/// A publishing session was admitted.
pub fn publish_started() {
    PUBLISHES.inc();
}

/// A publishing attempt was refused for `reason`.
pub fn rejected(reason: &str) {
    REJECTED.with_label_values(&[reason]).inc();
}

/// A chunk of `bytes` was stored and announced.
pub fn chunk_stored(bytes: u64) {
    CHUNKS.inc();
    CHUNK_BYTES.inc_by(bytes);
}

/// Counts a slate chunk.
pub fn slate_chunk() {
    SLATE_CHUNKS.inc();
}

/// Counts a publisher replaced by a backup input.
pub fn publish_replaced() {
    REPLACED.inc();
}

static FEED_FOLLOWS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_ingest_feed_follows_total",
        "Requests to follow a chunk as it is cut (workers making partial segments), by outcome.",
        &["outcome"],
    )
});

/// A worker asked to follow a chunk being cut.
pub fn feed_follow(outcome: &str) {
    FEED_FOLLOWS.with_label_values(&[outcome]).inc();
}
