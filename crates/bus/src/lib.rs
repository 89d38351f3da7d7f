//! The event bus port of Livecast: keyed, partitioned topics with consumer groups and
//! at-least-once delivery.
//!
//! Services hold an `Arc<dyn EventBus>` opened from a [`BusConfig`]:
//! - [`InProcessBus`] keeps partitioned logs in memory, for `make run` with every service in one
//!   process and for unit tests;
//! - [`KafkaBus`] talks to Kafka (or any Kafka-protocol broker) through `rdkafka`.
//!
//! Both give the same guarantees, checked by one conformance suite (`tests/conformance`):
//! - a message is published once it is durable; messages with the same key go to the same
//!   partition and keep their order;
//! - every consumer group sees every message; inside a group each partition belongs to one
//!   member at a time and partitions move when members join or leave;
//! - offsets are committed only by [`Subscription::commit`]; whatever a member received but did
//!   not commit is delivered again to the member that owns the partition next.
#![forbid(unsafe_code)]

mod config;
mod consume;
mod error;
mod in_process;
mod kafka;
mod kafka_inbox;
mod kafka_subscription;
mod metrics;

use std::sync::Arc;

pub use config::{BusConfig, KafkaSettings};
pub use consume::{
    consume, consume_from, consume_with_give_up, ensure_topics, subscribe_until_ready,
};
pub use error::BusError;
pub use in_process::{DEFAULT_RETENTION_PER_PARTITION, InProcessBus};
pub use kafka::KafkaBus;

/// One message read from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic the message was published to.
    pub topic: String,
    /// The key it was published with; it chose the partition.
    pub key: String,
    /// The opaque payload (protobuf in Livecast).
    pub payload: bytes::Bytes,
    /// The partition of `topic` that holds the message.
    pub partition: i32,
    /// The position of the message in its partition.
    pub offset: i64,
}

/// Where a consumer group starts reading a partition for which it has committed no offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartFrom {
    /// The oldest message still retained.
    #[default]
    Earliest,
    /// The end of the partition at the moment the member receives it: only messages published
    /// afterwards. For partitions assigned when the subscription is created, that moment is
    /// before [`EventBus::subscribe`] returns.
    Latest,
}

/// How a subscription joins its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// The consumer group. Members of one group share the partitions; different groups each
    /// receive every message.
    pub group: String,
    /// Where to start on partitions the group has committed nothing for.
    pub start_from: StartFrom,
}

impl SubscribeOptions {
    /// Options for `group`, starting from the earliest retained message.
    pub fn earliest(group: impl Into<String>) -> Self {
        SubscribeOptions {
            group: group.into(),
            start_from: StartFrom::Earliest,
        }
    }

    /// Options for `group`, starting from the end of each partition.
    pub fn latest(group: impl Into<String>) -> Self {
        SubscribeOptions {
            group: group.into(),
            start_from: StartFrom::Latest,
        }
    }
}

/// The event bus port: publish keyed messages, read them back in consumer groups.
#[async_trait::async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `topic` with `partitions` partitions if it does not exist yet. Calling it again is
    /// fine; an existing topic keeps its partition count.
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), BusError>;

    /// Appends a message to the partition chosen by `key`. Returns only once the message is
    /// durable (Kafka: acknowledged by all in-sync replicas, through an idempotent producer).
    /// Messages with the same key land on the same partition, in publish order.
    async fn publish(&self, topic: &str, key: &str, payload: bytes::Bytes) -> Result<(), BusError>;

    /// Joins the consumer group `options.group` on `topic`. Returns once the member has
    /// received its first partition assignment, so messages published afterwards are seen even
    /// with [`StartFrom::Latest`].
    async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError>;

    /// Answers whether the backend is reachable (for `/readyz`); returns within a few seconds.
    async fn check(&self) -> Result<(), BusError>;
}

/// A member of a consumer group on one topic. Dropping it leaves the group: its partitions go
/// to the remaining members, which resume at the committed offsets.
#[async_trait::async_trait]
pub trait Subscription: Send {
    /// Waits for the next message from the partitions this member owns. Cancel-safe: a message
    /// is handed out only when the returned future completes.
    async fn next(&mut self) -> Result<Message, BusError>;

    /// Commits `message.offset + 1` for the message's partition: the group will not see this
    /// message or earlier ones of that partition again. Fails with [`BusError::Revoked`] when
    /// the partition has moved to another member (the message will be delivered there).
    async fn commit(&mut self, message: &Message) -> Result<(), BusError>;
}

/// Opens the bus `config` describes. Opening Kafka does not contact the brokers yet; call
/// [`EventBus::check`] to find out whether they answer.
pub async fn open(config: &BusConfig) -> Result<Arc<dyn EventBus>, BusError> {
    match config {
        BusConfig::InProcess => Ok(Arc::new(InProcessBus::new())),
        BusConfig::Kafka { .. } => {
            let settings = KafkaSettings::from_config(config)?;
            Ok(Arc::new(KafkaBus::connect(settings)?))
        }
    }
}

/// Kafka's rules for topic names, applied by both implementations so a name that works
/// in-process also works on Kafka.
/// A topic's partition count as Kafka takes it (1 to `i32::MAX`).
pub(crate) fn partition_count(topic: &str, partitions: u32) -> Result<i32, BusError> {
    i32::try_from(partitions)
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| {
            BusError::InvalidArgument(format!(
                "topic {topic} needs between 1 and {} partitions, not {partitions}",
                i32::MAX
            ))
        })
}

pub(crate) fn validate_topic(topic: &str) -> Result<(), BusError> {
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if topic.is_empty() || topic.len() > 249 || topic == "." || topic == ".." {
        return Err(BusError::InvalidArgument(format!(
            "topic name {topic:?} must have 1 to 249 characters and not be \".\" or \"..\""
        )));
    }
    if !topic.chars().all(legal) {
        return Err(BusError::InvalidArgument(format!(
            "topic name {topic:?} may only contain ASCII letters, digits, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// Group names end up in broker requests and logs; an empty one would mean "no group".
pub(crate) fn validate_group(group: &str) -> Result<(), BusError> {
    if group.is_empty() || group.chars().any(char::is_control) {
        return Err(BusError::InvalidArgument(format!(
            "consumer group {group:?} must be non-empty and free of control characters"
        )));
    }
    Ok(())
}

/// The `/readyz` check of a event-bus: it answers when [`EventBus::check`] does.
pub fn readiness_check(backend: Arc<dyn EventBus>) -> Arc<dyn livecast_core::ReadinessCheck> {
    Arc::new(Readiness(backend))
}

struct Readiness(Arc<dyn EventBus>);

#[async_trait::async_trait]
impl livecast_core::ReadinessCheck for Readiness {
    fn name(&self) -> &str {
        "event-bus"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic("livecast.stream-events").is_ok());
        assert!(validate_topic("a_b-c.1").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic(bad), Err(BusError::InvalidArgument(_))),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn group_names_must_be_non_empty() {
        assert!(validate_group("edge-eu-1").is_ok());
        assert!(validate_group("").is_err());
        assert!(validate_group("a\nb").is_err());
    }
}
