//! Prometheus metrics of the consume loop.

use std::sync::LazyLock;

use prometheus::IntCounterVec;

fn counter_vec(name: &str, help: &str) -> IntCounterVec {
    let counter = IntCounterVec::new(prometheus::Opts::new(name, help), &["topic"])
        .expect("metric definition is valid");
    prometheus::register(Box::new(counter.clone())).expect("metric is registered once");
    counter
}

static RETRIED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "livecast_bus_retries_total",
        "Attempts at a message that failed and will be tried again, by topic.",
    )
});

static DEAD_LETTERS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "livecast_bus_dead_letters_total",
        "Messages given up on after their retry budget and set aside in livecast.dead-letters, \
         by the topic they were read from.",
    )
});

/// Counts a failed attempt that will be retried.
pub(crate) fn retried(topic: &str) {
    RETRIED.with_label_values(&[topic]).inc();
}

/// Counts a message set aside.
pub(crate) fn dead_lettered(topic: &str) {
    DEAD_LETTERS.with_label_values(&[topic]).inc();
}
