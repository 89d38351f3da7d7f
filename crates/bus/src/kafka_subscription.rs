//! One consumer-group member on Kafka.
//!
//! librdkafka serves rebalances only while the consumer is polled, and a member that does not
//! answer one holds up its whole group. So each subscription has a pump on its own thread that
//! polls all the time and hands messages to `next()` through a bounded inbox; when the inbox is
//! full the pump pauses the owned partitions (polling then serves only events) and resumes them
//! once `next()` has made room.
//!
//! Rebalances are handled here rather than by librdkafka's default so that each partition
//! starts at an exact offset, resolved before the assignment is applied: the group's committed
//! offset, else the beginning or the current end. Those lookups wait on the network, which is
//! why the pump has its own thread.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tracing::{debug, warn};

use crate::kafka::{REQUEST_TIMEOUT, classify, forward_log, millis, unavailable};
use crate::kafka_inbox::Inbox;
use crate::{BusError, KafkaSettings, Message, StartFrom, SubscribeOptions, Subscription};

type GroupConsumer = StreamConsumer<MemberContext>;

/// A member of a consumer group on one Kafka topic. Dropping it stops the pump, which closes
/// the consumer: the member leaves the group and its partitions move at once.
pub(crate) struct KafkaSubscription {
    topic: String,
    brokers: String,
    consumer: Arc<OwnedConsumer>,
    inbox: Arc<Inbox>,
    /// Dropping the sender stops the pump.
    _stop_pump: oneshot::Sender<()>,
}

/// The librdkafka consumer. Closing it (leaving the group) blocks, so whoever drops the last
/// handle on the async reactor moves the close to a blocking thread.
struct OwnedConsumer(Option<GroupConsumer>);

impl Deref for OwnedConsumer {
    type Target = GroupConsumer;

    fn deref(&self) -> &GroupConsumer {
        self.0
            .as_ref()
            .expect("the consumer is only taken out when dropped")
    }
}

impl Drop for OwnedConsumer {
    fn drop(&mut self) {
        if let Some(consumer) = self.0.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(consumer))),
                Err(_) => drop(consumer),
            }
        }
    }
}

/// Consumer context: logs to `tracing`, resolves start offsets on assignment and keeps the
/// inbox's view of the owned partitions.
struct MemberContext {
    topic: String,
    start_from: StartFrom,
    inbox: Arc<Inbox>,
}

impl ClientContext for MemberContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        forward_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        warn!(target: "librdkafka", topic = %self.topic, error = %error, reason, "kafka consumer error");
    }
}

impl ConsumerContext for MemberContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        event: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let ours = partitions_of(partitions, &self.topic);
        let applied = match event {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.resolve_start_offsets(consumer, partitions);
                let applied = if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                };
                self.inbox.assign(&ours);
                debug!(topic = %self.topic, partitions = ?ours, "partitions assigned");
                applied
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // Forget them first, so nothing of these partitions is handed out any more.
                self.inbox.revoke(&ours);
                debug!(topic = %self.topic, partitions = ?ours, "partitions revoked");
                if cooperative {
                    consumer.incremental_unassign(partitions)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                // librdkafka's contract: on a failed rebalance, drop the whole assignment.
                warn!(topic = %self.topic, error = %RDKafkaErrorCode::from(other), "rebalance failed");
                self.inbox.revoke(&self.inbox.owned_partitions());
                consumer.unassign()
            }
        };
        if let Err(error) = applied {
            warn!(topic = %self.topic, error = %error, "applying a rebalance failed");
        }
    }
}

impl MemberContext {
    /// Sets the offset each assigned partition starts at: the committed one, else per
    /// `start_from`. `Latest` becomes the current end offset, so everything published after the
    /// assignment is seen. If the lookups fail, librdkafka resolves the offsets itself.
    fn resolve_start_offsets(
        &self,
        consumer: &BaseConsumer<Self>,
        partitions: &mut TopicPartitionList,
    ) {
        if partitions.count() == 0 {
            return;
        }
        let committed = match consumer.committed_offsets(partitions.clone(), REQUEST_TIMEOUT) {
            Ok(committed) => committed,
            Err(error) => {
                warn!(topic = %self.topic, error = %error, "reading committed offsets failed");
                return;
            }
        };
        for element in committed.elements_for_topic(&self.topic) {
            let partition = element.partition();
            let start = match (element.offset(), self.start_from) {
                (Offset::Offset(offset), _) => Offset::Offset(offset),
                (_, StartFrom::Earliest) => Offset::Beginning,
                (_, StartFrom::Latest) => {
                    match consumer.fetch_watermarks(&self.topic, partition, REQUEST_TIMEOUT) {
                        Ok((_, high)) => Offset::Offset(high),
                        Err(error) => {
                            warn!(topic = %self.topic, partition, error = %error, "reading the end offset failed");
                            Offset::End
                        }
                    }
                }
            };
            if let Err(error) = partitions.set_partition_offset(&self.topic, partition, start) {
                warn!(topic = %self.topic, partition, error = %error, "setting a start offset failed");
            }
        }
    }
}

fn partitions_of(list: &TopicPartitionList, topic: &str) -> Vec<i32> {
    list.elements_for_topic(topic)
        .iter()
        .map(|element| element.partition())
        .collect()
}

impl KafkaSubscription {
    /// Creates a group member on `topic` and returns once it has its first assignment.
    pub(crate) async fn join(
        settings: &KafkaSettings,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Self, BusError> {
        let inbox = Arc::new(Inbox::default());
        let context = MemberContext {
            topic: topic.to_owned(),
            start_from: options.start_from,
            inbox: inbox.clone(),
        };
        let session = settings.session_timeout;
        let consumer: GroupConsumer = settings
            .client_config()
            .set("group.id", &options.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set(
                "auto.offset.reset",
                match options.start_from {
                    StartFrom::Earliest => "earliest",
                    StartFrom::Latest => "latest",
                },
            )
            .set("session.timeout.ms", millis(session))
            .set(
                "heartbeat.interval.ms",
                millis((session / 3).max(Duration::from_millis(1))),
            )
            // An eager assignor: every rebalance hands out a whole assignment to resolve.
            .set("partition.assignment.strategy", "roundrobin")
            .set("allow.auto.create.topics", "false")
            .create_with_context(context)
            .map_err(|error| BusError::Other(format!("cannot create a kafka consumer: {error}")))?;
        consumer
            .subscribe(&[topic])
            .map_err(|error| classify(&settings.brokers, Some(topic), error))?;

        let consumer = Arc::new(OwnedConsumer(Some(consumer)));
        let (stop_pump, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Handle::current();
        let pump = pump(
            consumer.clone(),
            inbox.clone(),
            settings.brokers.clone(),
            stopped,
        );
        std::thread::Builder::new()
            .name("bus-consumer".to_owned())
            .spawn(move || runtime.block_on(pump))
            .map_err(|error| BusError::Other(format!("cannot start a consumer thread: {error}")))?;

        let subscription = KafkaSubscription {
            topic: topic.to_owned(),
            brokers: settings.brokers.clone(),
            consumer,
            inbox,
            _stop_pump: stop_pump,
        };
        // Joining takes a group round trip, a sync, and the broker's initial rebalance delay;
        // waiting for a member that died without leaving takes up to a session.
        let patience = REQUEST_TIMEOUT + 2 * session;
        subscription
            .wait_for_assignment(&options.group, patience)
            .await?;
        Ok(subscription)
    }

    async fn wait_for_assignment(&self, group: &str, patience: Duration) -> Result<(), BusError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if self.inbox.joined()? {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, self.inbox.changed())
                .await
                .is_err()
            {
                return Err(unavailable(
                    &self.brokers,
                    format!(
                        "group {group} assigned no partitions of {} within {patience:?}",
                        self.topic
                    ),
                ));
            }
        }
    }
}

/// Polls the consumer until the subscription is dropped: hands messages to the inbox, pauses
/// fetching while the inbox is full, and lets rebalance callbacks run.
async fn pump(
    consumer: Arc<OwnedConsumer>,
    inbox: Arc<Inbox>,
    brokers: String,
    mut stop: oneshot::Receiver<()>,
) {
    let mut paused = false;
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            () = inbox.rebalanced() => {
                // librdkafka starts new partitions unpaused; make them match the inbox.
                set_paused(&consumer, &inbox, paused);
            }
            () = inbox.room(), if paused => {
                if !inbox.is_full() {
                    paused = false;
                    set_paused(&consumer, &inbox, false);
                }
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    if inbox.push(to_message(&message)) {
                        paused = true;
                        set_paused(&consumer, &inbox, true);
                    }
                }
                Err(KafkaError::MessageConsumptionFatal(code)) => {
                    let failure = classify(&brokers, None, KafkaError::MessageConsumptionFatal(code));
                    warn!(error = %failure, "kafka consumer stopped");
                    inbox.fail(BusError::Closed(failure.to_string()));
                    break;
                }
                // librdkafka retries on its own; the member keeps going.
                Err(error) => warn!(error = %error, "kafka consume error"),
            }
        }
    }
    // Leaving the group blocks; this thread is the right place for it when it is the last owner.
    if let Ok(mut owned) = Arc::try_unwrap(consumer) {
        drop(owned.0.take());
    }
}

fn set_paused(consumer: &GroupConsumer, inbox: &Inbox, paused: bool) {
    let topic = &consumer.context().topic;
    let owned = inbox.owned_partitions();
    if owned.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for partition in owned {
        list.add_partition(topic, partition);
    }
    let result = if paused {
        consumer.pause(&list)
    } else {
        consumer.resume(&list)
    };
    if let Err(error) = result {
        warn!(topic, paused, error = %error, "pausing or resuming partitions failed");
    }
}

fn to_message(message: &BorrowedMessage<'_>) -> Message {
    Message {
        topic: message.topic().to_owned(),
        key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
        payload: Bytes::copy_from_slice(message.payload().unwrap_or_default()),
        partition: message.partition(),
        offset: message.offset(),
    }
}

#[async_trait::async_trait]
impl Subscription for KafkaSubscription {
    async fn next(&mut self) -> Result<Message, BusError> {
        loop {
            if let Some(message) = self.inbox.pop()? {
                return Ok(message);
            }
            // A permit stored by a push since `pop` makes this return at once.
            self.inbox.changed().await;
        }
    }

    async fn commit(&mut self, message: &Message) -> Result<(), BusError> {
        if message.topic != self.topic {
            return Err(BusError::InvalidArgument(format!(
                "a subscription to {} cannot commit a message of {}",
                self.topic, message.topic
            )));
        }
        let revoked = || BusError::Revoked {
            topic: self.topic.clone(),
            partition: message.partition,
        };
        if !self.inbox.owns(message.partition) {
            return Err(revoked());
        }
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(
            &self.topic,
            message.partition,
            Offset::Offset(message.offset + 1),
        )
        .map_err(|error| BusError::InvalidArgument(error.to_string()))?;
        let consumer = self.consumer.clone();
        let committed =
            tokio::task::spawn_blocking(move || consumer.commit(&list, CommitMode::Sync))
                .await
                .map_err(|error| BusError::Other(format!("commit task failed: {error}")))?;
        committed.map_err(|error| match error.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::FencedInstanceId,
            ) => revoked(),
            _ => classify(&self.brokers, Some(&self.topic), error),
        })
    }
}
