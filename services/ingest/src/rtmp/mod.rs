//! RTMP ingest: broadcasters publish to `rtmp://HOST/{app}/{stream_key}`.
//!
//! The protocol work (handshake, chunk stream, AMF0 commands) is `rml_rtmp`'s, which is
//! sans-I/O: this module owns the sockets, the timeouts, the connection limit and shutdown.
//! Each accepted publish gets a [`Publisher`](crate::publish::Publisher) from the
//! [`PublishGate`], and its media goes through an [`FlvChunker`](livecast_formats::flv::FlvChunker) into
//! self-contained FLV source chunks. Only publishing is served; play requests are refused.

mod connection;
mod convert;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::publish::PublishGate;
use livecast_formats::flv::DEFAULT_TARGET_MS;

/// How long connections get to flush their last chunk after shutdown is requested.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors, say) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How the RTMP server behaves.
#[derive(Debug, Clone)]
pub struct RtmpConfig {
    /// Source chunk duration aimed for, in milliseconds (cuts happen at the next keyframe).
    pub chunk_target_ms: u32,
    /// The only RTMP application name served (`live` in `rtmp://HOST/live/KEY`).
    pub app: String,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time a client gets to complete the RTMP handshake.
    pub handshake_timeout: Duration,
    /// Time without a byte from the client after which its connection is closed.
    pub idle_timeout: Duration,
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            chunk_target_ms: DEFAULT_TARGET_MS,
            app: "live".into(),
            max_connections: 256,
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(15),
        }
    }
}

/// Serves RTMP publishers on `listener` until `shutdown`, then lets every connection flush its
/// last chunk and end its publish (bounded by a drain timeout).
pub async fn serve_rtmp(
    listener: TcpListener,
    gate: Arc<dyn PublishGate>,
    config: RtmpConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let limit = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined {
                    tracing::error!(%error, "rtmp connection task failed");
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::warn!(%error, "rtmp accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                };
                let Ok(permit) = limit.clone().try_acquire_owned() else {
                    metrics::connection_ended("over_limit");
                    tracing::warn!(%peer, limit = config.max_connections, "rtmp connection refused: too many connections");
                    drop(stream);
                    continue;
                };
                let span = tracing::info_span!("rtmp", %peer);
                let connection = connection::serve(stream, gate.clone(), config.clone(), shutdown.clone());
                connections.spawn(
                    async move {
                        connection.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = connections.len(),
            "rtmp connections did not finish in time; aborting them"
        );
        connections.shutdown().await;
    }
    Ok(())
}
