//! The consume loop every service runs: deliver each message to a handler, commit after it
//! succeeds, skip what can never succeed, retry what may.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use livecast_core::{Error, ErrorKind};
use tokio_util::sync::CancellationToken;

use crate::{EventBus, Message, SubscribeOptions, Subscription};

/// Longest pause between two attempts at a failing message.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Delivers every message of `topic` to `handle` until `shutdown`, committing each after
/// `handle` returns Ok. A message the handler rejects as invalid (InvalidArgument, NotFound,
/// Conflict: retrying cannot help) is logged and committed; any other error is retried with
/// backoff and not committed, so nothing is lost if the process dies meanwhile.
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
    if let Some(subscription) = subscribe_until_ready(&bus, topic, &options, &shutdown).await {
        consume_from(subscription, topic, shutdown, handle).await;
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

/// The loop of [`consume`] over an existing subscription.
pub async fn consume_from<F, Fut>(
    mut subscription: Box<dyn Subscription>,
    topic: &str,
    shutdown: CancellationToken,
    handle: F,
) where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
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
        loop {
            match handle(message.clone()).await {
                Ok(()) => break,
                Err(error) if is_permanent(&error) => {
                    tracing::warn!(topic, partition = message.partition, offset = message.offset,
                        %error, "message rejected and skipped");
                    break;
                }
                Err(error) => {
                    tracing::warn!(topic, %error, ?backoff, "message not handled; retrying");
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

/// Whether retrying the same message can never help.
pub fn is_permanent(error: &Error) -> bool {
    matches!(
        error.kind,
        ErrorKind::InvalidArgument | ErrorKind::NotFound | ErrorKind::Conflict
    )
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
