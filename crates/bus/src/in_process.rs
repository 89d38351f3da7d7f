//! The embedded event bus: per-topic partitioned logs in memory, consumer groups with committed
//! offsets, and partitions handed out to group members as they join and leave.
//!
//! One mutex per topic guards its logs and groups; critical sections never await. Waiting
//! subscribers sleep on the topic's [`Notify`], woken by every publish and every rebalance.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use bytes::Bytes;
use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::{
    BusError, EventBus, Message, StartFrom, SubscribeOptions, Subscription, partition_count,
    validate_group, validate_topic,
};

/// Messages kept per partition by [`InProcessBus::new`]; older ones are dropped.
pub const DEFAULT_RETENTION_PER_PARTITION: usize = 100_000;

/// In-memory event bus with the same at-least-once semantics as Kafka, for single-process runs
/// and tests. Cloning is not needed: share it as `Arc<dyn EventBus>`.
#[derive(Debug)]
pub struct InProcessBus {
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    retention_per_partition: usize,
}

#[derive(Debug)]
struct Topic {
    name: String,
    state: Mutex<TopicState>,
    /// Woken on every publish and rebalance; subscribers then re-check their partitions.
    changed: Notify,
}

#[derive(Debug)]
struct TopicState {
    partitions: Vec<PartitionLog>,
    groups: HashMap<String, Group>,
    next_member_id: u64,
}

/// The retained tail of one partition: offsets `first_offset..end_offset()`.
#[derive(Debug, Default)]
struct PartitionLog {
    first_offset: i64,
    entries: VecDeque<(String, Bytes)>,
}

impl PartitionLog {
    fn end_offset(&self) -> i64 {
        self.first_offset + self.entries.len() as i64
    }
}

#[derive(Debug)]
struct Group {
    /// Per partition, the offset of the next message the group has not committed.
    committed: Vec<Option<i64>>,
    /// Members by id; ids grow with join order, which makes assignments deterministic.
    members: BTreeMap<u64, Member>,
}

#[derive(Debug)]
struct Member {
    start_from: StartFrom,
    /// The partitions this member owns and, for each, the offset it reads next.
    positions: BTreeMap<i32, i64>,
    /// Partition the next scan starts at, so one busy partition cannot starve the others.
    cursor: i32,
}

impl Default for InProcessBus {
    fn default() -> Self {
        InProcessBus::new()
    }
}

impl InProcessBus {
    /// A bus keeping the last [`DEFAULT_RETENTION_PER_PARTITION`] messages of each partition.
    pub fn new() -> Self {
        InProcessBus::with_retention(DEFAULT_RETENTION_PER_PARTITION)
    }

    /// A bus keeping the last `messages_per_partition` messages (at least one) of each partition.
    pub fn with_retention(messages_per_partition: usize) -> Self {
        InProcessBus {
            topics: RwLock::new(HashMap::new()),
            retention_per_partition: messages_per_partition.max(1),
        }
    }

    fn topic(&self, topic: &str) -> Result<Arc<Topic>, BusError> {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        topics
            .get(topic)
            .cloned()
            .ok_or_else(|| BusError::UnknownTopic {
                topic: topic.to_owned(),
            })
    }
}

impl Topic {
    fn lock(&self) -> MutexGuard<'_, TopicState> {
        // A panic elsewhere cannot leave a half-applied change: every critical section either
        // completes its update or makes none.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl EventBus for InProcessBus {
    async fn ensure_topic(&self, topic: &str, partitions: u32) -> Result<(), BusError> {
        validate_topic(topic)?;
        let count = partition_count(topic, partitions)?;
        let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = topics.get(topic) {
            let existing_count = existing.lock().partitions.len();
            if existing_count != count as usize {
                warn!(
                    topic,
                    existing_count,
                    requested = count,
                    "topic exists with another partition count"
                );
            }
            return Ok(());
        }
        let state = TopicState {
            partitions: (0..count).map(|_| PartitionLog::default()).collect(),
            groups: HashMap::new(),
            next_member_id: 0,
        };
        topics.insert(
            topic.to_owned(),
            Arc::new(Topic {
                name: topic.to_owned(),
                state: Mutex::new(state),
                changed: Notify::new(),
            }),
        );
        debug!(topic, partitions = count, "topic created");
        Ok(())
    }

    async fn publish(&self, topic: &str, key: &str, payload: Bytes) -> Result<(), BusError> {
        let topic = self.topic(topic)?;
        {
            let mut state = topic.lock();
            let partition = partition_for_key(key.as_bytes(), state.partitions.len());
            let log = &mut state.partitions[partition as usize];
            log.entries.push_back((key.to_owned(), payload));
            if log.entries.len() > self.retention_per_partition {
                log.entries.pop_front();
                log.first_offset += 1;
            }
        }
        topic.changed.notify_waiters();
        Ok(())
    }

    async fn subscribe(
        &self,
        topic: &str,
        options: SubscribeOptions,
    ) -> Result<Box<dyn Subscription>, BusError> {
        validate_group(&options.group)?;
        let topic = self.topic(topic)?;
        let member_id = {
            let mut guard = topic.lock();
            let state = &mut *guard;
            let member_id = state.next_member_id;
            state.next_member_id += 1;
            let partition_count = state.partitions.len();
            let group = state
                .groups
                .entry(options.group.clone())
                .or_insert_with(|| Group {
                    committed: vec![None; partition_count],
                    members: BTreeMap::new(),
                });
            group.members.insert(
                member_id,
                Member {
                    start_from: options.start_from,
                    positions: BTreeMap::new(),
                    cursor: 0,
                },
            );
            rebalance(&state.partitions, group);
            member_id
        };
        topic.changed.notify_waiters();
        debug!(topic = %topic.name, group = %options.group, member_id, "member joined");
        Ok(Box::new(InProcessSubscription {
            topic,
            group: options.group,
            member_id,
        }))
    }

    async fn check(&self) -> Result<(), BusError> {
        Ok(())
    }
}

/// Deals the partitions round-robin over the members in join order. A member keeps its read
/// position on partitions it still owns; a partition that changes hands starts at the group's
/// committed offset, so whatever the previous owner did not commit is delivered again.
fn rebalance(partitions: &[PartitionLog], group: &mut Group) {
    let member_ids: Vec<u64> = group.members.keys().copied().collect();
    if member_ids.is_empty() {
        return;
    }
    let owner_of = |partition: usize| member_ids[partition % member_ids.len()];
    for (id, member) in group.members.iter_mut() {
        member
            .positions
            .retain(|partition, _| owner_of(*partition as usize) == *id);
    }
    for (partition, log) in partitions.iter().enumerate() {
        let Some(member) = group.members.get_mut(&owner_of(partition)) else {
            continue;
        };
        let start = match (group.committed[partition], member.start_from) {
            (Some(committed), _) => committed.max(log.first_offset),
            (None, StartFrom::Earliest) => log.first_offset,
            (None, StartFrom::Latest) => log.end_offset(),
        };
        member.positions.entry(partition as i32).or_insert(start);
    }
}

/// A member of a consumer group on an [`InProcessBus`] topic.
#[derive(Debug)]
struct InProcessSubscription {
    topic: Arc<Topic>,
    group: String,
    member_id: u64,
}

impl InProcessSubscription {
    /// Hands out the next message of an owned partition, if any, advancing that position.
    fn take_next(&self) -> Result<Option<Message>, BusError> {
        let mut guard = self.topic.lock();
        let state = &mut *guard;
        let member = state
            .groups
            .get_mut(&self.group)
            .and_then(|group| group.members.get_mut(&self.member_id))
            .ok_or_else(|| BusError::Closed("the member has left its group".to_owned()))?;
        let cursor = member.cursor;
        let scan_order: Vec<i32> = (member.positions.range(cursor..))
            .chain(member.positions.range(..cursor))
            .map(|(partition, _)| *partition)
            .collect();
        for partition in scan_order {
            let log = &state.partitions[partition as usize];
            let Some(position) = member.positions.get_mut(&partition) else {
                continue;
            };
            if *position < log.first_offset {
                warn!(
                    topic = %self.topic.name, group = %self.group, partition,
                    lost = log.first_offset - *position,
                    "messages dropped by retention before they were read"
                );
                *position = log.first_offset;
            }
            if *position < log.end_offset() {
                let (key, payload) = &log.entries[(*position - log.first_offset) as usize];
                let message = Message {
                    topic: self.topic.name.clone(),
                    key: key.clone(),
                    payload: payload.clone(),
                    partition,
                    offset: *position,
                };
                *position += 1;
                member.cursor = partition + 1;
                return Ok(Some(message));
            }
        }
        Ok(None)
    }
}

#[async_trait::async_trait]
impl Subscription for InProcessSubscription {
    async fn next(&mut self) -> Result<Message, BusError> {
        loop {
            // Register for wake-ups before looking, so a publish between the look and the
            // wait is not missed.
            let changed = self.topic.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(message) = self.take_next()? {
                return Ok(message);
            }
            changed.await;
        }
    }

    async fn commit(&mut self, message: &Message) -> Result<(), BusError> {
        if message.topic != self.topic.name {
            return Err(BusError::InvalidArgument(format!(
                "a subscription to {} cannot commit a message of {}",
                self.topic.name, message.topic
            )));
        }
        let mut guard = self.topic.lock();
        let state = &mut *guard;
        let end_offset = usize::try_from(message.partition)
            .ok()
            .and_then(|partition| state.partitions.get(partition))
            .map(PartitionLog::end_offset);
        if !end_offset.is_some_and(|end| (0..end).contains(&message.offset)) {
            return Err(BusError::InvalidArgument(format!(
                "topic {} has no message at partition {} offset {}",
                self.topic.name, message.partition, message.offset
            )));
        }
        let group = state
            .groups
            .get_mut(&self.group)
            .ok_or_else(|| BusError::Closed("the member has left its group".to_owned()))?;
        let owns_partition = group
            .members
            .get(&self.member_id)
            .is_some_and(|member| member.positions.contains_key(&message.partition));
        if !owns_partition {
            return Err(BusError::Revoked {
                topic: self.topic.name.clone(),
                partition: message.partition,
            });
        }
        group.committed[message.partition as usize] = Some(message.offset + 1);
        Ok(())
    }
}

impl Drop for InProcessSubscription {
    fn drop(&mut self) {
        {
            let mut guard = self.topic.lock();
            let state = &mut *guard;
            if let Some(group) = state.groups.get_mut(&self.group) {
                group.members.remove(&self.member_id);
                rebalance(&state.partitions, group);
            }
        }
        self.topic.changed.notify_waiters();
        debug!(topic = %self.topic.name, group = %self.group, member_id = self.member_id, "member left");
    }
}

/// Kafka's default partitioner (Java client, and librdkafka's `murmur2_random` for non-empty
/// keys): the positive part of murmur2 of the key, modulo the partition count. Using the same
/// function keeps a key on the same partition number on both buses.
pub(crate) fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    (positive as usize % partitions.max(1)) as i32
}

/// MurmurHash2 (32 bit) with the seed Kafka uses.
fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    let mut hash = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        hash = hash.wrapping_mul(M) ^ k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        for (index, byte) in tail.iter().enumerate() {
            hash ^= u32::from(*byte) << (8 * index);
        }
        hash = hash.wrapping_mul(M);
    }
    hash ^= hash >> 13;
    hash = hash.wrapping_mul(M);
    hash ^ (hash >> 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from the Java client's own tests of `Utils.murmur2`.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input) as i32, expected, "{:?}", input);
        }
    }

    #[test]
    fn keys_map_to_valid_stable_partitions() {
        for key in ["stream-1", "stream-2", ""] {
            let partition = partition_for_key(key.as_bytes(), 7);
            assert!((0..7).contains(&partition));
            assert_eq!(partition, partition_for_key(key.as_bytes(), 7));
        }
    }

    #[tokio::test]
    async fn retention_drops_the_oldest_messages() {
        let bus = InProcessBus::with_retention(3);
        bus.ensure_topic("t", 1).await.unwrap();
        for i in 0..5 {
            bus.publish("t", "k", Bytes::from(vec![i])).await.unwrap();
        }
        let mut subscription = bus
            .subscribe("t", SubscribeOptions::earliest("g"))
            .await
            .unwrap();
        let first = subscription.next().await.unwrap();
        assert_eq!((first.offset, first.payload.as_ref()), (2, &[2u8][..]));
    }

    #[tokio::test]
    async fn unknown_topics_and_bad_arguments_are_typed_errors() {
        let bus = InProcessBus::new();
        let missing = bus.publish("nope", "k", Bytes::new()).await;
        assert!(matches!(missing, Err(BusError::UnknownTopic { .. })));
        let missing = bus.subscribe("nope", SubscribeOptions::earliest("g")).await;
        assert!(matches!(missing, Err(BusError::UnknownTopic { .. })));
        assert!(matches!(
            bus.ensure_topic("t", 0).await,
            Err(BusError::InvalidArgument(_))
        ));
        bus.ensure_topic("t", 2).await.unwrap();
        bus.ensure_topic("t", 2).await.unwrap();
    }

    #[tokio::test]
    async fn commit_of_a_partition_owned_by_another_member_is_revoked() {
        let bus = InProcessBus::new();
        bus.ensure_topic("t", 2).await.unwrap();
        let mut first = bus
            .subscribe("t", SubscribeOptions::earliest("g"))
            .await
            .unwrap();
        let key = (0..)
            .map(|i| format!("k{i}"))
            .find(|key| partition_for_key(key.as_bytes(), 2) == 1)
            .unwrap();
        bus.publish("t", &key, Bytes::from_static(b"x"))
            .await
            .unwrap();
        let message = first.next().await.unwrap();
        // The second member takes partition 1 away from the first.
        let _second = bus
            .subscribe("t", SubscribeOptions::earliest("g"))
            .await
            .unwrap();
        let error = first.commit(&message).await.unwrap_err();
        assert_eq!(
            error,
            BusError::Revoked {
                topic: "t".into(),
                partition: 1
            }
        );
    }
}
