//! The consume loop every service runs: deliver each message to a handler, commit after it
//! succeeds, and do with a failure what the error says: skip what can never succeed, retry
//! what may, and set aside what kept failing within its budget.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use livecast_core::{Error, Retry};
use livecast_proto::{topics, v1};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::{EventBus, Message, SubscribeOptions, Subscription, metrics};

/// Longest pause between two attempts at a failing message.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Delivers every message of `topic` to `handle` until `shutdown`, committing each after
/// `handle` returns Ok. What happens to a message the handler fails on is the error's
/// [`Retry`]: `Never` is logged and committed; `Later` is retried with backoff and not
/// committed, so nothing is lost if the process dies meanwhile; `Budget(n)` is retried up to
/// `n` attempts, then dead-lettered (`livecast.dead-letters`) and committed.
pub async fn consume<F, Fut>(
    bus: Arc<dyn EventBus>,
    topic: &str,
    options: SubscribeOptions,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    consume_with_give_up(bus, topic, options, shutdown, handle, |_, _| async {}).await;
}

/// [`consume`], with `give_up` called on a message whose retry budget is spent, before it is
/// dead-lettered and committed (the encode worker puts slate in its place).
pub async fn consume_with_give_up<F, Fut, G, GFut>(
    bus: Arc<dyn EventBus>,
    topic: &str,
    options: SubscribeOptions,
    shutdown: CancellationToken,
    handle: F,
    give_up: G,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
    G: Fn(Message, Error) -> GFut,
    GFut: Future<Output = ()>,
{
    if let Some(subscription) = subscribe_until_ready(&bus, topic, &options, &shutdown).await {
        consume_loop(bus, subscription, topic, shutdown, handle, give_up).await;
    }
}

/// Subscribes, retrying every second while the bus does not answer; `None` at shutdown.
pub async fn subscribe_until_ready(
    bus: &Arc<dyn EventBus>,
    topic: &str,
    options: &SubscribeOptions,
    shutdown: &CancellationToken,
) -> Option<Box<dyn Subscription>> {
    loop {
        match bus.subscribe(topic, options.clone()).await {
            Ok(subscription) => return Some(subscription),
            Err(error) => {
                tracing::warn!(topic, group = %options.group, %error, "cannot subscribe; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// The loop of [`consume`] over an existing subscription; dead letters go to `bus`.
pub async fn consume_from<F, Fut>(
    bus: Arc<dyn EventBus>,
    subscription: Box<dyn Subscription>,
    topic: &str,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    consume_loop(bus, subscription, topic, shutdown, handle, |_, _| async {}).await;
}

async fn consume_loop<F, Fut, G, GFut>(
    bus: Arc<dyn EventBus>,
    mut subscription: Box<dyn Subscription>,
    topic: &str,
    shutdown: CancellationToken,
    handle: F,
    give_up: G,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
    G: Fn(Message, Error) -> GFut,
    GFut: Future<Output = ()>,
{
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = subscription.next() => next,
        };
        let message = match next {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(topic, %error, "event bus read failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
        };
        let mut backoff = Duration::from_millis(100);
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let error = match handle(message.clone()).await {
                Ok(()) => break,
                Err(error) => error,
            };
            match error.retry {
                Retry::Never => {
                    tracing::warn!(topic, partition = message.partition, offset = message.offset,
                        %error, "message rejected and skipped");
                    break;
                }
                Retry::Budget(budget) if attempts >= budget => {
                    tracing::warn!(topic, partition = message.partition, offset = message.offset,
                        attempts, %error, "message set aside after its last attempt");
                    give_up(message.clone(), error.clone()).await;
                    dead_letter(&bus, &message, &error).await;
                    break;
                }
                Retry::Later | Retry::Budget(_) => {
                    // Logged once per message: each attempt after is counted, not logged.
                    if attempts == 1 {
                        tracing::warn!(topic, %error, "message not handled; retrying");
                    }
                    metrics::retried(topic);
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        if let Err(error) = subscription.commit(&message).await {
            tracing::warn!(topic, %error, "commit failed; the message may be delivered again");
        }
    }
}

/// Keeps a message given up on in `livecast.dead-letters`, for an operator to look at or
/// replay; counted whether or not that worked.
async fn dead_letter(bus: &Arc<dyn EventBus>, message: &Message, error: &Error) {
    metrics::dead_lettered(&message.topic);
    let letter = v1::DeadLetter {
        topic: message.topic.clone(),
        partition: message.partition,
        offset: message.offset,
        key: message.key.clone(),
        payload: message.payload.to_vec(),
        error: error.to_string(),
        at: livecast_core::time::now_millis(),
    };
    let payload = Bytes::from(letter.encode_to_vec());
    let published = async {
        bus.ensure_topic(topics::DEAD_LETTERS, 1).await?;
        bus.publish(topics::DEAD_LETTERS, &message.key, payload)
            .await
    };
    if let Err(publish_error) = published.await {
        tracing::warn!(topic = %message.topic, error = %publish_error, "dead letter not kept");
    }
}

/// How long start-up waits for the first attempt at creating topics.
const FIRST_ATTEMPT: Duration = Duration::from_secs(3);

/// Makes sure `topics` exist. When the bus does not answer within a few seconds the service
/// starts anyway, not ready (its `/readyz` names the bus), and the topics are created in the
/// background as soon as the bus is back.
pub async fn ensure_topics(bus: &Arc<dyn EventBus>, topics: &[&'static str], partitions: u32) {
    let attempt = |bus: Arc<dyn EventBus>| async move {
        for topic in topics {
            bus.ensure_topic(topic, partitions).await?;
        }
        Ok::<(), crate::BusError>(())
    };
    match tokio::time::timeout(FIRST_ATTEMPT, attempt(bus.clone())).await {
        Ok(Ok(())) => return,
        Ok(Err(error)) => tracing::warn!(?topics, %error, "cannot create topics yet; retrying"),
        Err(_) => tracing::warn!(
            ?topics,
            "the event bus does not answer; retrying topic creation"
        ),
    }
    let bus = bus.clone();
    let topics = topics.to_vec();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut created = true;
            for topic in &topics {
                if let Err(error) = bus.ensure_topic(topic, partitions).await {
                    tracing::debug!(topic, %error, "topic creation still failing");
                    created = false;
                    break;
                }
            }
            if created {
                tracing::info!(?topics, "topics created");
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::InProcessBus;

    /// Runs the consume loop over `payloads` with `handle` until `done` says so.
    async fn consume_until(
        payloads: &[&'static str],
        handle: impl Fn(Message) -> Result<(), Error> + Send + Sync + 'static,
        done: impl Fn(&[String], &[String]) -> bool,
    ) -> (Vec<String>, Vec<String>, Vec<v1::DeadLetter>) {
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
        bus.ensure_topic("chunks", 1).await.unwrap();
        for payload in payloads {
            bus.publish("chunks", "s1", Bytes::from_static(payload.as_bytes()))
                .await
                .unwrap();
        }
        let handled = Arc::new(Mutex::new(Vec::new()));
        let given_up = Arc::new(Mutex::new(Vec::new()));
        let shutdown = CancellationToken::new();
        let handle = Arc::new(handle);
        let task = {
            let (bus, handled, given_up) = (bus.clone(), handled.clone(), given_up.clone());
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                consume_with_give_up(
                    bus,
                    "chunks",
                    SubscribeOptions::earliest("workers"),
                    shutdown,
                    move |message| {
                        let text = String::from_utf8_lossy(&message.payload).into_owned();
                        handled.lock().unwrap().push(text);
                        let result = handle(message);
                        async move { result }
                    },
                    move |message, _| {
                        let text = String::from_utf8_lossy(&message.payload).into_owned();
                        given_up.lock().unwrap().push(text);
                        async {}
                    },
                )
                .await;
            })
        };
        while !done(&handled.lock().unwrap(), &given_up.lock().unwrap()) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
        let mut letters = Vec::new();
        if let Ok(mut subscription) = bus
            .subscribe(topics::DEAD_LETTERS, SubscribeOptions::earliest("operator"))
            .await
        {
            while let Ok(Ok(message)) =
                tokio::time::timeout(Duration::from_millis(200), subscription.next()).await
            {
                letters.push(v1::DeadLetter::decode(message.payload.as_ref()).unwrap());
            }
        }
        let handled = handled.lock().unwrap().clone();
        let given_up = given_up.lock().unwrap().clone();
        (handled, given_up, letters)
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_failing_within_a_budget_is_retried_then_set_aside_and_the_next_one_follows()
    {
        let (handled, given_up, letters) = consume_until(
            &["missing", "next"],
            |message| match message.payload.as_ref() {
                b"missing" => Err(Error::not_found("source chunk").with_retry(Retry::Budget(3))),
                _ => Ok(()),
            },
            |handled, _| handled.iter().any(|h| h == "next"),
        )
        .await;
        assert_eq!(handled, ["missing", "missing", "missing", "next"]);
        assert_eq!(given_up, ["missing"]);
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].payload, b"missing");
        assert!(
            letters[0].error.contains("source chunk"),
            "{}",
            letters[0].error
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_that_may_work_later_is_retried_and_never_passed_over() {
        let (handled, given_up, letters) = consume_until(
            &["blocked", "next"],
            |message| match message.payload.as_ref() {
                b"blocked" => Err(Error::unavailable("blob store down")),
                _ => Ok(()),
            },
            |handled, _| handled.len() >= 12,
        )
        .await;
        assert!(handled.iter().all(|h| h == "blocked"), "{handled:?}");
        assert!(given_up.is_empty() && letters.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_that_can_never_work_is_skipped_without_a_dead_letter() {
        let (handled, given_up, letters) = consume_until(
            &["garbage", "next"],
            |message| match message.payload.as_ref() {
                b"garbage" => Err(Error::invalid("undecodable")),
                _ => Ok(()),
            },
            |handled, _| handled.iter().any(|h| h == "next"),
        )
        .await;
        assert_eq!(handled, ["garbage", "next"]);
        assert!(given_up.is_empty() && letters.is_empty());
    }
}
