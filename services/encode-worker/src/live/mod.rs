//! Live streams encoded on this worker as ingest cuts them (Low-Latency HLS), each as its
//! primary or as a hot standby of another worker's primary.
//!
//! A primary follows a stream chunk after chunk from ingest's chunk feed, on its own: the
//! consumer group on `livecast.chunks` decides who owns the durable chunks (and commits them),
//! not who makes a live stream's parts, so a rebalance no longer decides how long viewers wait.
//! The owner of a stream's partition starts its primary when it finds a chunk nobody made live
//! (the first of a stream or of an epoch, or after every live encoder of it was lost); the
//! primary keeps a standby on another worker encoding in step ([`link`]), which takes over
//! within a lease when the primary goes. Decision: `docs/decisions/encoder-failover.md`.

mod chunk;
mod link;
mod role;
mod shadow;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livecast_core::{Error, StreamId};
use livecast_media::Continuity;
use livecast_proto::v1;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::members::Members;
use crate::metrics;
use crate::output::Output;
use crate::transcoders::Transcoders;
use chunk::{ChunkToFollow, follow_chunk};
use link::StandbyLink;
pub(crate) use link::StandbyService;
use role::{LiveOutput, Progress};

/// Connections to ingest instances and standbys kept; past this (instances come and go), they
/// are dropped and made again as needed.
const MAX_CHANNELS: usize = 256;
/// How long the owner of a durable chunk waits for a live encoder that claimed it to announce
/// it (normally done already: the feed said it was durable before the event went out).
const FOLLOW_PATIENCE: Duration = Duration::from_secs(15);
/// How often the owner looks at the claim of a chunk another worker makes live.
const CLAIM_POLL: Duration = Duration::from_millis(100);

/// How live streams are encoded here.
#[derive(Debug, Clone)]
pub(crate) struct LiveSettings {
    /// Keep a standby on another worker for every live stream this worker is primary of.
    pub standby: bool,
    /// How long a standby waits without a report from its primary before taking over.
    pub lease: Duration,
    /// The consumer group on `livecast.chunks`: standbys come from the same group.
    pub group: String,
}

/// The next chunk a live stream's encoder follows.
#[derive(Debug, Clone)]
pub(crate) struct NextChunk {
    pub epoch: u32,
    pub seq: u64,
    pub feed_url: String,
}

/// Whether a durable chunk was made live, as its owner finds out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MadeLive {
    /// A live encoder (here or on another worker) announced it.
    Announced,
    /// Nobody announced it; `claimed`: some live encoder had begun it.
    NotMade { claimed: bool },
}

struct LiveStream {
    output: Arc<LiveOutput>,
    cancel: CancellationToken,
}

/// The live streams of this worker.
pub(crate) struct LiveStreams {
    worker: String,
    output: Arc<Output>,
    transcoders: Arc<Transcoders>,
    members: Arc<Members>,
    settings: LiveSettings,
    streams: Mutex<HashMap<StreamId, LiveStream>>,
    channels: Mutex<HashMap<String, Channel>>,
    shutdown: CancellationToken,
}

impl LiveStreams {
    pub fn new(
        worker: String,
        output: Arc<Output>,
        transcoders: Arc<Transcoders>,
        members: Arc<Members>,
        settings: LiveSettings,
        shutdown: CancellationToken,
    ) -> Self {
        LiveStreams {
            worker,
            output,
            transcoders,
            members,
            settings,
            streams: Mutex::new(HashMap::new()),
            channels: Mutex::new(HashMap::new()),
            shutdown,
        }
    }

    /// How live streams are encoded here.
    pub fn settings(&self) -> &LiveSettings {
        &self.settings
    }

    /// Live streams here as primary and as standby.
    pub fn counts(&self) -> (u32, u32) {
        let streams = self.streams();
        let primary = streams.values().filter(|s| s.output.is_primary()).count() as u32;
        (primary, streams.len() as u32 - primary)
    }

    /// Starts encoding `stream` live as its primary from `next`, unless it is encoded live
    /// here already (in either role).
    pub fn start_primary(self: &Arc<Self>, stream: &StreamId, next: NextChunk) {
        let mut streams = self.streams();
        if streams.contains_key(stream) {
            return;
        }
        self.launch(&mut streams, stream, None, next);
    }

    /// Registers a live encoder of `stream` (a standby of `standby_of`, or its primary) and
    /// starts it at `next`.
    fn launch(
        self: &Arc<Self>,
        streams: &mut HashMap<StreamId, LiveStream>,
        stream: &StreamId,
        standby_of: Option<String>,
        next: NextChunk,
    ) -> Arc<LiveOutput> {
        let output = Arc::new(LiveOutput::new(
            stream.clone(),
            self.worker.clone(),
            self.output.clone(),
            standby_of,
        ));
        let cancel = self.shutdown.child_token();
        let live = LiveStream {
            output: output.clone(),
            cancel: cancel.clone(),
        };
        streams.insert(stream.clone(), live);
        tokio::spawn(
            self.clone()
                .run(stream.clone(), output.clone(), next, cancel),
        );
        output
    }

    /// Starts encoding a stream as the standby of the primary `start` names.
    fn stand_by(self: &Arc<Self>, start: &v1::ShadowRequest) -> Result<Arc<LiveOutput>, Error> {
        let stream = StreamId::parse(start.stream_id.clone())?;
        let mut streams = self.streams();
        if let Some(existing) = streams.get(&stream) {
            if existing.output.is_primary() {
                return Err(Error::conflict(format!(
                    "this worker is the primary of stream {stream}"
                )));
            }
            // A primary that lost its link to this standby comes back: start afresh.
            existing.cancel.cancel();
        }
        // Taken up where the primary stands, so that both make the same bytes.
        self.transcoders.remove(&stream);
        let continuity = Continuity {
            copied_audio: (start.audio_rate > 0).then_some((start.audio_rate, start.audio_next)),
        };
        self.transcoders
            .get(&stream)?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .continue_from(continuity);
        let next = NextChunk {
            epoch: start.epoch,
            seq: start.seq,
            feed_url: start.feed_url.clone(),
        };
        Ok(self.launch(&mut streams, &stream, Some(start.primary.clone()), next))
    }

    /// The standby `output` of `stream` lost its primary: it takes over (`takeover`) or stops.
    async fn standby_ended(&self, stream: &StreamId, output: &Arc<LiveOutput>, takeover: bool) {
        let cancel = {
            let streams = self.streams();
            match streams.get(stream) {
                Some(live) if Arc::ptr_eq(&live.output, output) => live.cancel.clone(),
                _ => return,
            }
        };
        if !takeover || self.shutdown.is_cancelled() {
            cancel.cancel();
            return;
        }
        match output.take_over().await {
            Ok(()) => metrics::live_streams(self.counts()),
            Err(error) => {
                tracing::warn!(stream_id = %stream, %error, "standby could not take the stream over");
                cancel.cancel();
            }
        }
    }

    /// Whether chunk `chunk` of `stream` was made live by a live encoder here or elsewhere;
    /// waits while one that claimed it may still announce it.
    pub async fn made_live(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
    ) -> Result<MadeLive, Error> {
        let seq = chunk.seq;
        let deadline = tokio::time::Instant::now() + FOLLOW_PATIENCE;
        let local = self
            .streams()
            .get(stream)
            .filter(|live| live.output.is_primary())
            .map(|live| (live.output.progress(), live.cancel.clone()));
        if let Some((mut progress, cancel)) = local {
            let waited =
                tokio::time::timeout_at(deadline, progress.wait_for(|p| announced_or_past(p, seq)))
                    .await;
            match waited {
                Ok(Ok(progress)) if progress.announced >= Some(seq) => {
                    return Ok(MadeLive::Announced);
                }
                Ok(_) => {}
                // Stuck: stop it, so that it does not announce what the owner makes now.
                Err(_) => cancel.cancel(),
            }
        }
        loop {
            let claim = self.output.claim(stream, seq).await?;
            let Some(claim) = claim else {
                return Ok(MadeLive::NotMade { claimed: false });
            };
            if claim.announced {
                return Ok(MadeLive::Announced);
            }
            let here = claim.worker == self.worker;
            let encoding_here = self.streams().contains_key(stream);
            let gone = match here {
                true => !encoding_here,
                false => !self.members.alive(&claim.worker),
            };
            if gone || tokio::time::Instant::now() >= deadline {
                return Ok(MadeLive::NotMade { claimed: true });
            }
            tokio::time::sleep(CLAIM_POLL).await;
        }
    }

    /// One stream, chunk after chunk, until its feed ends, it is cancelled, or another worker
    /// makes it.
    async fn run(
        self: Arc<Self>,
        stream: StreamId,
        output: Arc<LiveOutput>,
        mut next: NextChunk,
        cancel: CancellationToken,
    ) {
        metrics::live_streams(self.counts());
        loop {
            if output.is_primary() {
                match output.needs_standby() {
                    Ok(true) => self.recruit_standby(&stream, &output, &next),
                    Ok(false) => {}
                    Err(error) => {
                        tracing::info!(stream_id = %stream, %error, "live encoding stops here");
                        output.ended(next.seq, false, true);
                        break;
                    }
                }
            }
            output.following(next.seq);
            // A standby makes every rung: whatever its primary left out, it has.
            let transcoder = self
                .transcoders
                .for_next_chunk(&stream, output.is_primary());
            let followed = match (self.channel(&next.feed_url), transcoder) {
                (Ok(feed), Ok(transcoder)) => {
                    let chunk = ChunkToFollow {
                        stream: stream.clone(),
                        epoch: next.epoch,
                        seq: next.seq,
                        feed,
                    };
                    follow_chunk(chunk, transcoder, output.as_ref(), &cancel).await
                }
                (Err(error), _) | (_, Err(error)) => Err(chunk::FollowFailed {
                    error,
                    touched_transcoder: false,
                }),
            };
            match followed {
                Ok(followed) => {
                    metrics::followed("announced");
                    let stored = followed.stored;
                    if output.is_primary() {
                        self.transcoders
                            .chunk_made(&stream, stored.seq, followed.lag);
                    }
                    next = NextChunk {
                        epoch: stored.epoch,
                        seq: stored.seq + 1,
                        feed_url: stored.feed_url,
                    };
                }
                Err(failed) => {
                    let ended = failed.error.kind == livecast_core::ErrorKind::NotFound;
                    if !ended && !cancel.is_cancelled() {
                        metrics::followed("fell_back");
                        tracing::info!(stream_id = %stream, seq = next.seq, error = %failed.error,
                            "live encoding stopped; the chunk is made from the store");
                    }
                    if failed.touched_transcoder {
                        // Its audio state moved on inside the chunk: whoever makes the chunk
                        // again starts afresh.
                        self.transcoders.remove(&stream);
                    }
                    // Shutting down: the standby takes over. Otherwise it stops too.
                    let done = !self.shutdown.is_cancelled();
                    output.ended(next.seq, failed.touched_transcoder, done);
                    break;
                }
            }
        }
        let mut streams = self.streams();
        if streams
            .get(&stream)
            .is_some_and(|live| Arc::ptr_eq(&live.output, &output))
        {
            streams.remove(&stream);
        }
        drop(streams);
        metrics::live_streams(self.counts());
    }

    /// Asks another worker to stand by for `stream` from chunk `next` on.
    fn recruit_standby(&self, stream: &StreamId, output: &LiveOutput, next: &NextChunk) {
        if !self.settings.standby {
            return;
        }
        let Some((standby, url)) = self.members.choose_standby(stream) else {
            return;
        };
        // Between two chunks the stream's transcoder is idle; if it is not, try at the next.
        let Ok(transcoder) = self.transcoders.get(stream) else {
            return;
        };
        let Ok(continuity) = transcoder.try_lock().map(|t| t.continuity()) else {
            return;
        };
        let (audio_rate, audio_next) = continuity.copied_audio.unwrap_or_default();
        let channel = match self.channel(&url) {
            Ok(channel) => channel,
            Err(error) => {
                tracing::warn!(worker = %standby, %error, "cannot reach a standby");
                return;
            }
        };
        let start = v1::ShadowRequest {
            stream_id: stream.to_string(),
            epoch: next.epoch,
            seq: next.seq,
            feed_url: next.feed_url.clone(),
            primary: self.worker.clone(),
            lease_ms: u32::try_from(self.settings.lease.as_millis()).unwrap_or(u32::MAX),
            audio_rate,
            audio_next,
        };
        tracing::debug!(stream_id = %stream, worker = %standby, seq = next.seq, "standby recruited");
        output.set_standby(StandbyLink::open(channel, start));
    }

    fn channel(&self, url: &str) -> Result<Channel, Error> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        if channels.len() >= MAX_CHANNELS {
            channels.clear();
        }
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::invalid(format!("bad url {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            // A peer that vanished without closing the connection is noticed.
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, LiveStream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether the live encoder is done with chunk `seq`: announced it, moved past it, or ended.
fn announced_or_past(progress: &Progress, seq: u64) -> bool {
    progress.announced >= Some(seq)
        || progress.following.is_some_and(|following| following > seq)
        || progress.ended.is_some()
}
