//! Webhook registration and delivery: one worker per endpoint, so an endpoint that keeps
//! failing only ever delays itself.
//!
//! A worker sends the oldest queued delivery of each stream (up to `webhook_concurrency` streams
//! at once), so notifications of one stream reach an endpoint in order. A failed attempt is
//! retried with exponential backoff and jitter until `webhook_retry_for_ms` after the delivery
//! was queued; then it is abandoned and the stream's next one goes. Deliveries are removed from
//! the queue only after a 2xx answer: at least once, across restarts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use livecast_core::{Error, Secret};
use livecast_service::Shutdown;
use rand::{Rng, RngCore};
use reqwest::Url;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::NotificationSettings;
use crate::metrics;
use crate::signature::{self, SIGNATURE_HEADER};
use crate::store::{Attempt, Delivery, Store, WebhookRecord, WebhookState};

/// Longest webhook URL accepted.
const MAX_URL_LEN: usize = 2048;
/// How long an idle worker sleeps before looking at its queue anyway.
const IDLE_RECHECK: Duration = Duration::from_secs(60);

/// The registered webhooks and their delivery workers.
#[derive(Debug)]
pub struct Webhooks {
    store: Store,
    client: reqwest::Client,
    policy: RetryPolicy,
    max_webhooks: usize,
    concurrency: usize,
    workers: Mutex<HashMap<String, CancellationToken>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
    running: Mutex<Option<(Shutdown, TaskTracker)>>,
}

/// When to try a failed delivery again, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Pause after the first failure, milliseconds.
    pub initial_ms: u64,
    /// Longest pause, milliseconds.
    pub max_ms: u64,
    /// How long after queueing a delivery is still tried, milliseconds.
    pub retry_for_ms: u64,
    /// Consecutive failures after which an endpoint is reported failing.
    pub failing_after: u32,
}

impl RetryPolicy {
    /// When to try again after failed attempt number `attempts` (1 for the first) at `now`,
    /// with `jitter` in `0.0..=1.0`; `None` once the delivery's time is up. The pause doubles
    /// per attempt up to `max_ms`, and jitter takes up to half of it off so that endpoints
    /// recovering at once are not hit by every retry in the same instant.
    pub fn retry_at(&self, queued_at: i64, attempts: u32, now: i64, jitter: f64) -> Option<i64> {
        let deadline = queued_at.saturating_add(self.retry_for_ms as i64);
        if now >= deadline {
            return None;
        }
        let doubling = attempts.saturating_sub(1).min(32);
        let pause = self
            .initial_ms
            .saturating_mul(1u64 << doubling)
            .min(self.max_ms);
        let pause = pause - (pause as f64 * jitter.clamp(0.0, 1.0) / 2.0) as u64;
        Some(now.saturating_add(pause.max(1) as i64).min(deadline))
    }
}

impl Webhooks {
    /// Webhooks kept in `store`, delivered as `settings` say. Workers start with [`Self::start`].
    pub fn new(store: Store, settings: &NotificationSettings) -> anyhow::Result<Webhooks> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.webhook_timeout_ms))
            // A redirect is an answer the endpoint's owner should fix; following it would send
            // signed notifications wherever a compromised endpoint points.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("livecast-notification/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Webhooks {
            store,
            client,
            policy: RetryPolicy {
                initial_ms: settings.webhook_retry_initial_ms,
                max_ms: settings.webhook_retry_max_ms,
                retry_for_ms: settings.webhook_retry_for_ms,
                failing_after: settings.webhook_failing_after,
            },
            max_webhooks: settings.max_webhooks,
            concurrency: settings.webhook_concurrency,
            workers: Mutex::new(HashMap::new()),
            wakers: Mutex::new(HashMap::new()),
            running: Mutex::new(None),
        })
    }

    /// Consecutive failures after which an endpoint counts as failing.
    pub fn failing_after(&self) -> u32 {
        self.policy.failing_after
    }

    /// Starts a worker for every registered webhook (and, from now on, for each new one); they
    /// stop at `shutdown`.
    pub async fn start(self: &Arc<Self>, shutdown: Shutdown, tracker: TaskTracker) {
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some((shutdown, tracker));
        match self.store.webhooks().await {
            Ok(webhooks) => {
                for webhook in webhooks {
                    self.ensure_worker(&webhook.id);
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot load webhooks; their deliveries wait for a restart")
            }
        }
    }

    /// Registers `url`; returns the webhook and its signing secret (shown this once).
    pub async fn register(self: &Arc<Self>, url: &str) -> Result<(WebhookState, Secret), Error> {
        let url = validate_url(url)?;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let secret = Secret::new(format!("whsec_{}", hex::encode(key)));
        let record = WebhookRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            url,
            secret: secret.clone(),
            created_at: livecast_core::time::now_millis(),
        };
        let id = record.id.clone();
        self.store.add_webhook(record, self.max_webhooks).await?;
        self.ensure_worker(&id);
        tracing::info!(webhook = %id, "webhook registered");
        Ok((self.get(&id).await?, secret))
    }

    /// Every webhook, oldest first.
    pub async fn list(&self) -> Result<Vec<WebhookState>, Error> {
        self.store.webhooks().await
    }

    /// The webhook `id`; `NotFound` if there is none.
    pub async fn get(&self, id: &str) -> Result<WebhookState, Error> {
        self.store
            .webhook(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no webhook has id {id:?}")))
    }

    /// Removes the webhook `id` and drops its queued deliveries; `NotFound` if there is none.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        if !self.store.delete_webhook(id).await? {
            return Err(Error::not_found(format!("no webhook has id {id:?}")));
        }
        if let Some(stop) = lock(&self.workers).remove(id) {
            stop.cancel();
        }
        lock(&self.wakers).remove(id);
        tracing::info!(webhook = %id, "webhook deleted");
        Ok(())
    }

    /// Tells the workers of `ids` that deliveries were queued for them.
    pub fn wake(&self, ids: &[String]) {
        let wakers = lock(&self.wakers);
        for id in ids {
            if let Some(wake) = wakers.get(id) {
                wake.notify_one();
            }
        }
    }

    fn ensure_worker(self: &Arc<Self>, id: &str) {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((shutdown, tracker)) = running.as_ref() else {
            return;
        };
        let mut workers = lock(&self.workers);
        if workers.contains_key(id) {
            return;
        }
        let stop = shutdown.child_token();
        let wake = Arc::new(Notify::new());
        workers.insert(id.to_owned(), stop.clone());
        lock(&self.wakers).insert(id.to_owned(), wake.clone());
        tracker.spawn(self.clone().deliver(id.to_owned(), wake, stop));
    }

    /// The worker of one endpoint.
    async fn deliver(self: Arc<Self>, id: String, wake: Arc<Notify>, stop: CancellationToken) {
        let (url, secret, mut failures) = loop {
            let target = self.store.webhook_target(&id).await;
            let state = self.store.webhook(&id).await;
            match (target, state) {
                (Ok(Some((url, secret))), Ok(Some(state))) => {
                    break (url, secret, state.consecutive_failures);
                }
                (Ok(None), _) | (_, Ok(None)) => return,
                (Err(error), _) | (_, Err(error)) => {
                    tracing::warn!(webhook = %id, %error, "cannot load webhook; retrying");
                    if pause(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                }
            }
        };
        while !stop.is_cancelled() {
            let now = livecast_core::time::now_millis();
            let batch = match self.store.due(&id, now, self.concurrency).await {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::warn!(webhook = %id, %error, "cannot read the delivery queue");
                    if pause(&stop, Duration::from_secs(1)).await {
                        return;
                    }
                    continue;
                }
            };
            if batch.due.is_empty() {
                let wait = batch.next_due_at.map_or(IDLE_RECHECK, |at| {
                    Duration::from_millis((at - now).max(0) as u64).min(IDLE_RECHECK)
                });
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let attempts = batch
                .due
                .iter()
                .map(|delivery| self.attempt(&url, &secret, delivery));
            let outcomes = futures::future::join_all(attempts).await;
            for (delivery, outcome) in batch.due.iter().zip(outcomes) {
                failures = self.record(&id, delivery, outcome, failures).await;
            }
        }
    }

    /// POSTs one delivery, signed now.
    async fn attempt(&self, url: &str, secret: &Secret, delivery: &Delivery) -> Result<(), String> {
        let timestamp = livecast_core::time::now_millis() / 1000;
        let signature = signature::header_value(secret.expose(), timestamp, &delivery.body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header("livecast-event-id", &delivery.event_id)
            .header("livecast-delivery-attempt", delivery.attempts + 1)
            .body(delivery.body.clone())
            .send()
            .await;
        match response {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("answered HTTP {}", response.status().as_u16())),
            Err(error) => Err(describe(&error)),
        }
    }

    /// Stores how an attempt ended; returns the endpoint's consecutive failures.
    async fn record(
        &self,
        id: &str,
        delivery: &Delivery,
        outcome: Result<(), String>,
        failures: u32,
    ) -> u32 {
        let now = livecast_core::time::now_millis();
        let (attempt, failures) = match outcome {
            Ok(()) => {
                metrics::webhook_attempt("delivered");
                if failures >= self.policy.failing_after {
                    tracing::info!(webhook = %id, "webhook endpoint recovered");
                }
                (Attempt::Delivered, 0)
            }
            Err(error) => {
                metrics::webhook_attempt("failed");
                let jitter = rand::rng().random_range(0.0..=1.0);
                let retry_at =
                    self.policy
                        .retry_at(delivery.created_at, delivery.attempts + 1, now, jitter);
                let failures = failures.saturating_add(1);
                if failures == self.policy.failing_after {
                    tracing::warn!(webhook = %id, failures, %error, "webhook endpoint is failing");
                }
                if retry_at.is_none() {
                    metrics::webhook_abandoned();
                    tracing::warn!(webhook = %id, event_id = %delivery.event_id,
                        attempts = delivery.attempts + 1, %error,
                        "webhook delivery abandoned: retry time ran out");
                } else {
                    tracing::debug!(webhook = %id, event_id = %delivery.event_id, %error,
                        "webhook attempt failed; will retry");
                }
                (Attempt::Failed { error, retry_at }, failures)
            }
        };
        if let Err(error) = self.store.finish(id, delivery.id, attempt, now).await {
            // Not recorded: the delivery stays queued and is attempted again (at least once).
            tracing::warn!(webhook = %id, %error, "cannot record a webhook attempt");
        }
        failures
    }
}

/// An http(s) URL with a host, or `InvalidArgument` saying what is wrong.
pub fn validate_url(raw: &str) -> Result<String, Error> {
    if raw.len() > MAX_URL_LEN {
        return Err(Error::invalid(format!(
            "the webhook url is {} characters long; the limit is {MAX_URL_LEN}",
            raw.len()
        )));
    }
    let url = Url::parse(raw)
        .map_err(|e| Error::invalid(format!("the webhook url {raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(format!(
            "the webhook url must be http or https, not {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("the webhook url has no host"));
    }
    Ok(url.to_string())
}

/// An HTTP client error with its causes but without the URL (it may hold credentials).
fn describe(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        String::from("timed out")
    } else {
        String::from("request failed")
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Sleeps for `duration`; true when `stop` fired meanwhile.
async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(duration) => false,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        initial_ms: 1_000,
        max_ms: 8_000,
        retry_for_ms: 60_000,
        failing_after: 3,
    };

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_takes_up_to_half() {
        let pauses: Vec<i64> = (1..=6)
            .map(|n| POLICY.retry_at(0, n, 100, 0.0).unwrap() - 100)
            .collect();
        assert_eq!(pauses, vec![1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
        assert_eq!(POLICY.retry_at(0, 2, 100, 1.0), Some(100 + 1_000));
        let jittered = POLICY.retry_at(0, 3, 100, 0.5).unwrap() - 100;
        assert_eq!(jittered, 3_000);
    }

    #[test]
    fn retries_stop_at_the_deadline() {
        assert_eq!(POLICY.retry_at(0, 9, 59_000, 0.0), Some(60_000));
        assert_eq!(POLICY.retry_at(0, 10, 60_000, 0.0), None);
        assert_eq!(POLICY.retry_at(0, 1, 1_000_000, 0.0), None);
        assert!(POLICY.retry_at(0, u32::MAX, 100, 0.0).is_some());
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_accepted() {
        assert_eq!(
            validate_url("https://example.com/hook").unwrap(),
            "https://example.com/hook"
        );
        assert!(validate_url("http://127.0.0.1:8080/x?y=1").is_ok());
        for bad in [
            "",
            "not a url",
            "ftp://example.com/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http://",
        ] {
            let error = validate_url(bad).unwrap_err();
            assert_eq!(
                error.kind,
                livecast_core::ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(validate_url(&long).is_err());
    }
}
