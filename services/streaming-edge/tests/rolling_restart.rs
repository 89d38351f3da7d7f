//! A rolling restart of two edge instances while 50 viewers keep fetching playlists and
//! segments: not one request may fail.
//!
//! The test models what Kubernetes does during `helm upgrade` with the chart in
//! `deploy/helm/livecast` (maxUnavailable 0, a readiness probe, a preStop pause):
//!
//! 1. A new instance starts and joins the rotation only once `/readyz` answers 200 (the
//!    readiness probe gating the Service's endpoints; maxSurge 1, maxUnavailable 0).
//! 2. The old instance leaves the rotation before it is told to stop (the endpoint removal).
//! 3. It is stopped only once no request is still on its way to it: requests that picked it
//!    have at least received their response head. That is what the chart's preStop pause buys
//!    in a cluster, where endpoint removal and SIGTERM race.
//! 4. Its shutdown token is cancelled (what SIGTERM does in the binary) and
//!    `livecast_service::http::serve` finishes the responses still being written (the drain)
//!    before returning.
//!
//! A load balancer that kept sending to a stopped process would fail requests no matter what
//! the edge did, so the rotation never retries: a failed request is a failure.
//! Set `TEST_LOG=1` to see the service's logs.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus};
use livecast_core::{
    Error, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamStatus, blob_keys,
};
use livecast_service::Shutdown;
use livecast_service::config::HttpConfig;
use livecast_streaming_edge::{EdgeService, EdgeSettings, PlaybackDirectory, PlaybackStream};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const VIEWERS: usize = 50;
/// Requests each new instance must answer before the next step, so that it visibly took
/// its share of the traffic.
const REQUESTS_PER_STEP: u64 = 1_000;

/// One completed stream with one rendition, as the catalogue records it.
struct OneStream {
    id: StreamId,
    rendition: RenditionRecord,
    segments: Vec<SegmentRecord>,
}

#[async_trait::async_trait]
impl PlaybackDirectory for OneStream {
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
        self.known(id)?;
        Ok(PlaybackStream {
            id: id.clone(),
            status: StreamStatus::StreamComplete,
            home_region: "test".into(),
        })
    }

    async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        self.known(id)?;
        Ok(vec![self.rendition.clone()])
    }

    async fn segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        self.known(id)?;
        Ok(self
            .segments
            .iter()
            .filter(|s| &s.rendition == rendition && s.seq >= from_seq)
            .take(limit as usize)
            .cloned()
            .collect())
    }
}

impl OneStream {
    fn known(&self, id: &StreamId) -> Result<(), Error> {
        if *id == self.id {
            Ok(())
        } else {
            Err(Error::not_found(format!("stream {id} not found")))
        }
    }
}

/// What the region shares between edge instances: the bus, the blob store, the catalogue.
struct Region {
    bus: Arc<dyn EventBus>,
    blob: Arc<dyn BlobStore>,
    directory: Arc<OneStream>,
    /// Every path a viewer fetches, with the exact bytes it must get (`None`: a playlist,
    /// checked for shape only).
    paths: Vec<(String, Option<Bytes>)>,
    _dir: tempfile::TempDir,
}

impl Region {
    async fn new() -> Region {
        if std::env::var_os("TEST_LOG").is_some() {
            livecast_service::telemetry::init();
        }
        let dir = tempfile::tempdir().unwrap();
        let blob: Arc<dyn BlobStore> = Arc::new(
            LocalBlobStore::open(dir.path().join("blobs"))
                .await
                .unwrap(),
        );
        let media = tokio::task::spawn_blocking(encode).await.unwrap();
        let id = StreamId::generate();
        let name = RenditionName::parse("180p").unwrap();
        let rendition = RenditionRecord {
            stream_id: id.clone(),
            name: name.clone(),
            width: 320,
            height: 180,
            bandwidth: 400_000,
            average_bandwidth: 360_000,
            codecs: "avc1.64000d".into(),
            frame_rate_milli: 30_000,
            audio_only: false,
        };
        blob.put(&blob_keys::init_segment(&id, &name), media.init.clone())
            .await
            .unwrap();
        let base = format!("/stream/{id}");
        let mut paths = vec![
            (format!("{base}/master.m3u8"), None),
            (format!("{base}/180p/index.m3u8"), None),
            (format!("{base}/180p/init.mp4"), Some(media.init.clone())),
        ];
        let mut segments = Vec::new();
        for (seq, (body, duration_ms)) in media.segments.into_iter().enumerate() {
            let seq = seq as u64;
            blob.put(&blob_keys::media_segment(&id, &name, seq), body.clone())
                .await
                .unwrap();
            paths.push((format!("{base}/180p/{seq}.m4s"), Some(body.clone())));
            segments.push(SegmentRecord {
                stream_id: id.clone(),
                rendition: name.clone(),
                seq,
                duration_ms,
                discontinuity: false,
                program_date_time: 1_767_225_600_000 + seq as i64 * 2_000,
                size_bytes: body.len() as u64,
            });
        }
        Region {
            bus: Arc::new(InProcessBus::new()),
            blob,
            directory: Arc::new(OneStream {
                id,
                rendition,
                segments,
            }),
            paths,
            _dir: dir,
        }
    }
}

/// A 320x180 H.264 stream with a keyframe every 2 s, cut by ffmpeg into 2 s fMP4 segments.
struct Encoded {
    init: Bytes,
    segments: Vec<(Bytes, u32)>,
}

fn encode() -> Encoded {
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name);
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=320x180:rate=30", "-t", "6"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args(["-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2"])
        .args([
            "-hls_playlist_type",
            "vod",
            "-hls_fmp4_init_filename",
            "init.mp4",
        ])
        .arg("-hls_segment_filename")
        .arg(out("%d.m4s"))
        .arg(out("index.m3u8"))
        .output()
        .expect("the ffmpeg command line is needed to make test media");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let playlist = std::fs::read_to_string(out("index.m3u8")).unwrap();
    let read = |path: &Path| Bytes::from(std::fs::read(path).unwrap());
    let mut segments = Vec::new();
    let mut duration_ms = 0;
    for line in playlist.lines() {
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = value.trim_end_matches(',').parse().unwrap();
            duration_ms = (secs * 1000.0).round() as u32;
        } else if !line.starts_with('#') && !line.is_empty() {
            segments.push((read(&out(line)), duration_ms));
        }
    }
    assert!(
        segments.len() >= 3,
        "ffmpeg made {} segments",
        segments.len()
    );
    Encoded {
        init: read(&out("init.mp4")),
        segments,
    }
}

/// One running edge process: its address, and what stopping it waits for.
struct Instance {
    base: String,
    shutdown: Shutdown,
    serving: JoinHandle<anyhow::Result<()>>,
}

async fn start_instance(region: &Region) -> Instance {
    let settings = EdgeSettings {
        topic_partitions: 4,
        ..EdgeSettings::default()
    }
    .with_region("test");
    let service = EdgeService::new(
        region.blob.clone(),
        region.bus.clone(),
        region.directory.clone(),
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
    let stopping = shutdown.clone();
    let serving = tokio::spawn(async move {
        livecast_service::http::serve_service(
            listener,
            routes,
            readiness,
            &HttpConfig::default(),
            stopping,
        )
        .await
    });
    Instance {
        base,
        shutdown,
        serving,
    }
}

/// The load balancer: round-robin over the instances in rotation, counting per instance the
/// requests it sent that have not yet received their response head.
#[derive(Default)]
struct Rotation {
    state: Mutex<RotationState>,
    next: AtomicUsize,
    served: Mutex<HashMap<String, u64>>,
}

#[derive(Default)]
struct RotationState {
    members: Vec<String>,
    on_the_way: HashMap<String, usize>,
}

impl Rotation {
    /// Picks the next instance and counts the request as on its way there.
    fn pick(&self) -> String {
        let mut state = self.state.lock().unwrap();
        let n = self.next.fetch_add(1, Ordering::Relaxed) % state.members.len();
        let base = state.members[n].clone();
        *state.on_the_way.entry(base.clone()).or_default() += 1;
        base
    }

    /// The request sent to `base` got its answer's head (or failed).
    fn arrived(&self, base: &str) {
        let mut state = self.state.lock().unwrap();
        *state.on_the_way.get_mut(base).unwrap() -= 1;
    }

    fn add(&self, base: &str) {
        self.state.lock().unwrap().members.push(base.to_owned());
    }

    fn remove(&self, base: &str) {
        self.state.lock().unwrap().members.retain(|m| m != base);
    }

    fn on_the_way_to(&self, base: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.on_the_way.get(base).copied().unwrap_or(0)
    }

    fn count_served(&self, base: &str) {
        *self
            .served
            .lock()
            .unwrap()
            .entry(base.to_owned())
            .or_default() += 1;
    }

    fn served_by(&self, base: &str) -> u64 {
        self.served.lock().unwrap().get(base).copied().unwrap_or(0)
    }
}

/// Fetches every path of the stream in turn, through the rotation, until `stop`.
async fn viewer(
    viewer: usize,
    client: reqwest::Client,
    rotation: Arc<Rotation>,
    paths: Arc<Vec<(String, Option<Bytes>)>>,
    stop: Arc<AtomicBool>,
    failures: Arc<Mutex<Vec<String>>>,
    total: Arc<AtomicU64>,
) {
    let mut turn = viewer;
    while !stop.load(Ordering::Relaxed) {
        let (path, expected) = &paths[turn % paths.len()];
        turn += 1;
        let base = rotation.pick();
        let sent = client.get(format!("{base}{path}")).send().await;
        rotation.arrived(&base);
        let outcome = match sent {
            Err(error) => Err(format!("{error:?}")),
            Ok(response) if response.status() != 200 => Err(format!("{}", response.status())),
            Ok(response) => match response.bytes().await {
                Err(error) => Err(format!("body: {error:?}")),
                Ok(body) => match expected {
                    Some(expected) if body != *expected => Err("wrong bytes".to_owned()),
                    None if !body.starts_with(b"#EXTM3U") => Err("not a playlist".to_owned()),
                    _ => Ok(()),
                },
            },
        };
        match outcome {
            Ok(()) => rotation.count_served(&base),
            Err(error) => failures
                .lock()
                .unwrap()
                .push(format!("GET {base}{path}: {error}")),
        }
        total.fetch_add(1, Ordering::Relaxed);
    }
}

/// Polls `probe` until it holds, failing after a generous deadline (never a fixed sleep).
async fn until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !probe().await {
        assert!(
            Instant::now() < deadline,
            "{what}: not seen before the deadline"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What the readiness probe does before the Service sends traffic to a new pod.
async fn wait_ready(client: &reqwest::Client, base: &str) {
    until(&format!("{base}/readyz answers 200"), async || match client
        .get(format!("{base}/readyz"))
        .send()
        .await
    {
        Ok(response) => response.status() == 200,
        Err(_) => false,
    })
    .await;
}

/// Replaces `old` by a new instance the way a rolling update with maxUnavailable 0 does.
async fn roll(
    region: &Region,
    rotation: &Rotation,
    client: &reqwest::Client,
    old: Instance,
) -> Instance {
    // Surge: the new pod starts, becomes ready, joins the endpoints.
    let new = start_instance(region).await;
    wait_ready(client, &new.base).await;
    rotation.add(&new.base);

    // The old pod leaves the endpoints; the preStop pause lets requests already routed to it
    // arrive before SIGTERM.
    rotation.remove(&old.base);
    until("no request on its way to the old instance", async || {
        rotation.on_the_way_to(&old.base) == 0
    })
    .await;
    old.shutdown.cancel();
    // The process exits only after the drain; `serve` returning is that moment.
    old.serving.await.unwrap().unwrap();

    until("the new instance takes its share", async || {
        rotation.served_by(&new.base) >= REQUESTS_PER_STEP
    })
    .await;
    new
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_two_edges_fails_no_request_of_50_viewers() {
    let region = Region::new().await;
    let first = start_instance(&region).await;
    let second = start_instance(&region).await;
    let client = reqwest::Client::new();
    let rotation = Arc::new(Rotation::default());
    for instance in [&first, &second] {
        wait_ready(&client, &instance.base).await;
        rotation.add(&instance.base);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let total = Arc::new(AtomicU64::new(0));
    let paths = Arc::new(region.paths.clone());
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|n| {
            tokio::spawn(viewer(
                n,
                client.clone(),
                rotation.clone(),
                paths.clone(),
                stop.clone(),
                failures.clone(),
                total.clone(),
            ))
        })
        .collect();
    until("both instances serve", async || {
        rotation.served_by(&first.base) >= REQUESTS_PER_STEP
            && rotation.served_by(&second.base) >= REQUESTS_PER_STEP
    })
    .await;

    // One pod at a time, as the Deployment's rolling update does.
    let third = roll(&region, &rotation, &client, first).await;
    let fourth = roll(&region, &rotation, &client, second).await;

    stop.store(true, Ordering::Relaxed);
    for viewer in viewers {
        viewer.await.unwrap();
    }
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    let total = total.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed during the rolling restart, first ones: {:#?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    assert!(total >= 4 * REQUESTS_PER_STEP);
    for instance in [third, fourth] {
        instance.shutdown.cancel();
        instance.serving.await.unwrap().unwrap();
    }
}
