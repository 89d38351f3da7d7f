//! The hand-over between a Kafka subscription's pump thread and its `next()`/`commit()`.
//!
//! The inbox also keeps the member's view of its assignment: every message is stamped with the
//! assignment it was fetched under, and a message whose partition was revoked since is dropped
//! instead of handed out (the partition's next owner reads it again from the committed offset).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::sync::futures::Notified;

use crate::{BusError, Message};

/// Messages the pump may hold for `next()` before it pauses fetching.
const CAPACITY: usize = 256;

/// Shared by the pump, the rebalance callback and the subscription.
#[derive(Default)]
pub(crate) struct Inbox {
    state: Mutex<InboxState>,
    /// To `next()` and `join`: a message, an assignment or a failure arrived.
    changed: Notify,
    /// To the pump: `next()` made room.
    room: Notify,
    /// To the pump: the assignment changed, apply the pause state to it.
    rebalanced: Notify,
}

#[derive(Default)]
struct InboxState {
    /// Owned partitions, each with the number of the assignment that gave it.
    owned: HashMap<i32, u64>,
    /// Assignments received so far; the member has joined once this is non-zero.
    assignments: u64,
    /// Messages not yet handed out, each with the assignment it was fetched under.
    messages: VecDeque<(u64, Message)>,
    /// Why the pump stopped, if it did.
    failure: Option<BusError>,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, InboxState> {
        // Every critical section completes its update or makes none, so a poisoned state is
        // still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Completes when a message, an assignment or a failure arrived since the last call.
    pub(crate) fn changed(&self) -> Notified<'_> {
        self.changed.notified()
    }

    /// Completes when `next()` has taken messages since the last call.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.room.notified()
    }

    /// Completes when the assignment changed since the last call.
    pub(crate) fn rebalanced(&self) -> Notified<'_> {
        self.rebalanced.notified()
    }

    /// Queues a fetched message; answers whether the inbox is now full.
    pub(crate) fn push(&self, message: Message) -> bool {
        let full = {
            let mut state = self.lock();
            if let Some(assignment) = state.owned.get(&message.partition).copied() {
                state.messages.push_back((assignment, message));
            }
            state.messages.len() >= CAPACITY
        };
        self.changed.notify_one();
        full
    }

    pub(crate) fn is_full(&self) -> bool {
        self.lock().messages.len() >= CAPACITY
    }

    /// The next message of a partition still owned under the assignment it was fetched under;
    /// the failure that stopped the pump once nothing is left.
    pub(crate) fn pop(&self) -> Result<Option<Message>, BusError> {
        let mut state = self.lock();
        let mut found = None;
        while let Some((assignment, message)) = state.messages.pop_front() {
            if state.owned.get(&message.partition) == Some(&assignment) {
                found = Some(message);
                break;
            }
        }
        if state.messages.len() < CAPACITY {
            self.room.notify_one();
        }
        match (found, &state.failure) {
            (Some(message), _) => Ok(Some(message)),
            (None, Some(failure)) => Err(failure.clone()),
            (None, None) => Ok(None),
        }
    }

    /// Whether the member has received its first assignment; the pump's failure if it stopped.
    pub(crate) fn joined(&self) -> Result<bool, BusError> {
        let state = self.lock();
        match &state.failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(state.assignments > 0),
        }
    }

    pub(crate) fn owns(&self, partition: i32) -> bool {
        self.lock().owned.contains_key(&partition)
    }

    pub(crate) fn owned_partitions(&self) -> Vec<i32> {
        self.lock().owned.keys().copied().collect()
    }

    pub(crate) fn assign(&self, partitions: &[i32]) {
        {
            let mut state = self.lock();
            state.assignments += 1;
            let assignment = state.assignments;
            for partition in partitions {
                state.owned.insert(*partition, assignment);
            }
        }
        self.changed.notify_one();
        self.rebalanced.notify_one();
    }

    pub(crate) fn revoke(&self, partitions: &[i32]) {
        {
            let mut state = self.lock();
            let InboxState {
                owned, messages, ..
            } = &mut *state;
            for partition in partitions {
                owned.remove(partition);
            }
            messages
                .retain(|(assignment, message)| owned.get(&message.partition) == Some(assignment));
        }
        // Dropped messages made room; a paused pump re-checks.
        self.room.notify_one();
        self.rebalanced.notify_one();
    }

    pub(crate) fn fail(&self, failure: BusError) {
        self.lock().failure = Some(failure);
        self.changed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn message(partition: i32, offset: i64) -> Message {
        Message {
            topic: "t".into(),
            key: "k".into(),
            payload: Bytes::new(),
            partition,
            offset,
        }
    }

    #[test]
    fn messages_of_revoked_partitions_are_not_handed_out() {
        let inbox = Inbox::default();
        assert!(!inbox.joined().unwrap());
        inbox.assign(&[0, 1]);
        assert!(inbox.joined().unwrap());
        inbox.push(message(0, 7));
        inbox.push(message(1, 3));
        inbox.revoke(&[0]);
        // Taken back and given again: what was fetched before belongs to the old assignment.
        inbox.push(message(1, 4));
        inbox.revoke(&[1]);
        inbox.assign(&[1]);
        inbox.push(message(1, 3));
        assert_eq!(inbox.pop().unwrap(), Some(message(1, 3)));
        assert_eq!(inbox.pop().unwrap(), None);
    }

    #[test]
    fn a_full_inbox_says_so_and_a_failure_comes_after_the_messages() {
        let inbox = Inbox::default();
        inbox.assign(&[0]);
        let full: Vec<bool> = (0..CAPACITY as i64)
            .map(|offset| inbox.push(message(0, offset)))
            .collect();
        assert!(!full[CAPACITY - 2] && full[CAPACITY - 1]);
        assert!(inbox.is_full());
        inbox.fail(BusError::Closed("gone".into()));
        assert_eq!(inbox.pop().unwrap(), Some(message(0, 0)));
        assert!(!inbox.is_full());
        for _ in 1..CAPACITY {
            inbox.pop().unwrap();
        }
        assert_eq!(inbox.pop(), Err(BusError::Closed("gone".into())));
    }
}
