//! Prometheus metrics of the notification service.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec};

static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_notification_events_total",
        "Lifecycle events consumed, by outcome (notified, duplicate, ignored, rejected).",
        &["outcome"],
    )
});

static SSE_CONNECTIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_notification_sse_connections_total",
        "SSE clients accepted.",
    )
});

static SSE_DROPPED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_notification_sse_clients_dropped_total",
        "SSE clients disconnected by the service, by reason (slow: their queue was full).",
        &["reason"],
    )
});

static SSE_CLIENTS: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    livecast_service::metrics::gauge_vec(
        "livecast_notification_sse_clients",
        "SSE clients connected now.",
        &[],
    )
});

static WEBHOOK_ATTEMPTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_notification_webhook_attempts_total",
        "Webhook delivery attempts, by outcome (delivered, failed).",
        &["outcome"],
    )
});

static WEBHOOK_QUEUED: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_notification_webhook_deliveries_queued_total",
        "Webhook deliveries queued (one per notification and registered endpoint).",
    )
});

static WEBHOOK_ABANDONED: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_notification_webhook_deliveries_abandoned_total",
        "Webhook deliveries given up after the retry time ran out.",
    )
});

/// Registers every metric with its known label values at zero, so dashboards and alerts see
/// the series before the first event.
pub fn register() {
    for outcome in ["notified", "duplicate", "ignored", "rejected"] {
        EVENTS.with_label_values(&[outcome]);
    }
    for outcome in ["delivered", "failed"] {
        WEBHOOK_ATTEMPTS.with_label_values(&[outcome]);
    }
    SSE_DROPPED.with_label_values(&["slow"]);
    sse_clients();
    LazyLock::force(&SSE_CONNECTIONS);
    LazyLock::force(&WEBHOOK_QUEUED);
    LazyLock::force(&WEBHOOK_ABANDONED);
}

/// Counts one consumed event.
pub fn event(outcome: &str) {
    EVENTS.with_label_values(&[outcome]).inc();
}

/// Counts one accepted SSE client.
pub fn sse_connected() {
    SSE_CONNECTIONS.inc();
}

/// Counts one SSE client disconnected by the service.
pub fn sse_dropped(reason: &str) {
    SSE_DROPPED.with_label_values(&[reason]).inc();
}

/// SSE clients connected now.
pub fn sse_clients() -> IntGauge {
    SSE_CLIENTS.with_label_values::<&str>(&[])
}

/// Counts one webhook attempt.
pub fn webhook_attempt(outcome: &str) {
    WEBHOOK_ATTEMPTS.with_label_values(&[outcome]).inc();
}

/// Counts queued webhook deliveries.
pub fn webhook_queued(count: usize) {
    WEBHOOK_QUEUED.inc_by(count as u64);
}

/// Counts one abandoned webhook delivery.
pub fn webhook_abandoned() {
    WEBHOOK_ABANDONED.inc();
}
