//! The event bus conformance suite: one set of assertions that every `EventBus` must pass.
//!
//! Each case takes the bus and a topic name unique to it (brokers in tests cannot delete
//! topics), and uses group names derived from it. Waiting is always bounded by a deadline.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_bus::{BusError, EventBus, Message, SubscribeOptions, Subscription};

/// How long a case waits for something that must happen (covers Kafka group rebalances).
const PATIENCE: Duration = Duration::from_secs(60);
/// How long a case watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(1);

/// Runs every case against `bus`, one after the other, with topics named `{prefix}.{case}`.
pub async fn run_all(bus: Arc<dyn EventBus>, prefix: &str) {
    let topic = |case: &str| format!("{prefix}.{case}");
    timed(
        "check_and_ensure_topic",
        check_and_ensure_topic(bus.clone(), topic("ensure")),
    )
    .await;
    timed(
        "earliest_receives_everything_in_key_order",
        earliest_receives_everything_in_key_order(bus.clone(), topic("earliest")),
    )
    .await;
    timed(
        "every_group_sees_every_message",
        every_group_sees_every_message(bus.clone(), topic("groups")),
    )
    .await;
    timed(
        "group_members_split_the_partitions",
        group_members_split_the_partitions(bus.clone(), topic("split")),
    )
    .await;
    timed(
        "uncommitted_messages_are_redelivered_to_the_next_member",
        uncommitted_messages_are_redelivered_to_the_next_member(bus.clone(), topic("redeliver")),
    )
    .await;
    timed(
        "survivor_receives_the_dead_members_uncommitted_messages",
        survivor_receives_the_dead_members_uncommitted_messages(bus.clone(), topic("survivor")),
    )
    .await;
    timed(
        "latest_sees_only_messages_published_after_joining",
        latest_sees_only_messages_published_after_joining(bus.clone(), topic("latest")),
    )
    .await;
}

async fn timed(name: &str, case: impl Future<Output = ()>) {
    let started = Instant::now();
    case.await;
    eprintln!("case {name} passed in {:.1?}", started.elapsed());
}

/// `check` answers, `ensure_topic` can be repeated, subscribing to a missing topic is an error.
pub async fn check_and_ensure_topic(bus: Arc<dyn EventBus>, topic: String) {
    bus.check().await.expect("check() on a working bus");
    bus.ensure_topic(&topic, 2).await.expect("create topic");
    bus.ensure_topic(&topic, 2)
        .await
        .expect("ensure_topic is idempotent");
    let missing = format!("{topic}.missing");
    let answer = bus
        .subscribe(&missing, SubscribeOptions::earliest(format!("{topic}.g")))
        .await;
    assert!(
        matches!(answer, Err(BusError::UnknownTopic { ref topic }) if *topic == missing),
        "subscribing to a topic that was never created: {:?}",
        answer.err()
    );
    let answer = bus.ensure_topic(&topic, 0).await;
    assert!(
        matches!(answer, Err(BusError::InvalidArgument(_))),
        "{answer:?}"
    );
}

/// Everything published is received from `Earliest`, in order per key, one partition per key.
pub async fn earliest_receives_everything_in_key_order(bus: Arc<dyn EventBus>, topic: String) {
    bus.ensure_topic(&topic, 3).await.expect("create topic");
    let keys = keys(6);
    publish_rounds(&bus, &topic, &keys, 0..5).await;
    let mut subscription = bus
        .subscribe(&topic, SubscribeOptions::earliest(format!("{topic}.g")))
        .await
        .expect("subscribe");
    let first = receive_n(subscription.as_mut(), 30).await;
    assert_key_order(&first);
    let partition_of = partitions_by_key(&first);
    assert_eq!(partition_of.len(), keys.len(), "every key was received");

    // Later messages of the same keys land on the same partitions.
    publish_rounds(&bus, &topic, &keys, 5..7).await;
    let mut all = first;
    all.extend(receive_n(subscription.as_mut(), 12).await);
    assert_key_order(&all);
    assert_eq!(partitions_by_key(&all), partition_of);
    assert_quiet(subscription.as_mut()).await;
}

/// Two groups each receive every message.
pub async fn every_group_sees_every_message(bus: Arc<dyn EventBus>, topic: String) {
    bus.ensure_topic(&topic, 2).await.expect("create topic");
    publish_rounds(&bus, &topic, &keys(4), 0..5).await;
    for group in ["a", "b"] {
        let mut subscription = bus
            .subscribe(
                &topic,
                SubscribeOptions::earliest(format!("{topic}.{group}")),
            )
            .await
            .expect("subscribe");
        let received = receive_n(subscription.as_mut(), 20).await;
        assert_eq!(
            payloads(&received).len(),
            20,
            "group {group} saw every message once"
        );
        assert_quiet(subscription.as_mut()).await;
    }
}

/// Two members of one group own disjoint partitions and together receive each message once.
pub async fn group_members_split_the_partitions(bus: Arc<dyn EventBus>, topic: String) {
    bus.ensure_topic(&topic, 4).await.expect("create topic");
    let group = format!("{topic}.g");
    let mut first = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe first member");
    let mut second = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe second member");
    publish_rounds(&bus, &topic, &keys(16), 0..3).await;

    let (to_first, to_second) = receive_from_both(first.as_mut(), second.as_mut(), 48).await;
    let all: Vec<Message> = to_first.iter().chain(&to_second).cloned().collect();
    assert_eq!(payloads(&all).len(), 48, "each message exactly once");
    assert_eq!(partitions(&all).len(), 4, "the keys cover every partition");
    assert!(
        !to_first.is_empty() && !to_second.is_empty(),
        "both members got partitions"
    );
    assert!(
        partitions(&to_first).is_disjoint(&partitions(&to_second)),
        "a partition is owned by one member: {:?} / {:?}",
        partitions(&to_first),
        partitions(&to_second)
    );
    assert_key_order(&all);
    let (more_first, more_second) = tokio::join!(
        next_within(first.as_mut(), QUIET),
        next_within(second.as_mut(), QUIET)
    );
    assert!(
        more_first.is_none() && more_second.is_none(),
        "nothing is delivered twice"
    );
}

/// Read five, commit the third, die: the next member gets the fourth and fifth again.
pub async fn uncommitted_messages_are_redelivered_to_the_next_member(
    bus: Arc<dyn EventBus>,
    topic: String,
) {
    bus.ensure_topic(&topic, 1).await.expect("create topic");
    let group = format!("{topic}.g");
    publish_rounds(&bus, &topic, &["k".to_owned()], 0..5).await;
    let mut member = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe");
    let read = receive_n(member.as_mut(), 5).await;
    assert_eq!(sequence(&read), [0, 1, 2, 3, 4]);
    member.commit(&read[2]).await.expect("commit the third");
    drop(member);

    let mut next_member = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe again");
    let again = receive_n(next_member.as_mut(), 2).await;
    assert_eq!(
        sequence(&again),
        [3, 4],
        "resumes after the committed offset"
    );
    assert_eq!(again[0].offset, read[3].offset);
    assert_quiet(next_member.as_mut()).await;
}

/// A member dies mid-way while another stays: the survivor receives whatever the dead member
/// had not committed, and nothing it had.
pub async fn survivor_receives_the_dead_members_uncommitted_messages(
    bus: Arc<dyn EventBus>,
    topic: String,
) {
    bus.ensure_topic(&topic, 4).await.expect("create topic");
    let group = format!("{topic}.g");
    let mut doomed = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe first member");
    let mut survivor = bus
        .subscribe(&topic, SubscribeOptions::earliest(&group))
        .await
        .expect("subscribe second member");
    publish_rounds(&bus, &topic, &keys(16), 0..2).await;

    // The survivor commits everything it gets; the doomed member only its first message.
    let (to_doomed, to_survivor) = receive_from_both(doomed.as_mut(), survivor.as_mut(), 32).await;
    assert!(
        !to_doomed.is_empty() && !to_survivor.is_empty(),
        "both members got partitions"
    );
    for message in &to_survivor {
        survivor.commit(message).await.expect("survivor commits");
    }
    let committed_by_doomed = &to_doomed[0];
    doomed
        .commit(committed_by_doomed)
        .await
        .expect("doomed member commits its first");
    drop(doomed);

    let expected: BTreeSet<String> = to_doomed
        .iter()
        .filter(|m| {
            m.partition != committed_by_doomed.partition || m.offset > committed_by_doomed.offset
        })
        .map(payload_text)
        .collect();
    let mut redelivered = BTreeSet::new();
    let deadline = Instant::now() + PATIENCE;
    while redelivered != expected {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(message) = next_within(survivor.as_mut(), left).await else {
            panic!(
                "the survivor got {} of {} uncommitted messages",
                redelivered.len(),
                expected.len()
            );
        };
        let text = payload_text(&message);
        assert!(
            expected.contains(&text),
            "{text} was committed, it must not come back"
        );
        redelivered.insert(text);
    }
    assert_quiet(survivor.as_mut()).await;
}

/// A `Latest` member sees what is published after it joined and nothing from before.
pub async fn latest_sees_only_messages_published_after_joining(
    bus: Arc<dyn EventBus>,
    topic: String,
) {
    bus.ensure_topic(&topic, 2).await.expect("create topic");
    let keys = keys(5);
    publish_rounds(&bus, &topic, &keys, 0..2).await;
    let mut subscription = bus
        .subscribe(&topic, SubscribeOptions::latest(format!("{topic}.g")))
        .await
        .expect("subscribe");
    // Also checks that a cancelled `next` loses nothing.
    assert_quiet(subscription.as_mut()).await;
    publish_rounds(&bus, &topic, &keys, 2..4).await;
    let received = receive_n(subscription.as_mut(), 10).await;
    assert!(
        received.iter().all(|m| seq_of(m) >= 2),
        "old messages were delivered: {:?}",
        payloads(&received)
    );
    assert_key_order(&received);
    assert_quiet(subscription.as_mut()).await;
}

fn keys(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("stream-{i}")).collect()
}

/// Publishes `key#seq` for each seq in `rounds`, for each key (interleaving the keys).
async fn publish_rounds(
    bus: &Arc<dyn EventBus>,
    topic: &str,
    keys: &[String],
    rounds: std::ops::Range<u32>,
) {
    for seq in rounds {
        for key in keys {
            let payload = Bytes::from(format!("{key}#{seq}"));
            bus.publish(topic, key, payload).await.expect("publish");
        }
    }
}

async fn next_within(subscription: &mut dyn Subscription, wait: Duration) -> Option<Message> {
    match tokio::time::timeout(wait, subscription.next()).await {
        Ok(received) => Some(received.expect("next")),
        Err(_) => None,
    }
}

async fn receive_n(subscription: &mut dyn Subscription, count: usize) -> Vec<Message> {
    let deadline = Instant::now() + PATIENCE;
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_within(subscription, left).await {
            Some(message) => received.push(message),
            None => panic!(
                "received {} of {count} messages within {PATIENCE:?}: {:?}",
                received.len(),
                payloads(&received)
            ),
        }
    }
    received
}

/// Reads from two members at once until `count` messages arrived in total.
async fn receive_from_both(
    first: &mut dyn Subscription,
    second: &mut dyn Subscription,
    count: usize,
) -> (Vec<Message>, Vec<Message>) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let (mut to_first, mut to_second) = (Vec::new(), Vec::new());
    while to_first.len() + to_second.len() < count {
        // `next` is cancel-safe, so the branch that loses the race loses no message.
        tokio::select! {
            received = first.next() => {
                to_first.push(received.expect("next on the first member"));
            }
            received = second.next() => {
                to_second.push(received.expect("next on the second member"));
            }
            () = tokio::time::sleep_until(deadline) => panic!(
                "the two members received {} + {} of {count} messages within {PATIENCE:?}",
                to_first.len(),
                to_second.len()
            ),
        }
    }
    (to_first, to_second)
}

async fn assert_quiet(subscription: &mut dyn Subscription) {
    if let Some(message) = next_within(subscription, QUIET).await {
        panic!("unexpected message {}", payload_text(&message));
    }
}

fn payload_text(message: &Message) -> String {
    String::from_utf8(message.payload.to_vec()).expect("utf-8 payload")
}

fn seq_of(message: &Message) -> u32 {
    let text = payload_text(message);
    let (key, seq) = text.split_once('#').expect("key#seq payload");
    assert_eq!(key, message.key, "payload and key belong together");
    seq.parse().expect("numeric seq")
}

fn sequence(messages: &[Message]) -> Vec<u32> {
    messages.iter().map(seq_of).collect()
}

fn payloads(messages: &[Message]) -> BTreeSet<String> {
    messages.iter().map(payload_text).collect()
}

fn partitions(messages: &[Message]) -> BTreeSet<i32> {
    messages.iter().map(|m| m.partition).collect()
}

/// Each key's messages arrive with increasing seq and offsets, never skipping back.
fn assert_key_order(messages: &[Message]) {
    let mut last: HashMap<&str, (u32, i64)> = HashMap::new();
    for message in messages {
        let seq = seq_of(message);
        if let Some((last_seq, last_offset)) = last.get(message.key.as_str()) {
            assert!(
                seq > *last_seq && message.offset > *last_offset,
                "{} came after seq {last_seq}",
                payload_text(message)
            );
        }
        last.insert(&message.key, (seq, message.offset));
    }
}

/// The one partition of each key; panics if a key shows up on two.
fn partitions_by_key(messages: &[Message]) -> HashMap<String, i32> {
    let mut partition_of = HashMap::new();
    for message in messages {
        let known = partition_of
            .entry(message.key.clone())
            .or_insert(message.partition);
        assert_eq!(
            *known, message.partition,
            "key {} moved partitions",
            message.key
        );
    }
    partition_of
}
