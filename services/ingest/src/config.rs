//! Configuration of the ingest service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_service::config::HttpConfig;
use serde::Deserialize;

/// Everything ingest needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HLS push and probes.
    pub http: HttpConfig,
    /// RTMP listen address.
    pub rtmp_addr: SocketAddr,
    /// The chunk feed's (gRPC) listen address.
    pub grpc_addr: SocketAddr,
    /// This region's name.
    pub region: String,
    /// The catalogue's gRPC endpoint, which checks stream keys.
    pub catalogue_endpoint: String,
    /// How ingest cuts and keeps streams.
    pub ingest: IngestSettings,
    /// Where source chunks are stored.
    pub blob: BlobConfig,
    /// Where chunk and lifecycle events travel.
    pub bus: BusConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig {
                max_body_bytes: IngestSettings::default().max_push_bytes,
                ..HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8082)))
            },
            rtmp_addr: SocketAddr::from(([127, 0, 0, 1], 1935)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50052)),
            region: "local".into(),
            catalogue_endpoint: "http://127.0.0.1:50051".into(),
            ingest: IngestSettings::default(),
            blob: BlobConfig::Local {
                dir: PathBuf::from("data/blobs"),
            },
            bus: BusConfig::InProcess,
        }
    }
}

/// How ingest cuts and keeps streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    /// Target source chunk length for RTMP input, in milliseconds.
    pub chunk_target_ms: u32,
    /// How long a stream stays live after its broadcaster drops, in milliseconds.
    pub reconnect_window_ms: u64,
    /// How much time one slate chunk covers while the broadcaster is away, in milliseconds.
    /// Slate goes out in pieces about a part long, at real time: a player at the live edge
    /// never catches up with the end of a long piece published ahead of the clock.
    pub slate_ms: u32,
    /// Largest HLS push request (segment or playlist) accepted, in bytes.
    pub max_push_bytes: usize,
    /// Partitions of each topic when ingest creates it.
    pub topic_partitions: u32,
    /// Whether a second publisher on a live stream key takes over as a backup input (the
    /// first is cut off at its next chunk; the stream goes on with a discontinuity). When
    /// false, the second publisher is refused.
    pub backup_inputs: bool,
    /// Where encode workers reach this instance's chunk feed (gRPC `ChunkFeed`) to follow
    /// chunks while they are cut, e.g. `http://10.0.0.7:50052` (in Kubernetes, the pod's
    /// address). Empty: taken from the gRPC listener when it is bound to a specific address;
    /// otherwise workers make no partial segments and wait for durable chunks.
    pub feed_url: String,
}

impl Default for IngestSettings {
    fn default() -> Self {
        IngestSettings {
            chunk_target_ms: 2_000,
            reconnect_window_ms: 30_000,
            slate_ms: 500,
            max_push_bytes: 32 << 20,
            topic_partitions: 8,
            backup_inputs: false,
            feed_url: String::new(),
        }
    }
}

impl IngestSettings {
    /// The reconnect window.
    pub fn reconnect_window(&self) -> Duration {
        Duration::from_millis(self.reconnect_window_ms)
    }
}
