//! Configuration of the streaming edge.

use std::net::SocketAddr;
use std::path::PathBuf;

use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_core::RegionName;
use livecast_service::config::HttpConfig;
use serde::Deserialize;

/// Everything the standalone edge needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HLS delivery and probes.
    pub http: HttpConfig,
    /// This region's name.
    pub region: String,
    /// The catalogue's gRPC endpoint, asked about streams this edge has not seen.
    pub catalogue_endpoint: String,
    /// Where media objects are stored (this region's bucket).
    pub blob: BlobConfig,
    /// Where segment and lifecycle events travel.
    pub bus: BusConfig,
    /// How the edge indexes and caches.
    pub edge: EdgeSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8084))),
            region: "local".into(),
            catalogue_endpoint: "http://127.0.0.1:50051".into(),
            blob: BlobConfig::Local {
                dir: PathBuf::from("data/blobs"),
            },
            bus: BusConfig::InProcess,
            edge: EdgeSettings::default(),
        }
    }
}

/// How the edge indexes streams and caches objects (`[edge]` in the config file).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeSettings {
    /// Segments listed in a live media playlist (at least 3, so a player always has three
    /// target durations of media ahead of it).
    pub live_window_segments: usize,
    /// Bytes of init and media segments kept in memory.
    pub cache_bytes: u64,
    /// Streams whose segment index is kept in memory; the least recently used is dropped
    /// first and reloaded from the catalogue when asked for again.
    pub max_streams: u64,
    /// Partitions of each topic when the edge creates it.
    pub topic_partitions: u32,
    /// Other regions' edges to pull objects from when this region lacks them, in order of
    /// preference: `region=url` pairs separated by commas, e.g.
    /// `eu-west=http://edge.eu-west:8084,us-east=http://edge.us-east:8084`. Empty: none.
    pub peers: String,
    /// The region this edge serves; names its consumer groups. Filled from the service's
    /// top-level `region`, not read from the `[edge]` section.
    #[serde(skip)]
    pub region: String,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        EdgeSettings {
            live_window_segments: 15,
            cache_bytes: 256 << 20,
            max_streams: 10_000,
            topic_partitions: 8,
            peers: String::new(),
            region: "local".into(),
        }
    }
}

impl EdgeSettings {
    /// The same settings for another region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// Checks the settings once, at start-up, with a message naming the key to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.live_window_segments >= 3,
            "edge.live_window_segments = {} is too small; HLS players need at least 3",
            self.live_window_segments
        );
        anyhow::ensure!(self.max_streams >= 1, "edge.max_streams must be at least 1");
        anyhow::ensure!(
            self.topic_partitions >= 1,
            "edge.topic_partitions must be at least 1"
        );
        RegionName::parse(self.region.clone())
            .map_err(|e| anyhow::anyhow!("invalid region: {}", e.message))?;
        let peers = self.peer_regions()?;
        anyhow::ensure!(
            peers.iter().all(|peer| peer.region.as_str() != self.region),
            "edge.peers names this edge's own region {}",
            self.region
        );
        Ok(())
    }

    /// `peers`, parsed.
    pub fn peer_regions(&self) -> anyhow::Result<Vec<crate::regions::PeerRegion>> {
        crate::regions::parse_peers(&self.peers).map_err(anyhow::Error::msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_small_windows_are_refused() {
        let settings = EdgeSettings::default();
        settings.validate().unwrap();
        assert_eq!(settings.live_window_segments, 15);
        assert_eq!(settings.cache_bytes, 256 << 20);
        let small = EdgeSettings {
            live_window_segments: 2,
            ..EdgeSettings::default()
        };
        let error = small.validate().unwrap_err().to_string();
        assert!(error.contains("live_window_segments"), "{error}");
        let bad_region = EdgeSettings::default().with_region("eu/west");
        assert!(bad_region.validate().is_err());
        let config = Config::default();
        assert_eq!(config.http.addr.port(), 8084);
        assert_eq!(config.catalogue_endpoint, "http://127.0.0.1:50051");
    }
}
