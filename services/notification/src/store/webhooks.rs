//! Registered webhooks and their queued deliveries.

use livecast_core::{Error, Secret};
use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::Store;

/// Longest failure message kept per webhook.
const MAX_ERROR_LEN: usize = 300;

/// A webhook as registered.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    /// Its id.
    pub id: String,
    /// Where notifications are POSTed.
    pub url: String,
    /// The key deliveries are signed with.
    pub secret: Secret,
    /// When it was registered, milliseconds since the epoch.
    pub created_at: i64,
}

/// A webhook and how delivering to it goes, as admins see it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookState {
    /// Its id.
    pub id: String,
    /// Where notifications are POSTed.
    pub url: String,
    /// When it was registered.
    pub created_at: i64,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// What the last failed attempt got.
    pub last_error: Option<String>,
    /// When an attempt last succeeded.
    pub last_success_at: Option<i64>,
    /// When an attempt last failed.
    pub last_failure_at: Option<i64>,
    /// Deliveries queued and not yet done.
    pub pending: u64,
}

/// One queued delivery of a notification to a webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Queue position; per webhook and stream, lower ids go first.
    pub id: i64,
    /// The stream the notification is about.
    pub stream_id: String,
    /// The originating event.
    pub event_id: String,
    /// The JSON body, the same on every attempt.
    pub body: String,
    /// When it was queued.
    pub created_at: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// The deliveries of a webhook that may be attempted now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DueDeliveries {
    /// The oldest queued delivery of each stream, when its time has come.
    pub due: Vec<Delivery>,
    /// When the next one becomes due, if any is waiting.
    pub next_due_at: Option<i64>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The endpoint accepted it: the delivery is done.
    Delivered,
    /// The endpoint did not accept it; `retry_at` is when to try again, `None` when the delivery
    /// is abandoned.
    Failed {
        /// What went wrong.
        error: String,
        /// The next attempt, if any.
        retry_at: Option<i64>,
    },
}

const STATE_COLUMNS: &str = "w.id, w.url, w.created_at, w.consecutive_failures, w.last_error,
    w.last_success_at, w.last_failure_at,
    (SELECT COUNT(*) FROM deliveries d WHERE d.webhook_id = w.id)";

fn state(row: &Row<'_>) -> rusqlite::Result<WebhookState> {
    Ok(WebhookState {
        id: row.get(0)?,
        url: row.get(1)?,
        created_at: row.get(2)?,
        consecutive_failures: row.get(3)?,
        last_error: row.get(4)?,
        last_success_at: row.get(5)?,
        last_failure_at: row.get(6)?,
        pending: row.get::<_, i64>(7)? as u64,
    })
}

impl Store {
    /// Registers a webhook; `Conflict` when `max` are registered already.
    pub async fn add_webhook(&self, webhook: WebhookRecord, max: usize) -> Result<(), Error> {
        let added = self
            .call(move |conn| {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let count: i64 = tx.query_row("SELECT COUNT(*) FROM webhooks", [], |r| r.get(0))?;
                if count as usize >= max {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO webhooks (id, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![
                        webhook.id,
                        webhook.url,
                        webhook.secret.expose(),
                        webhook.created_at
                    ],
                )?;
                tx.commit()?;
                Ok(true)
            })
            .await?;
        if added {
            Ok(())
        } else {
            Err(Error::conflict(format!(
                "{max} webhooks are registered, the most allowed (notification.max_webhooks); \
                 delete one first"
            )))
        }
    }

    /// Every webhook, oldest first.
    pub async fn webhooks(&self) -> Result<Vec<WebhookState>, Error> {
        self.call(|conn| {
            let mut select = conn.prepare(&format!(
                "SELECT {STATE_COLUMNS} FROM webhooks w ORDER BY w.created_at, w.id"
            ))?;
            select
                .query_map([], state)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    /// The webhook `id`, if registered.
    pub async fn webhook(&self, id: &str) -> Result<Option<WebhookState>, Error> {
        let id = id.to_owned();
        self.call(move |conn| {
            conn.query_row(
                &format!("SELECT {STATE_COLUMNS} FROM webhooks w WHERE w.id = ?1"),
                [id],
                state,
            )
            .optional()
        })
        .await
    }

    /// Where and with which key to deliver for webhook `id`, if registered.
    pub async fn webhook_target(&self, id: &str) -> Result<Option<(String, Secret)>, Error> {
        let id = id.to_owned();
        self.call(move |conn| {
            conn.query_row(
                "SELECT url, secret FROM webhooks WHERE id = ?1",
                [id],
                |row| Ok((row.get(0)?, Secret::new(row.get::<_, String>(1)?))),
            )
            .optional()
        })
        .await
    }

    /// Removes a webhook and its queued deliveries; `Ok(false)` when there was none.
    pub async fn delete_webhook(&self, id: &str) -> Result<bool, Error> {
        let id = id.to_owned();
        self.call(move |conn| Ok(conn.execute("DELETE FROM webhooks WHERE id = ?1", [id])? == 1))
            .await
    }

    /// At most `limit` deliveries of `webhook` that may be attempted at `now`: only the oldest
    /// queued one of each stream, so a stream's notifications arrive in order.
    pub async fn due(&self, webhook: &str, now: i64, limit: usize) -> Result<DueDeliveries, Error> {
        let webhook = webhook.to_owned();
        self.call(move |conn| {
            let mut select = conn.prepare_cached(
                "SELECT d.id, d.stream_id, d.event_id, d.body, d.created_at, d.attempts,
                        d.next_attempt_at
                 FROM deliveries d
                 WHERE d.webhook_id = ?1
                   AND d.id = (SELECT MIN(e.id) FROM deliveries e
                               WHERE e.webhook_id = ?1 AND e.stream_id = d.stream_id)
                 ORDER BY d.next_attempt_at, d.id
                 LIMIT ?2",
            )?;
            let rows = select.query_map(params![webhook, limit as i64 + 1], |row| {
                let delivery = Delivery {
                    id: row.get(0)?,
                    stream_id: row.get(1)?,
                    event_id: row.get(2)?,
                    body: row.get(3)?,
                    created_at: row.get(4)?,
                    attempts: row.get(5)?,
                };
                Ok((delivery, row.get::<_, i64>(6)?))
            })?;
            let mut due = DueDeliveries::default();
            for row in rows {
                let (delivery, next_attempt_at) = row?;
                if next_attempt_at > now {
                    due.next_due_at = Some(next_attempt_at);
                    break;
                }
                if due.due.len() < limit {
                    due.due.push(delivery);
                }
            }
            Ok(due)
        })
        .await
    }

    /// Records how an attempt at `delivery` of `webhook` ended, at `now`.
    pub async fn finish(
        &self,
        webhook: &str,
        delivery: i64,
        attempt: Attempt,
        now: i64,
    ) -> Result<(), Error> {
        let webhook = webhook.to_owned();
        self.call(move |conn| {
            let tx = conn.transaction()?;
            match attempt {
                Attempt::Delivered => {
                    tx.execute("DELETE FROM deliveries WHERE id = ?1", [delivery])?;
                    tx.execute(
                        "UPDATE webhooks SET consecutive_failures = 0, last_success_at = ?2
                         WHERE id = ?1",
                        params![webhook, now],
                    )?;
                }
                Attempt::Failed { error, retry_at } => {
                    match retry_at {
                        Some(at) => tx.execute(
                            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = ?2
                             WHERE id = ?1",
                            params![delivery, at],
                        )?,
                        None => tx.execute("DELETE FROM deliveries WHERE id = ?1", [delivery])?,
                    };
                    let error: String = error.chars().take(MAX_ERROR_LEN).collect();
                    tx.execute(
                        "UPDATE webhooks SET consecutive_failures = consecutive_failures + 1,
                                last_error = ?2, last_failure_at = ?3
                         WHERE id = ?1",
                        params![webhook, error, now],
                    )?;
                }
            }
            tx.commit()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use livecast_core::{EventId, StreamId};

    use super::*;
    use crate::notification::{NotificationKind, StreamChange};

    async fn queue(store: &Store, event: &str, stream: &str) {
        let change = StreamChange {
            kind: NotificationKind::Live,
            event_id: EventId::parse(event).unwrap(),
            stream_id: StreamId::parse(stream).unwrap(),
            name: String::new(),
            at_ms: 1,
        };
        store
            .record(change, "http://x/y".into(), 100)
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test]
    async fn only_the_oldest_delivery_of_each_stream_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.sqlite")).await.unwrap();
        let webhook = WebhookRecord {
            id: "w1".into(),
            url: "http://127.0.0.1:9/hook".into(),
            secret: Secret::new("s"),
            created_at: 0,
        };
        store.add_webhook(webhook.clone(), 1).await.unwrap();
        let full = store.add_webhook(webhook, 1).await.unwrap_err();
        assert_eq!(full.kind, livecast_core::ErrorKind::Conflict);
        for (event, stream) in [("a1", "a"), ("b1", "b"), ("a2", "a")] {
            queue(&store, event, stream).await;
        }
        let now = livecast_core::time::now_millis() + 1;
        let due = store.due("w1", now, 10).await.unwrap();
        let events: Vec<&str> = due.due.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(events, vec!["a1", "b1"]);

        let a1 = due.due[0].id;
        let retry = Attempt::Failed {
            error: "HTTP 500".into(),
            retry_at: Some(now + 60_000),
        };
        store.finish("w1", a1, retry, now).await.unwrap();
        let due = store.due("w1", now, 10).await.unwrap();
        let events: Vec<&str> = due.due.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(events, vec!["b1"], "a2 waits behind a1");
        assert_eq!(due.next_due_at, Some(now + 60_000));
        let state = store.webhook("w1").await.unwrap().unwrap();
        assert_eq!(state.consecutive_failures, 1);
        assert_eq!(state.pending, 3);
        assert_eq!(state.last_error.as_deref(), Some("HTTP 500"));

        store
            .finish("w1", a1, Attempt::Delivered, now)
            .await
            .unwrap();
        let due = store.due("w1", now, 10).await.unwrap();
        let events: Vec<&str> = due.due.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(events, vec!["b1", "a2"]);
        assert_eq!(
            store
                .webhook("w1")
                .await
                .unwrap()
                .unwrap()
                .consecutive_failures,
            0
        );
        assert!(store.delete_webhook("w1").await.unwrap());
        assert!(!store.delete_webhook("w1").await.unwrap());
        assert!(store.due("w1", now, 10).await.unwrap().due.is_empty());
    }
}
