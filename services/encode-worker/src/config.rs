//! Configuration of the encode worker.

use std::net::SocketAddr;
use std::path::PathBuf;

use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_media::{Ladder, Rung, TranscodeOptions};
use livecast_service::config::HttpConfig;
use serde::Deserialize;

/// Everything the worker needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Probes and metrics.
    pub http: HttpConfig,
    /// Where other workers reach this one's `Standby` service (gRPC).
    pub grpc_addr: SocketAddr,
    /// This region's name (stamped on the segments it announces).
    pub region: String,
    /// How chunks are transcoded.
    pub worker: WorkerSettings,
    /// Where chunks are read and segments written.
    pub blob: BlobConfig,
    /// Where chunk and segment events travel.
    pub bus: BusConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8083))),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50053)),
            region: "local".into(),
            worker: WorkerSettings::default(),
            blob: BlobConfig::Local {
                dir: PathBuf::from("data/blobs"),
            },
            bus: BusConfig::InProcess,
        }
    }
}

/// How chunks are transcoded.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    /// Chunks transcoded at once (each one a consumer-group member); 0 means one per core.
    pub concurrency: usize,
    /// x264 preset.
    pub preset: String,
    /// The ladder; the default is 1080p, 720p, 480p, 360p and 240p plus audio.
    pub ladder: Vec<RungSettings>,
    /// AAC bitrate of every rendition, bits per second.
    pub audio_bitrate: u32,
    /// Partitions of each topic when the worker creates it.
    pub topic_partitions: u32,
    /// The consumer group on `livecast.chunks`; every worker of a region shares it.
    pub group: String,
    /// The backup region's blob store: every segment is copied there after it is announced,
    /// so viewers of that region keep playing if this region goes down. None: no copy.
    pub backup_blob: Option<livecast_blob::BlobConfig>,
    /// Low-Latency HLS: follow each chunk while ingest cuts it and announce partial segments
    /// as the encoders make them (x264 then runs without lookahead). False: whole segments
    /// from durable chunks only.
    pub low_latency: bool,
    /// The longest a partial segment lasts (`PART-TARGET`), in milliseconds.
    pub part_target_ms: u32,
    /// Ingest's `chunk_target_ms`: where segments are expected to end (no keyframe is forced
    /// just before).
    pub chunk_target_ms: u32,
    /// Keep a hot standby on another worker for every live stream this worker makes parts of:
    /// it encodes the same chunks in step and publishes in this worker's place within
    /// `standby_lease_ms` if this worker goes. Doubles the CPU and memory of live encoding.
    pub standby: bool,
    /// How long a standby waits without a word from its primary before taking over.
    pub standby_lease_ms: u32,
    /// Where other workers reach this one's `Standby` service, e.g. `http://10.0.0.9:50053`
    /// (in Kubernetes, the pod's address). Empty: taken from the gRPC listener when it is
    /// bound to a specific address; otherwise this worker is never anyone's standby.
    pub standby_url: String,
    /// x264 threads per rendition; 0 lets x264 choose from the core count. A standby can only
    /// carry on a group of pictures its primary began when both make the same bytes, which
    /// needs the same thread count: set it on a fleet of mixed machines.
    pub x264_threads: u32,
}

/// One rung of the ladder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungSettings {
    /// Its name (`720p`).
    pub name: String,
    /// Picture height.
    pub height: u32,
    /// Video bitrate, bits per second.
    pub video_bitrate: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        let ladder = Ladder::default();
        WorkerSettings {
            concurrency: 0,
            preset: "veryfast".into(),
            ladder: ladder
                .rungs
                .iter()
                .map(|rung| RungSettings {
                    name: rung.name.clone(),
                    height: rung.height,
                    video_bitrate: rung.video_bitrate,
                })
                .collect(),
            audio_bitrate: ladder.audio_bitrate,
            topic_partitions: 8,
            group: crate::GROUP.into(),
            backup_blob: None,
            low_latency: true,
            part_target_ms: TranscodeOptions::default().part_target_ms,
            chunk_target_ms: TranscodeOptions::default().chunk_target_ms,
            standby: true,
            standby_lease_ms: 400,
            standby_url: String::new(),
            x264_threads: 0,
        }
    }
}

impl WorkerSettings {
    /// The ladder to encode.
    pub fn ladder(&self) -> Ladder {
        Ladder {
            rungs: self
                .ladder
                .iter()
                .map(|r| Rung::new(r.name.clone(), r.height, r.video_bitrate))
                .collect(),
            audio_bitrate: self.audio_bitrate,
        }
    }

    /// Encoder options.
    pub fn transcode_options(&self) -> TranscodeOptions {
        TranscodeOptions {
            preset: self.preset.clone(),
            x264_threads: self.x264_threads,
            low_delay: self.low_latency,
            part_target_ms: self.part_target_ms,
            chunk_target_ms: self.chunk_target_ms,
            keyframe_interval_ms: match self.low_latency {
                true => TranscodeOptions::default().keyframe_interval_ms,
                false => 0,
            },
            ..TranscodeOptions::default()
        }
    }

    /// How many chunks are transcoded at once.
    pub fn concurrency(&self) -> usize {
        if self.concurrency > 0 {
            self.concurrency
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        }
    }
}
