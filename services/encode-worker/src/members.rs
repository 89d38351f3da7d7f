//! The encode workers alive in this region, as their heartbeats on `livecast.workers` tell:
//! where a primary finds a standby, and how an owner knows whether the worker that claimed a
//! chunk may still announce it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::StreamId;
use livecast_core::time::now_millis;
use livecast_proto::{topics, v1};
use prost::Message;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

/// How often a worker says it is alive.
pub(crate) const HEARTBEAT: Duration = Duration::from_secs(1);
/// A worker not heard from for this long is taken to be gone.
const EXPIRY: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
struct Peer {
    standby_url: String,
    seen: Instant,
}

/// The workers of this worker's group heard from recently.
#[derive(Debug)]
pub(crate) struct Members {
    me: String,
    group: String,
    started: Instant,
    peers: Mutex<HashMap<String, Peer>>,
}

impl Members {
    /// The members of `group` as `me` sees them, none heard yet.
    pub fn new(me: String, group: String) -> Self {
        Members {
            me,
            group,
            started: Instant::now(),
            peers: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a heartbeat in.
    pub fn heard(&self, heartbeat: v1::WorkerHeartbeat) {
        if heartbeat.worker_id == self.me || heartbeat.group != self.group {
            return;
        }
        let peer = Peer {
            standby_url: heartbeat.standby_url,
            seen: Instant::now(),
        };
        let mut peers = self.peers();
        peers.insert(heartbeat.worker_id, peer);
        peers.retain(|_, peer| peer.seen.elapsed() < EXPIRY * 10);
    }

    /// Whether `worker` may still be at work: heard from lately, or this worker has not been
    /// listening long enough to know.
    pub fn alive(&self, worker: &str) -> bool {
        self.started.elapsed() < EXPIRY
            || self
                .peers()
                .get(worker)
                .is_some_and(|peer| peer.seen.elapsed() < EXPIRY)
    }

    /// The standby for `stream`: among the other workers alive that take standby work, the one
    /// that ranks first for this stream (rendezvous hashing, so a stream keeps its standby while
    /// the fleet changes around it). Its id and URL.
    pub fn choose_standby(&self, stream: &StreamId) -> Option<(String, String)> {
        self.peers()
            .iter()
            .filter(|(_, peer)| peer.seen.elapsed() < EXPIRY && !peer.standby_url.is_empty())
            .max_by_key(|(id, _)| rank(stream, id))
            .map(|(id, peer)| (id.clone(), peer.standby_url.clone()))
    }

    fn peers(&self) -> std::sync::MutexGuard<'_, HashMap<String, Peer>> {
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn rank(stream: &StreamId, worker: &str) -> u64 {
    let hash = Sha256::new()
        .chain_update(stream.as_str())
        .chain_update([0])
        .chain_update(worker)
        .finalize();
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Says this worker is alive every [`HEARTBEAT`] and listens to the others, until `shutdown`.
/// `counts` gives its live streams as primary and as standby.
pub(crate) fn spawn(
    bus: Arc<dyn EventBus>,
    members: Arc<Members>,
    standby_url: String,
    counts: impl Fn() -> (u32, u32) + Send + 'static,
    shutdown: CancellationToken,
) {
    let (me, group) = (members.me.clone(), members.group.clone());
    let speaker = {
        let (bus, shutdown) = (bus.clone(), shutdown.clone());
        async move {
            let mut ticks = tokio::time::interval(HEARTBEAT);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    () = shutdown.cancelled() => return,
                }
                let (primary_streams, standby_streams) = counts();
                let heartbeat = v1::WorkerHeartbeat {
                    worker_id: me.clone(),
                    standby_url: standby_url.clone(),
                    at: now_millis(),
                    primary_streams,
                    standby_streams,
                    group: group.clone(),
                };
                let payload = Bytes::from(heartbeat.encode_to_vec());
                if let Err(error) = bus.publish(topics::WORKERS, &me, payload).await {
                    tracing::debug!(%error, "heartbeat not published");
                }
            }
        }
    };
    tokio::spawn(speaker);
    // Every worker hears every heartbeat: a group of its own, from the live end.
    let options = SubscribeOptions::latest(format!("encode-worker-members-{}", members.me));
    tokio::spawn(livecast_bus::consume(
        bus,
        topics::WORKERS,
        options,
        shutdown,
        move |message| {
            let members = members.clone();
            async move {
                match v1::WorkerHeartbeat::decode(message.payload.as_ref()) {
                    Ok(heartbeat) => members.heard(heartbeat),
                    Err(error) => tracing::debug!(%error, "undecodable worker heartbeat"),
                }
                Ok(())
            }
        },
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heartbeat(worker: &str) -> v1::WorkerHeartbeat {
        v1::WorkerHeartbeat {
            worker_id: worker.into(),
            standby_url: format!("http://{worker}:50053"),
            group: "encode-worker".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_standby_is_another_worker_and_stays_the_same_while_others_join() {
        let members = Members::new("me".into(), "encode-worker".into());
        let stream = StreamId::parse("s1".to_string()).unwrap();
        assert_eq!(members.choose_standby(&stream), None, "nobody else yet");
        members.heard(heartbeat("me"));
        assert_eq!(members.choose_standby(&stream), None, "never itself");
        for worker in ["a", "b"] {
            members.heard(heartbeat(worker));
        }
        let chosen = members.choose_standby(&stream).unwrap().0;
        members.heard(heartbeat("c"));
        let after = members.choose_standby(&stream).unwrap().0;
        assert!(
            after == chosen || after == "c",
            "only a newcomer can rank first"
        );
        let without_url = v1::WorkerHeartbeat {
            standby_url: String::new(),
            ..heartbeat("d")
        };
        members.heard(without_url);
        assert_ne!(members.choose_standby(&stream).unwrap().0, "d");
        let other_fleet = v1::WorkerHeartbeat {
            group: "encode-worker-eu".into(),
            ..heartbeat("e")
        };
        members.heard(other_fleet);
        assert!(!members.alive("e") || members.started.elapsed() < EXPIRY);
    }

    #[test]
    fn unknown_workers_count_as_alive_only_until_this_one_has_listened_long_enough() {
        let members = Members::new("me".into(), "encode-worker".into());
        assert!(members.alive("stranger"), "too early to tell");
        let listening = Members {
            started: Instant::now() - EXPIRY,
            ..Members::new("me".into(), "encode-worker".into())
        };
        assert!(!listening.alive("stranger"));
        listening.heard(heartbeat("a"));
        assert!(listening.alive("a"));
    }
}
