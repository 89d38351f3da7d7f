//! `spawn_edge()`: an edge on port 0 over an in-process bus, a local blob store in a temp dir
//! and an in-memory catalogue; plus what a broadcaster's pipeline would publish.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus};
use livecast_core::{
    Error, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamStatus, blob_keys,
};
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use livecast_service::config::HttpConfig;
use livecast_streaming_edge::{EdgeService, EdgeSettings, PlaybackDirectory, PlaybackStream};
use prost::Message as _;
use tokio::net::TcpListener;

/// Wall-clock time of the first segment of every test stream: 2026-01-01T00:00:00Z.
pub const EPOCH_MS: i64 = 1_767_225_600_000;

/// The catalogue as an edge sees it, in memory, counting cold loads.
#[derive(Default)]
pub struct MemoryDirectory {
    streams: Mutex<HashMap<StreamId, Recorded>>,
    pub stream_calls: AtomicUsize,
}

#[derive(Default, Clone)]
struct Recorded {
    status: Option<StreamStatus>,
    renditions: BTreeMap<RenditionName, RenditionRecord>,
    segments: BTreeMap<(RenditionName, u64), SegmentRecord>,
}

impl MemoryDirectory {
    pub fn set_status(&self, id: &StreamId, status: StreamStatus) {
        let mut streams = self.streams.lock().unwrap();
        streams.entry(id.clone()).or_default().status = Some(status);
    }

    pub fn record(&self, rendition: RenditionRecord, segment: SegmentRecord) {
        let mut streams = self.streams.lock().unwrap();
        let recorded = streams.entry(segment.stream_id.clone()).or_default();
        recorded
            .segments
            .insert((segment.rendition.clone(), segment.seq), segment);
        recorded
            .renditions
            .insert(rendition.name.clone(), rendition);
    }

    fn recorded(&self, id: &StreamId) -> Result<Recorded, Error> {
        let streams = self.streams.lock().unwrap();
        streams
            .get(id)
            .filter(|r| r.status.is_some())
            .cloned()
            .ok_or_else(|| Error::not_found(format!("stream {id} not found")))
    }
}

#[async_trait::async_trait]
impl PlaybackDirectory for MemoryDirectory {
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
        self.stream_calls.fetch_add(1, Ordering::SeqCst);
        // Give concurrent first requests the chance to pile up behind this load.
        tokio::task::yield_now().await;
        let recorded = self.recorded(id)?;
        Ok(PlaybackStream {
            id: id.clone(),
            status: recorded.status.expect("filtered"),
            home_region: "test".into(),
        })
    }

    async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        Ok(self.recorded(id)?.renditions.into_values().collect())
    }

    async fn segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        Ok(self
            .recorded(id)?
            .segments
            .range((rendition.clone(), from_seq)..=(rendition.clone(), u64::MAX))
            .map(|(_, s)| s.clone())
            .take(limit as usize)
            .collect())
    }
}

/// What a region has: a bus, a blob store, a catalogue.
pub struct World {
    pub bus: Arc<dyn EventBus>,
    pub blob: Arc<dyn BlobStore>,
    pub directory: Arc<MemoryDirectory>,
    _dir: tempfile::TempDir,
}

/// One rendition of a test stream, as the encoder describes it.
#[derive(Debug, Clone)]
pub struct Rendition {
    pub name: &'static str,
    pub width: u32,
    pub height: u32,
    pub bandwidth: u32,
    pub codecs: &'static str,
    pub audio_only: bool,
}

pub const P720: Rendition = Rendition {
    name: "720p",
    width: 1280,
    height: 720,
    bandwidth: 3_000_000,
    codecs: "avc1.64001f,mp4a.40.2",
    audio_only: false,
};
pub const P360: Rendition = Rendition {
    name: "360p",
    width: 640,
    height: 360,
    bandwidth: 800_000,
    codecs: "avc1.64001e,mp4a.40.2",
    audio_only: false,
};
pub const AUDIO: Rendition = Rendition {
    name: "audio",
    width: 0,
    height: 0,
    bandwidth: 64_000,
    codecs: "mp4a.40.2",
    audio_only: true,
};

impl Rendition {
    fn info(&self) -> v1::RenditionInfo {
        v1::RenditionInfo {
            name: self.name.into(),
            width: self.width,
            height: self.height,
            bandwidth: self.bandwidth,
            average_bandwidth: self.bandwidth * 9 / 10,
            codecs: self.codecs.into(),
            frame_rate_milli: if self.audio_only { 0 } else { 29_970 },
            audio_only: self.audio_only,
        }
    }

    fn record(&self, stream: &StreamId) -> RenditionRecord {
        let info = self.info();
        RenditionRecord {
            stream_id: stream.clone(),
            name: RenditionName::parse(info.name).unwrap(),
            width: info.width,
            height: info.height,
            bandwidth: info.bandwidth,
            average_bandwidth: info.average_bandwidth,
            codecs: info.codecs,
            frame_rate_milli: info.frame_rate_milli,
            audio_only: info.audio_only,
        }
    }

    pub fn name(&self) -> RenditionName {
        RenditionName::parse(self.name).unwrap()
    }
}

/// One segment to announce.
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    pub seq: u64,
    pub duration_ms: u32,
    pub discontinuity: bool,
    pub at_ms: i64,
}

impl Seg {
    /// A 2 s segment at its place on a continuous timeline.
    pub fn nth(seq: u64) -> Seg {
        Seg {
            seq,
            duration_ms: 2_000,
            discontinuity: false,
            at_ms: EPOCH_MS + seq as i64 * 2_000,
        }
    }
}

impl World {
    pub async fn new() -> World {
        if std::env::var_os("TEST_LOG").is_some() {
            livecast_service::telemetry::init();
        }
        let dir = tempfile::tempdir().unwrap();
        let blob = LocalBlobStore::open(dir.path().join("blobs"))
            .await
            .unwrap();
        World {
            bus: Arc::new(InProcessBus::new()),
            blob: Arc::new(blob),
            directory: Arc::new(MemoryDirectory::default()),
            _dir: dir,
        }
    }

    /// A new stream the catalogue knows, in `status`, announced on the bus.
    pub async fn stream(&self, status: StreamStatus) -> StreamId {
        let id = StreamId::generate();
        self.set_status(&id, status).await;
        id
    }

    /// What the catalogue does on a lifecycle change: record it, then publish it.
    pub async fn set_status(&self, id: &StreamId, status: StreamStatus) {
        self.directory.set_status(id, status);
        let event = v1::StreamEvent {
            event_id: livecast_core::EventId::generate().to_string(),
            stream_id: id.to_string(),
            kind: v1::StreamStatus::from(status) as i32,
            at: EPOCH_MS,
            region: "test".into(),
            ..Default::default()
        };
        self.publish(topics::STREAM_EVENTS, id, event.encode_to_vec())
            .await;
    }

    /// What the encoder (bytes, event) and the catalogue (record) do for a durable segment.
    pub async fn segment(
        &self,
        id: &StreamId,
        rendition: &Rendition,
        seg: Seg,
        body: Option<Bytes>,
    ) {
        self.segment_after_parts(id, rendition, seg, body, 0).await;
    }

    /// What the encoder does for part `index` (500 ms, the first one independent) of segment
    /// `seq` while it is being made: the bytes, then `PartReady`.
    pub async fn part(
        &self,
        id: &StreamId,
        rendition: &Rendition,
        seq: u64,
        index: u32,
        body: Bytes,
    ) {
        self.part_of(id, rendition, (seq, index), body, false).await;
    }

    /// As [`World::part`], saying whether it is the segment's last part.
    pub async fn part_of(
        &self,
        id: &StreamId,
        rendition: &Rendition,
        (seq, index): (u64, u32),
        body: Bytes,
        last: bool,
    ) {
        let name = rendition.name();
        let key = blob_keys::media_part(id, &name, seq, index);
        self.blob.put(&key, body.clone()).await.unwrap();
        let ready = v1::PartReady {
            event_id: livecast_core::EventId::generate().to_string(),
            stream_id: id.to_string(),
            rendition: Some(rendition.info()),
            seq,
            part: index,
            duration_ms: 500,
            independent: index == 0,
            blob_key: key,
            size_bytes: body.len() as u64,
            program_date_time_ms: Seg::nth(seq).at_ms + i64::from(index) * 500,
            part_target_ms: 500,
            region: "test".into(),
            last,
            ..Default::default()
        };
        self.publish(topics::PARTS, id, ready.encode_to_vec()).await;
    }

    /// A durable segment that was announced before in `part_count` parts.
    pub async fn segment_after_parts(
        &self,
        id: &StreamId,
        rendition: &Rendition,
        seg: Seg,
        body: Option<Bytes>,
        part_count: u32,
    ) {
        let name = rendition.name();
        if let Some(body) = body {
            let key = blob_keys::media_segment(id, &name, seg.seq);
            self.blob.put(&key, body).await.unwrap();
        }
        let record = self.record_only(id, rendition, seg);
        let ready = v1::SegmentReady {
            event_id: livecast_core::EventId::generate().to_string(),
            stream_id: id.to_string(),
            rendition: Some(rendition.info()),
            seq: seg.seq,
            duration_ms: seg.duration_ms,
            discontinuity: seg.discontinuity,
            blob_key: blob_keys::media_segment(id, &name, seg.seq),
            init_blob_key: blob_keys::init_segment(id, &name),
            program_date_time_ms: seg.at_ms,
            size_bytes: record.size_bytes,
            region: "test".into(),
            ladder_size: 0,
            part_count,
            ..Default::default()
        };
        self.publish(topics::SEGMENTS, id, ready.encode_to_vec())
            .await;
    }

    /// Records a segment in the catalogue only (as before this edge started).
    pub fn record_only(&self, id: &StreamId, rendition: &Rendition, seg: Seg) -> SegmentRecord {
        let record = SegmentRecord {
            stream_id: id.clone(),
            rendition: rendition.name(),
            seq: seg.seq,
            duration_ms: seg.duration_ms,
            discontinuity: seg.discontinuity,
            program_date_time: seg.at_ms,
            size_bytes: 200_000,
        };
        self.directory.record(rendition.record(id), record.clone());
        record
    }

    pub async fn put_init(&self, id: &StreamId, rendition: &Rendition, body: Bytes) {
        let key = blob_keys::init_segment(id, &rendition.name());
        self.blob.put(&key, body).await.unwrap();
    }

    async fn publish(&self, topic: &str, id: &StreamId, payload: Vec<u8>) {
        // Topics exist once an edge has started; before that the catalogue alone knows.
        if let Err(error) = self.bus.publish(topic, id.as_str(), payload.into()).await {
            assert!(
                matches!(error, livecast_bus::BusError::UnknownTopic { .. }),
                "{error}"
            );
        }
    }
}

/// A running edge.
pub struct TestEdge {
    pub base: String,
    pub service: EdgeService,
    pub client: reqwest::Client,
    shutdown: Shutdown,
}

impl Drop for TestEdge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn settings(live_window_segments: usize) -> EdgeSettings {
    EdgeSettings {
        live_window_segments,
        topic_partitions: 4,
        ..EdgeSettings::default()
    }
    .with_region("test")
}

pub async fn spawn_edge(world: &World, settings: EdgeSettings) -> TestEdge {
    let service = EdgeService::new(
        world.blob.clone(),
        world.bus.clone(),
        world.directory.clone(),
        settings,
    )
    .await
    .unwrap();
    let shutdown = Shutdown::new();
    service.spawn(shutdown.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let routes = service.http_routes();
    let readiness = service.readiness();
    let serving = shutdown.clone();
    tokio::spawn(async move {
        livecast_service::http::serve_service(
            listener,
            routes,
            readiness,
            &HttpConfig::default(),
            serving,
        )
        .await
        .unwrap();
    });
    TestEdge {
        base,
        service,
        client: reqwest::Client::new(),
        shutdown,
    }
}

impl TestEdge {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// Status and body of `GET path`.
    pub async fn text(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Polls `path` until its body satisfies `accept`, then returns it.
    pub async fn text_until(&self, path: &str, accept: impl Fn(&str) -> bool) -> String {
        eventually(&format!("GET {path} as expected"), || async {
            let (status, body) = self.text(path).await;
            (status == 200 && accept(&body)).then_some(body)
        })
        .await
    }
}

/// Polls `probe` until it answers, failing after a generous deadline (never a fixed sleep).
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `#EXT-X-MEDIA-SEQUENCE`, segment URIs and tags of a media playlist.
pub fn tag_value<'a>(playlist: &'a str, tag: &str) -> Option<&'a str> {
    playlist
        .lines()
        .find_map(|line| line.strip_prefix(tag)?.strip_prefix(':'))
}

pub fn segment_uris(playlist: &str) -> Vec<String> {
    playlist
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(str::to_owned)
        .collect()
}
