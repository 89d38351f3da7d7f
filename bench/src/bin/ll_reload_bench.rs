//! Low-Latency HLS at the edge: 1,000 players blocked on the next part of a live stream
//! (`index.m3u8?_HLS_msn=M&_HLS_part=P`) and 1,000 holding its preload-hinted URL, on a release
//! edge over real HTTP (in-process bus, local blob store). Per round the part is written to the
//! blob store, then announced; printed: how long after it was durable the playlists and the
//! part bytes reached the players (median and last), and how many blob reads it cost.
//! Bounded: 10 rounds, a deadline of 30 s each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus};
use livecast_core::{
    Error, EventId, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamStatus,
    blob_keys,
};
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use livecast_streaming_edge::{EdgeService, EdgeSettings, PlaybackDirectory, PlaybackStream};
use prost::Message;

const PLAYERS: usize = 1_000;
const ROUNDS: u32 = 10;
const PARTS_PER_SEGMENT: u32 = 4;
const PART_MS: u32 = 500;
const EPOCH_MS: i64 = 1_767_225_600_000;

/// A catalogue that knows one live stream and leaves its segments to the events.
struct LiveStream(StreamId);

#[async_trait::async_trait]
impl PlaybackDirectory for LiveStream {
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
        if *id != self.0 {
            return Err(Error::not_found(format!("stream {id} not found")));
        }
        Ok(PlaybackStream {
            id: id.clone(),
            status: StreamStatus::StreamActive,
            home_region: "bench".into(),
        })
    }

    async fn renditions(&self, _: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        Ok(Vec::new())
    }

    async fn segments(
        &self,
        _: &StreamId,
        _: &RenditionName,
        _: u64,
        _: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        Ok(Vec::new())
    }
}

/// What the encoder does: bytes first, then the event.
struct Encoder {
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    stream: StreamId,
    rendition: RenditionName,
}

impl Encoder {
    fn info(&self) -> v1::RenditionInfo {
        v1::RenditionInfo {
            name: self.rendition.to_string(),
            width: 1280,
            height: 720,
            bandwidth: 3_000_000,
            average_bandwidth: 3_000_000,
            codecs: "avc1.64001f,mp4a.40.2".into(),
            frame_rate_milli: 30_000,
            audio_only: false,
        }
    }

    /// Writes part `index` of segment `seq`; returns when it is durable.
    async fn store_part(&self, seq: u64, index: u32) -> anyhow::Result<Bytes> {
        let body: Bytes = (0..190_000u32).map(|i| (i + index) as u8).collect();
        let key = blob_keys::media_part(&self.stream, &self.rendition, seq, index);
        self.blob.put(&key, body.clone()).await?;
        Ok(body)
    }

    async fn announce_part(&self, seq: u64, index: u32, size: usize) -> anyhow::Result<()> {
        let ready = v1::PartReady {
            event_id: EventId::generate().to_string(),
            stream_id: self.stream.to_string(),
            rendition: Some(self.info()),
            seq,
            part: index,
            duration_ms: PART_MS,
            independent: index == 0,
            blob_key: blob_keys::media_part(&self.stream, &self.rendition, seq, index),
            size_bytes: size as u64,
            program_date_time_ms: EPOCH_MS + (seq as i64 * 2_000) + i64::from(index * PART_MS),
            part_target_ms: PART_MS,
            region: "bench".into(),
            ..Default::default()
        };
        let payload = Bytes::from(ready.encode_to_vec());
        self.bus
            .publish(topics::PARTS, self.stream.as_str(), payload)
            .await?;
        Ok(())
    }

    async fn announce_segment(&self, seq: u64, part_count: u32) -> anyhow::Result<()> {
        let ready = v1::SegmentReady {
            event_id: EventId::generate().to_string(),
            stream_id: self.stream.to_string(),
            rendition: Some(self.info()),
            seq,
            duration_ms: PART_MS * PARTS_PER_SEGMENT,
            blob_key: blob_keys::media_segment(&self.stream, &self.rendition, seq),
            init_blob_key: blob_keys::init_segment(&self.stream, &self.rendition),
            program_date_time_ms: EPOCH_MS + seq as i64 * 2_000,
            size_bytes: 760_000,
            region: "bench".into(),
            ladder_size: 1,
            part_count,
            ..Default::default()
        };
        let payload = Bytes::from(ready.encode_to_vec());
        self.bus
            .publish(topics::SEGMENTS, self.stream.as_str(), payload)
            .await?;
        Ok(())
    }
}

async fn blocked(client: &reqwest::Client, base: &str) -> f64 {
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()
        .map(|r| r.text());
    let Some(text) = metrics else { return 0.0 };
    text.await
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("livecast_edge_blocked_reloads "))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn median_and_last(mut answered: Vec<Duration>) -> (f64, f64) {
    answered.sort();
    let median = answered
        .get(answered.len() / 2)
        .copied()
        .unwrap_or_default();
    let last = answered.last().copied().unwrap_or_default();
    (millis(median), millis(last))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let blob: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path().join("blobs")).await?);
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let stream = StreamId::generate();
    let settings = EdgeSettings::default().with_region("bench");
    let service = EdgeService::new(
        blob.clone(),
        bus.clone(),
        Arc::new(LiveStream(stream.clone())),
        settings,
    )
    .await?;
    let shutdown = Shutdown::new();
    service.spawn(shutdown.clone());
    let base = livecast_bench::serve_on_loopback(
        service.http_routes(),
        service.readiness(),
        shutdown.clone(),
    )
    .await?;

    let encoder = Encoder {
        blob,
        bus,
        stream: stream.clone(),
        rendition: RenditionName::parse("720p")?,
    };
    for seq in 0..3 {
        for index in 0..PARTS_PER_SEGMENT {
            let body = encoder.store_part(seq, index).await?;
            encoder.announce_part(seq, index, body.len()).await?;
        }
        encoder.announce_segment(seq, PARTS_PER_SEGMENT).await?;
    }
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(4 * PLAYERS)
        .build()?;
    let playlist = format!("{base}/stream/{stream}/720p/index.m3u8");
    let ready_by = Instant::now() + Duration::from_secs(10);
    while !client
        .get(&playlist)
        .send()
        .await?
        .text()
        .await?
        .contains("\n2.m4s\n")
    {
        anyhow::ensure!(Instant::now() < ready_by, "the edge never listed segment 2");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!(
        "| round | part | playlists answered, median / last | part bytes, median / last | blob reads |"
    );
    println!("|---|---|---|---|---|");
    let (mut playlist_lasts, mut part_lasts) = (Vec::new(), Vec::new());
    let mut most_reads = 0;
    let (mut seq, mut index) = (3u64, 0u32);
    for round in 1..=ROUNDS {
        let reload = format!("{playlist}?_HLS_msn={seq}&_HLS_part={index}");
        let hinted = format!("{base}/stream/{stream}/720p/{seq}.{index}.m4s");
        let mut waiting = Vec::with_capacity(2 * PLAYERS);
        for url in [reload, hinted] {
            for _ in 0..PLAYERS {
                let (client, url) = (client.clone(), url.clone());
                waiting.push(tokio::spawn(async move {
                    let response = client.get(&url).send().await.ok()?;
                    let ok = response.status().is_success();
                    let _ = response.bytes().await.ok()?;
                    ok.then(Instant::now)
                }));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while blocked(&client, &base).await < (2 * PLAYERS) as f64 {
            anyhow::ensure!(Instant::now() < deadline, "the players never all waited");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let reads_before = service.origin_fetches();
        let body = encoder.store_part(seq, index).await?;
        let durable = Instant::now();
        encoder.announce_part(seq, index, body.len()).await?;
        let mut answered = Vec::with_capacity(2 * PLAYERS);
        for player in waiting {
            let at = player
                .await?
                .ok_or_else(|| anyhow::anyhow!("a player failed"))?;
            answered.push(at - durable);
        }
        let parts = answered.split_off(PLAYERS);
        let (playlists_median, playlists_last) = median_and_last(answered);
        let (parts_median, parts_last) = median_and_last(parts);
        playlist_lasts.push(playlists_last);
        part_lasts.push(parts_last);
        let reads = service.origin_fetches() - reads_before;
        most_reads = most_reads.max(reads);
        println!(
            "| {round} | {seq}.{index} | {playlists_median:.1} / {playlists_last:.1} ms | \
             {parts_median:.1} / {parts_last:.1} ms | {reads} |"
        );
        index += 1;
        if index == PARTS_PER_SEGMENT {
            encoder.announce_segment(seq, PARTS_PER_SEGMENT).await?;
            (seq, index) = (seq + 1, 0);
        }
    }
    let middle = |mut lasts: Vec<f64>| {
        lasts.sort_by(f64::total_cmp);
        (lasts[lasts.len() / 2], lasts[lasts.len() - 1])
    };
    let (playlists, parts) = (middle(playlist_lasts), middle(part_lasts));
    println!(
        "{ROUNDS} rounds of {PLAYERS} blocked reloads and {PLAYERS} hinted part requests: the last \
         playlist answered {:.1} ms after the part was durable (median round; worst {:.1} ms; \
         target under 50 ms), the last of the part's bytes {:.1} ms (worst {:.1} ms); at most \
         {most_reads} blob read(s) per part",
        playlists.0, playlists.1, parts.0, parts.1
    );
    shutdown.cancel();
    Ok(())
}
