//! The journal: every notification this instance recorded, with its cursor, and the ledger of
//! event ids that makes redelivered events no-ops.

use std::time::Duration;

use livecast_core::Error;
use rusqlite::{TransactionBehavior, params};

use super::Store;
use crate::notification::{Notification, NotificationKind, StreamChange, rfc3339};

/// How long an event id is remembered; a duplicate arriving later counts as new. Far longer
/// than any redelivery the bus does (the metadata store's ledger keeps the same week).
pub const SEEN_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// A change recorded for the first time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The notification, with its cursor.
    pub notification: Notification,
    /// The webhooks a delivery was queued for.
    pub webhooks: Vec<String>,
}

impl Store {
    /// Records `change` under the next cursor, queues a delivery for every webhook and keeps
    /// the last `history_size` notifications, all in one transaction. `Ok(None)` when the
    /// event was seen before.
    pub async fn record(
        &self,
        change: StreamChange,
        playback_url: String,
        history_size: usize,
    ) -> Result<Option<Recorded>, Error> {
        self.call(move |conn| {
            let now = livecast_core::time::now_millis();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // An indexed range delete, nearly always empty: it keeps the ledger bounded.
            tx.execute(
                "DELETE FROM seen_events WHERE seen_at < ?1",
                [now - SEEN_RETENTION.as_millis() as i64],
            )?;
            let first_time = tx.execute(
                "INSERT OR IGNORE INTO seen_events (event_id, seen_at) VALUES (?1, ?2)",
                params![change.event_id.as_str(), now],
            )? == 1;
            if !first_time {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO notifications (kind, event_id, stream_id, name, playback_url, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    change.kind.as_str(),
                    change.event_id.as_str(),
                    change.stream_id.as_str(),
                    change.name,
                    playback_url,
                    change.at_ms
                ],
            )?;
            let cursor = tx.last_insert_rowid();
            let notification = Notification {
                id: cursor as u64,
                kind: change.kind,
                event_id: change.event_id.to_string(),
                stream_id: change.stream_id.to_string(),
                name: change.name,
                playback_url,
                at: rfc3339(change.at_ms),
            };
            let webhooks = {
                let mut select = tx.prepare("SELECT id FROM webhooks ORDER BY id")?;
                select
                    .query_map([], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?
            };
            let body = notification.to_json();
            for webhook in &webhooks {
                tx.execute(
                    "INSERT INTO deliveries
                       (webhook_id, stream_id, event_id, body, created_at, next_attempt_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![
                        webhook,
                        notification.stream_id,
                        notification.event_id,
                        body,
                        now
                    ],
                )?;
            }
            tx.execute(
                "DELETE FROM notifications WHERE cursor <= ?1",
                [cursor - history_size as i64],
            )?;
            tx.commit()?;
            Ok(Some(Recorded {
                notification,
                webhooks,
            }))
        })
        .await
    }

    /// The last `limit` notifications, oldest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<Notification>, Error> {
        self.call(move |conn| {
            let mut select = conn.prepare(
                "SELECT cursor, kind, event_id, stream_id, name, playback_url, at_ms
                 FROM notifications ORDER BY cursor DESC LIMIT ?1",
            )?;
            let rows = select.query_map([limit as i64], |row| {
                let kind: String = row.get(1)?;
                Ok(Notification {
                    id: row.get::<_, i64>(0)? as u64,
                    kind: NotificationKind::parse(&kind).ok_or_else(|| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Text,
                            format!("unknown notification kind {kind:?}").into(),
                        )
                    })?,
                    event_id: row.get(2)?,
                    stream_id: row.get(3)?,
                    name: row.get(4)?,
                    playback_url: row.get(5)?,
                    at: rfc3339(row.get(6)?),
                })
            })?;
            let mut notifications = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            notifications.reverse();
            Ok(notifications)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use livecast_core::{EventId, StreamId};

    use super::*;

    fn change(event: &str, kind: NotificationKind) -> StreamChange {
        StreamChange {
            kind,
            event_id: EventId::parse(event).unwrap(),
            stream_id: StreamId::parse("s1").unwrap(),
            name: "Launch".into(),
            at_ms: 1_700_000_000_000,
        }
    }

    #[tokio::test]
    async fn duplicates_are_dropped_and_history_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("n.sqlite")).await.unwrap();
        let url = String::from("http://edge/stream/s1/master.m3u8");
        let first = store
            .record(change("e1", NotificationKind::Live), url.clone(), 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.notification.id, 1);
        assert!(first.webhooks.is_empty());
        let again = store
            .record(change("e1", NotificationKind::Live), url.clone(), 2)
            .await
            .unwrap();
        assert_eq!(again, None);
        for (n, event) in ["e2", "e3"].into_iter().enumerate() {
            let recorded = store
                .record(change(event, NotificationKind::Completed), url.clone(), 2)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(recorded.notification.id, n as u64 + 2);
        }
        let recent = store.recent(10).await.unwrap();
        let cursors: Vec<u64> = recent.iter().map(|n| n.id).collect();
        assert_eq!(cursors, vec![2, 3]);
        assert_eq!(recent[1].kind, NotificationKind::Completed);
        assert_eq!(recent[1].playback_url, url);
        // The oldest entry was pruned but its event id is still remembered.
        let pruned_again = store
            .record(change("e1", NotificationKind::Live), url, 2)
            .await
            .unwrap();
        assert_eq!(pruned_again, None);
    }
}
