//! Prometheus metrics of the encode worker.

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounterVec};

static CHUNKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_chunks_total",
        "Source chunks handled, by outcome (encoded, bad_input, slate, end_of_stream).",
        &["outcome"],
    )
});

static SEGMENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_segments_total",
        "Segments written, by what they show: source, still_picture (the source's audio under \
         its last picture) or slate (last picture and silence).",
        &["content"],
    )
});

static REPLICATED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_backup_copies_total",
        "Objects copied to the backup region's blob store, by outcome (ok, failed).",
        &["outcome"],
    )
});

static TRANSCODE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    livecast_service::metrics::histogram_vec(
        "livecast_worker_transcode_seconds",
        "Wall time to transcode one source chunk into the whole ladder.",
        &[],
    )
    .with_label_values::<&str>(&[])
});

/// Counts a handled chunk.
pub fn chunk(outcome: &str) {
    CHUNKS.with_label_values(&[outcome]).inc();
}

/// Records how long one chunk took.
pub fn transcode_seconds(seconds: f64) {
    TRANSCODE_SECONDS.observe(seconds);
}

/// Counts a written segment by what it shows.
pub fn segment(content: livecast_media::Content) {
    let label = match content {
        livecast_media::Content::Source => "source",
        livecast_media::Content::StillPicture => "still_picture",
        livecast_media::Content::Slate => "slate",
    };
    SEGMENTS.with_label_values(&[label]).inc();
}

/// Counts an object copied (or not) to the backup region.
pub fn replicated(outcome: &str) {
    REPLICATED.with_label_values(&[outcome]).inc();
}

static PARTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_parts_total",
        "Partial segments (Low-Latency HLS) written and announced.",
        &[],
    )
});

static FOLLOWED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_followed_chunks_total",
        "Chunks followed while ingest cut them, by outcome: announced (parts and segments made \
         from the feed) or fell_back (the durable chunk was transcoded instead).",
        &["outcome"],
    )
});

/// Counts an announced part.
pub fn part() {
    PARTS.with_label_values::<&str>(&[]).inc();
}

/// Counts a chunk followed live, by how it ended.
pub fn followed(outcome: &str) {
    FOLLOWED.with_label_values(&[outcome]).inc();
}

static TAKEOVERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_standby_takeovers_total",
        "Live streams this worker took over as their standby when the primary went.",
        &[],
    )
});

static LIVE_STREAMS: LazyLock<prometheus::IntGaugeVec> = LazyLock::new(|| {
    livecast_service::metrics::gauge_vec(
        "livecast_worker_live_streams",
        "Live streams this worker encodes as ingest cuts them, by role (primary, standby).",
        &["role"],
    )
});

/// Counts a standby taking a stream over.
pub fn takeover() {
    TAKEOVERS.with_label_values::<&str>(&[]).inc();
}

/// Sets how many live streams this worker encodes as primary and as standby.
pub fn live_streams((primary, standby): (u32, u32)) {
    LIVE_STREAMS
        .with_label_values(&["primary"])
        .set(i64::from(primary));
    LIVE_STREAMS
        .with_label_values(&["standby"])
        .set(i64::from(standby));
}

static GAPS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_gap_segments_total",
        "Segments of top rungs left out (announced as gaps) because the worker fell behind real \
         time: audio and the lower rungs were kept live.",
        &[],
    )
});

static SHED_CHANGES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_shed_changes_total",
        "Times a live stream's worker left one more top rung out (shed) or took one back \
         (restored), by direction.",
        &["direction"],
    )
});

/// Counts a top-rung segment left out.
pub fn gap() {
    GAPS.with_label_values::<&str>(&[]).inc();
}

/// Counts a rung shed or restored.
pub fn shed_change(direction: &str) {
    SHED_CHANGES.with_label_values(&[direction]).inc();
}
