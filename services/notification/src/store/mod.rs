//! The service's own SQLite file: the notification journal (history and cursors), the ledger of
//! events seen (duplicates), registered webhooks and their pending deliveries.
//!
//! One file per instance, written in one transaction per event: the journal entry, the
//! duplicate check and the delivery queued for every webhook commit together, before the bus
//! offset is committed. A crash in between redelivers the event, which the ledger then drops, so
//! every webhook gets each notification queued exactly once. SQLite calls block, so they run in
//! `spawn_blocking` on one connection.

mod journal;
mod webhooks;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use livecast_core::Error;
use rusqlite::{Connection, OptionalExtension};

pub use journal::Recorded;
pub use webhooks::{Attempt, Delivery, DueDeliveries, WebhookRecord, WebhookState};

/// The notification service's durable state.
#[derive(Debug, Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: Arc<PathBuf>,
    instance: Arc<str>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS instance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_events (
    event_id TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_events_by_time ON seen_events (seen_at);
-- AUTOINCREMENT: a cursor is never reused, even after the history is pruned.
CREATE TABLE IF NOT EXISTS notifications (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    event_id TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    name TEXT NOT NULL,
    playback_url TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    last_success_at INTEGER,
    last_failure_at INTEGER
);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    stream_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_stream ON deliveries (webhook_id, stream_id, id);
";

impl Store {
    /// Opens (creating if needed) the file at `path`. A file that cannot be opened is an error
    /// naming it, never a silent in-memory fallback.
    pub async fn open(path: &Path) -> anyhow::Result<Store> {
        let path = path.to_path_buf();
        let opened = path.clone();
        let (conn, instance) = tokio::task::spawn_blocking(move || open_blocking(&opened))
            .await
            .context("the notification store opener panicked")?
            .with_context(|| format!("cannot open the notification store {}", path.display()))?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: Arc::new(path),
            instance: instance.into(),
        })
    }

    /// A name generated when the file was created. The consumer group is named after it, so
    /// the group's committed offsets and this file's journal always belong together.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Whether the file answers (for `/readyz`).
    pub async fn check(&self) -> Result<(), Error> {
        self.call(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await
    }

    /// Runs `work` on the connection in `spawn_blocking`.
    async fn call<T, F>(&self, work: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            // A panic mid-transaction rolls the transaction back when it is dropped, so the
            // connection is usable even if the lock was poisoned.
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut conn)
        })
        .await
        .map_err(|e| Error::internal(format!("notification store task failed: {e}")))?
        .map_err(|e| Error::unavailable(format!("notification store {}: {e}", path.display())))
    }
}

fn open_blocking(path: &Path) -> anyhow::Result<(Connection, String)> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let conn = Connection::open(path)?;
    // FULL: a journal entry is on disk before the bus offset is committed.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    let existing: Option<String> = conn
        .query_row("SELECT name FROM instance WHERE id = 1", [], |row| {
            row.get(0)
        })
        .optional()?;
    let instance = match existing {
        Some(name) => name,
        None => {
            let name = uuid::Uuid::now_v7().simple().to_string();
            conn.execute("INSERT INTO instance (id, name) VALUES (1, ?1)", [&name])?;
            name
        }
    };
    Ok((conn, instance))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_instance_name_is_kept_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/notification.sqlite");
        let first = Store::open(&path).await.unwrap();
        first.check().await.unwrap();
        let name = first.instance().to_owned();
        drop(first);
        let again = Store::open(&path).await.unwrap();
        assert_eq!(again.instance(), name);
        let other = Store::open(&dir.path().join("other.sqlite")).await.unwrap();
        assert_ne!(other.instance(), name);
    }

    #[tokio::test]
    async fn an_unopenable_path_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let error = Store::open(&blocker.join("n.sqlite")).await.unwrap_err();
        assert!(format!("{error:#}").contains("n.sqlite"), "{error:#}");
    }
}
