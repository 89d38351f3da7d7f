//! The production event bus on Kafka through `rdkafka` (bundled librdkafka).
//!
//! Publishing goes through one idempotent `FutureProducer` with `acks=all`; each subscription
//! is its own group member (see `kafka_subscription`). Calls into librdkafka that wait on the
//! network (metadata, commits, closing a consumer) run on blocking threads, never on the
//! async reactor.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tracing::{debug, error, info, warn};

use crate::kafka_subscription::KafkaSubscription;
use crate::{
    BusError, EventBus, KafkaSettings, SubscribeOptions, Subscription, partition_count,
    validate_group, validate_topic,
};

/// How long `check()` waits for the brokers, so `/readyz` answers within a few seconds.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// Upper bound of admin and metadata requests.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Event bus on a Kafka cluster (or any broker speaking the Kafka protocol).
pub struct KafkaBus {
    settings: KafkaSettings,
    producer: FutureProducer<BusClientContext>,
    admin: AdminClient<BusClientContext>,
}

impl fmt::Debug for KafkaBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaBus")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl KafkaBus {
    /// Creates the producer and admin clients. librdkafka connects in the background, so this
    /// succeeds even when no broker answers; [`EventBus::check`] tells whether they do.
    pub fn connect(settings: KafkaSettings) -> Result<Self, BusError> {
        let producer = settings
            .client_config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", millis(settings.publish_timeout))
            // Kafka's Java default: the in-process bus uses the same hash.
            .set("partitioner", "murmur2_random")
            // A typo in a topic name must fail, not create a topic.
            .set("allow.auto.create.topics", "false")
            .create_with_context(BusClientContext)
            .map_err(|error| client_creation_error("producer", error))?;
        let admin = settings
            .client_config()
            .create_with_context(BusClientContext)
            .map_err(|error| client_creation_error("admin client", error))?;
        Ok(KafkaBus {
            settings,
            producer,
            admin,
        })
    }

    /// The settings this bus was opened with.
    pub fn settings(&self) -> &KafkaSettings {
        &self.settings
    }

    fn unavailable(&self, reason: impl fmt::Display) -> BusError {
        unavailable(&self.settings.brokers, reason)
    }

    /// The partition count of `topic`, or `UnknownTopic`.
    async fn partition_count(&self, topic: &str) -> Result<usize, BusError> {
        let producer = self.producer.clone();
        let name = topic.to_owned();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&name), REQUEST_TIMEOUT)
        })
        .await
        .map_err(|error| BusError::Other(format!("metadata task failed: {error}")))?
        .map_err(|error| classify(&self.settings.brokers, Some(topic), error))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(BusError::UnknownTopic {
                topic: topic.to_owned(),
            });
        };
        match found.error() {
            None if !found.partitions().is_empty() => Ok(found.partitions().len()),
            None => Err(BusError::UnknownTopic {
                topic: topic.to_owned(),
            }),
            Some(code) => Err(classify(
                &self.settings.brokers,
                Some(topic),
                KafkaError::MetadataFetch(code.into()),
            )),
        }
    }
}

#[async_trait::async_trait]
impl EventBus for KafkaBus {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), BusError> {
        validate_topic(topic)?;
        let count = partition_count(topic, partitions)?;
        let new_topic = NewTopic::new(
            topic,
            count,
            TopicReplication::Fixed(self.settings.replication_factor),
        );
        let options = AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT));
        let results = self
            .admin
            .create_topics([&new_topic], &options)
            .await
            .map_err(|error| classify(&self.settings.brokers, Some(topic), error))?;
        for result in results {
            match result {
                Ok(_) => info!(topic, partitions = count, "topic created"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    let existing_count = self.partition_count(topic).await?;
                    if existing_count != count as usize {
                        warn!(
                            topic,
                            existing_count,
                            requested = count,
                            "topic exists with another partition count"
                        );
                    }
                }
                Err((_, code)) => {
                    return Err(classify(
                        &self.settings.brokers,
                        Some(topic),
                        KafkaError::AdminOp(code),
                    ));
                }
            }
        }
        // Creation is asynchronous on some brokers: return once the topic can be used.
        self.partition_count(topic).await.map(drop)
    }

    async fn publish(&self, topic: &str, key: &str, payload: Bytes) -> Result<(), BusError> {
        validate_topic(topic)?;
        let record = FutureRecord::to(topic).key(key).payload(payload.as_ref());
        match self
            .producer
            .send(record, self.settings.publish_timeout)
            .await
        {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(classify(&self.settings.brokers, Some(topic), error)),
        }
    }

    async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        validate_topic(topic)?;
        validate_group(&options.group)?;
        // Same answer as the in-process bus, instead of a consumer waiting for a topic forever.
        self.partition_count(topic).await?;
        let subscription = KafkaSubscription::join(&self.settings, topic, options).await?;
        Ok(Box::new(subscription))
    }

    async fn check(&self) -> Result<(), BusError> {
        let producer = self.producer.clone();
        let answer = tokio::task::spawn_blocking(move || {
            producer.client().fetch_metadata(None, CHECK_TIMEOUT)
        });
        // The blocking call honours its own timeout; this one bounds a saturated pool.
        match tokio::time::timeout(CHECK_TIMEOUT * 2, answer).await {
            Ok(Ok(Ok(metadata))) if !metadata.brokers().is_empty() => Ok(()),
            Ok(Ok(Ok(_))) => Err(self.unavailable("the cluster reported no brokers")),
            Ok(Ok(Err(error))) => Err(self.unavailable(error)),
            Ok(Err(error)) => Err(BusError::Other(format!("metadata task failed: {error}"))),
            Err(_) => Err(self.unavailable("no answer within the check timeout")),
        }
    }
}

/// librdkafka wants durations as whole milliseconds in strings.
pub(crate) fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

pub(crate) fn unavailable(brokers: &str, reason: impl fmt::Display) -> BusError {
    BusError::Unavailable {
        brokers: brokers.to_owned(),
        reason: reason.to_string(),
    }
}

fn client_creation_error(client: &str, error: KafkaError) -> BusError {
    match error {
        KafkaError::ClientConfig(..) => {
            BusError::InvalidArgument(format!("kafka {client} configuration: {error}"))
        }
        other => BusError::Other(format!("cannot create the kafka {client}: {other}")),
    }
}

/// Sorts a librdkafka error into the bus's kinds.
pub(crate) fn classify(brokers: &str, topic: Option<&str>, error: KafkaError) -> BusError {
    use RDKafkaErrorCode as Code;
    match (error.rdkafka_error_code(), topic) {
        (Some(Code::UnknownTopicOrPartition | Code::UnknownTopic), Some(topic)) => {
            BusError::UnknownTopic {
                topic: topic.to_owned(),
            }
        }
        (
            Some(Code::InvalidPartitions | Code::InvalidReplicationFactor | Code::InvalidTopic),
            _,
        ) => BusError::InvalidArgument(error.to_string()),
        (
            Some(
                Code::MessageTimedOut
                | Code::OperationTimedOut
                | Code::RequestTimedOut
                | Code::BrokerTransportFailure
                | Code::Resolve
                | Code::AllBrokersDown
                | Code::BrokerNotAvailable
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::NetworkException
                | Code::CoordinatorLoadInProgress
                | Code::CoordinatorNotAvailable
                | Code::NotCoordinator
                | Code::WaitingForCoordinator
                | Code::NotController,
            ),
            _,
        ) => unavailable(brokers, error),
        _ => BusError::Other(error.to_string()),
    }
}

/// Routes librdkafka's log lines into `tracing`.
pub(crate) fn forward_log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => error!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility, "{message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            info!(target: "librdkafka", facility, "{message}")
        }
        RDKafkaLogLevel::Debug => debug!(target: "librdkafka", facility, "{message}"),
    }
}

/// Client context of the producer and admin client: logs go to `tracing`.
pub(crate) struct BusClientContext;

impl ClientContext for BusClientContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // librdkafka retries on its own; callers see failures through their results.
        warn!(target: "librdkafka", error = %error, reason, "kafka client error");
    }
}
