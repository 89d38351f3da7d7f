//! The in-memory fan-out: the retained history (the tail of the journal) and the SSE clients
//! connected to this instance.
//!
//! One mutex guards both, so a client that subscribes gets the history after its cursor and
//! then every later notification, with no gap and no duplicate. Each client has a bounded
//! queue; a client whose queue is full when a notification arrives is dropped (its stream ends
//! after what is queued, and it reconnects with `Last-Event-ID`), so a slow reader never makes
//! the process hold more than `sse_client_buffer` notifications for it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use livecast_core::Error;
use tokio::sync::mpsc;

use crate::metrics;
use crate::notification::Notification;

/// History and connected clients.
#[derive(Debug)]
pub struct Hub {
    state: Mutex<HubState>,
    history_size: usize,
    client_buffer: usize,
    max_clients: usize,
    clients: Arc<AtomicUsize>,
}

#[derive(Debug, Default)]
struct HubState {
    history: VecDeque<Arc<Notification>>,
    /// The highest cursor ever published (the history may be empty after a restart on a
    /// pruned journal, never in practice, but cursors must not go backwards).
    latest: u64,
    subscribers: Vec<mpsc::Sender<Arc<Notification>>>,
    closed: bool,
}

/// A connected SSE client: what it missed, then what comes.
#[derive(Debug)]
pub struct Subscription {
    /// Retained notifications after the client's cursor, oldest first.
    pub replay: Vec<Arc<Notification>>,
    /// Later notifications; ends when the client is dropped as slow or the service stops.
    pub live: mpsc::Receiver<Arc<Notification>>,
    _slot: ClientSlot,
}

/// Holds one of the `max_clients` places until the client disconnects.
#[derive(Debug)]
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
        metrics::sse_clients().dec();
    }
}

/// One page of the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Notifications after the cursor, oldest first.
    pub notifications: Vec<Arc<Notification>>,
    /// The cursor to ask with next time.
    pub next_cursor: u64,
    /// Whether notifications after the cursor were pruned from the history before this call.
    pub truncated: bool,
}

impl Hub {
    /// A hub holding `history` (oldest first; only the last `history_size` are kept).
    pub fn new(
        history: Vec<Notification>,
        history_size: usize,
        client_buffer: usize,
        max_clients: usize,
    ) -> Hub {
        let mut state = HubState::default();
        for notification in history {
            state.latest = state.latest.max(notification.id);
            state.history.push_back(Arc::new(notification));
        }
        while state.history.len() > history_size {
            state.history.pop_front();
        }
        Hub {
            state: Mutex::new(state),
            history_size,
            client_buffer,
            max_clients,
            clients: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Every critical section below completes its change or makes none.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `notification` to the history and hands it to every client, dropping the clients
    /// whose queue is full.
    pub fn publish(&self, notification: Notification) {
        let notification = Arc::new(notification);
        let mut state = self.lock();
        state.latest = state.latest.max(notification.id);
        state.history.push_back(notification.clone());
        while state.history.len() > self.history_size {
            state.history.pop_front();
        }
        state
            .subscribers
            .retain(|client| match client.try_send(notification.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    metrics::sse_dropped("slow");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
    }

    /// Connects a client that has seen everything up to `after` (`None`: only what comes
    /// next). `Unavailable` when `max_sse_clients` are connected or the service is stopping.
    pub fn subscribe(&self, after: Option<u64>) -> Result<Subscription, Error> {
        let mut state = self.lock();
        if state.closed {
            return Err(Error::unavailable("the notification service is stopping"));
        }
        if self.clients.load(Ordering::SeqCst) >= self.max_clients {
            return Err(Error::unavailable(format!(
                "{} SSE clients are connected, the most this instance serves; retry later",
                self.max_clients
            )));
        }
        self.clients.fetch_add(1, Ordering::SeqCst);
        metrics::sse_clients().inc();
        metrics::sse_connected();
        let slot = ClientSlot(self.clients.clone());
        let replay = match after {
            Some(after) => state
                .history
                .iter()
                .filter(|n| n.id > after)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let (sender, live) = mpsc::channel(self.client_buffer);
        state.subscribers.push(sender);
        Ok(Subscription {
            replay,
            live,
            _slot: slot,
        })
    }

    /// At most `limit` notifications after `since` (`None`: from the oldest retained).
    pub fn page(&self, since: Option<u64>, limit: usize) -> Page {
        let state = self.lock();
        let asked = since.is_some();
        // A cursor beyond the latest comes from another instance or an older data file: go on
        // from here rather than wait for a cursor this instance may never reach.
        let since = since.unwrap_or(0).min(state.latest);
        let oldest = state.history.front().map_or(state.latest + 1, |n| n.id);
        let notifications: Vec<_> = state
            .history
            .iter()
            .filter(|n| n.id > since)
            .take(limit)
            .cloned()
            .collect();
        let next_cursor = notifications.last().map_or(since, |n| n.id);
        Page {
            notifications,
            next_cursor,
            truncated: asked && since + 1 < oldest,
        }
    }

    /// Clients connected now.
    pub fn client_count(&self) -> usize {
        self.clients.load(Ordering::SeqCst)
    }

    /// Ends every client's stream and refuses new ones (at shutdown).
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.subscribers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::NotificationKind;

    fn notification(id: u64) -> Notification {
        Notification {
            id,
            kind: NotificationKind::Live,
            event_id: format!("e{id}"),
            stream_id: "s".into(),
            name: String::new(),
            playback_url: String::new(),
            at: String::new(),
        }
    }

    fn ids(items: &[Arc<Notification>]) -> Vec<u64> {
        items.iter().map(|n| n.id).collect()
    }

    #[test]
    fn a_subscriber_gets_what_it_missed_then_what_comes() {
        let hub = Hub::new((1..=3).map(notification).collect(), 10, 8, 10);
        let mut sub = hub.subscribe(Some(1)).unwrap();
        assert_eq!(ids(&sub.replay), vec![2, 3]);
        hub.publish(notification(4));
        assert_eq!(sub.live.try_recv().unwrap().id, 4);
        let fresh = hub.subscribe(None).unwrap();
        assert!(fresh.replay.is_empty());
        assert_eq!(hub.client_count(), 2);
        drop(sub);
        drop(fresh);
        assert_eq!(hub.client_count(), 0);
    }

    #[test]
    fn a_slow_subscriber_is_dropped_after_its_buffer() {
        let hub = Hub::new(Vec::new(), 10, 2, 10);
        let mut slow = hub.subscribe(None).unwrap();
        let mut fast = hub.subscribe(None).unwrap();
        for id in 1..=4 {
            hub.publish(notification(id));
            assert_eq!(fast.live.try_recv().unwrap().id, id);
        }
        assert_eq!(slow.live.try_recv().unwrap().id, 1);
        assert_eq!(slow.live.try_recv().unwrap().id, 2);
        assert!(matches!(
            slow.live.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn history_is_bounded_and_pages_follow_the_cursor() {
        let hub = Hub::new((1..=5).map(notification).collect(), 3, 8, 10);
        let page = hub.page(None, 2);
        assert_eq!(ids(&page.notifications), vec![3, 4]);
        assert!(!page.truncated);
        assert_eq!(page.next_cursor, 4);
        let page = hub.page(Some(4), 10);
        assert_eq!(ids(&page.notifications), vec![5]);
        assert!(!page.truncated);
        let empty = hub.page(Some(5), 10);
        assert!(empty.notifications.is_empty());
        assert_eq!(empty.next_cursor, 5);
        assert!(hub.page(Some(1), 10).truncated);
        let foreign = hub.page(Some(99), 10);
        assert_eq!(foreign.next_cursor, 5);
    }

    #[test]
    fn client_count_is_bounded_and_close_ends_streams() {
        let hub = Hub::new(Vec::new(), 10, 8, 1);
        let mut only = hub.subscribe(None).unwrap();
        let refused = hub.subscribe(None).unwrap_err();
        assert_eq!(refused.kind, livecast_core::ErrorKind::Unavailable);
        hub.close();
        assert!(matches!(
            only.live.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        assert!(hub.subscribe(None).is_err());
    }
}
