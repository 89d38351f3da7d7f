//! HLS push ingest: `PUT /ingest/{stream_key}/{file}`, what `ffmpeg -f hls -method PUT` sends.
//!
//! Segments are held until the playlist that lists them arrives (ffmpeg writes the segment,
//! then the playlist), so each becomes a source chunk with the duration the broadcaster's muxer
//! measured. `#EXT-X-ENDLIST` ends the session; so does silence longer than the idle timeout.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::put;
use bytes::BytesMut;
use futures::StreamExt;
use livecast_core::blob_keys::SourceExt;
use livecast_core::{Error, ErrorKind};
use livecast_service::{ApiError, Shutdown};

use livecast_formats::hls_push::{PushedFile, classify, parse_playlist, plausible_key};

use crate::publish::{Departure, MediaChunk, PublishGate, Publisher};

/// Segments held while waiting for a playlist; past this the oldest is announced with the
/// target duration as its length.
const MAX_PENDING: usize = 16;
/// Announced segment names remembered per session (more than any sliding playlist lists).
const REMEMBERED_NAMES: usize = 64;
/// Duration assumed for a segment that no playlist described.
const ASSUMED_SEGMENT_MS: u32 = 2_000;
/// A pushed body comes at least this fast on average once [`BODY_GRACE`] has passed: a client
/// trickling a large body cannot hold a request and its memory for long.
const MIN_BODY_BYTES_PER_SECOND: u64 = 64 << 10;
/// How long any body may take before the rate counts.
const BODY_GRACE: Duration = Duration::from_secs(10);

/// The HLS push endpoint.
pub struct HlsPush {
    gate: Arc<dyn PublishGate>,
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<PushSession>>>>>,
    idle_timeout: Duration,
    /// Largest body (segment or playlist) accepted.
    max_bytes: usize,
}

/// A request's body, read only once its stream key has been admitted.
struct PushBody {
    body: Body,
    /// What `Content-Length` announced.
    declared: Option<usize>,
}

struct PushSession {
    publisher: Box<dyn Publisher>,
    /// Segments received but not yet announced, in arrival order.
    pending: VecDeque<(String, Bytes)>,
    /// Segments a playlist listed before they arrived (ffmpeg sends the final playlist before
    /// the final segment), with their durations.
    expected: HashMap<String, u32>,
    /// Names announced lately, so a sliding playlist does not expect them again.
    announced: VecDeque<String>,
    /// The playlist said `#EXT-X-ENDLIST`: end once nothing is expected.
    ended: bool,
    /// The fMP4 init segment, prepended to every fMP4 chunk so each decodes alone.
    init: Option<Bytes>,
    next_pts_ms: i64,
    last_activity: Instant,
}

impl HlsPush {
    /// An endpoint admitting broadcasters through `gate`, accepting bodies up to `max_bytes`.
    pub fn new(gate: Arc<dyn PublishGate>, idle_timeout: Duration, max_bytes: usize) -> Arc<Self> {
        Arc::new(HlsPush {
            gate,
            sessions: Mutex::new(HashMap::new()),
            idle_timeout,
            max_bytes,
        })
    }

    /// The `/ingest/{stream_key}/{file}` routes.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/ingest/{key}/{file}",
                put(put_file).post(put_file).delete(delete_file),
            )
            .with_state(self.clone())
    }

    /// Ends sessions whose broadcaster went silent, until `shutdown`.
    pub fn spawn_idle_sweeper(self: &Arc<Self>, shutdown: Shutdown) {
        let push = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => push.end_idle_sessions().await,
                }
            }
        });
    }

    async fn end_idle_sessions(&self) {
        let entries: Vec<_> = self
            .sessions
            .lock()
            .expect("sessions lock")
            .iter()
            .map(|(key, entry)| (key.clone(), entry.clone()))
            .collect();
        for (key, entry) in entries {
            let mut slot = entry.lock().await;
            let idle = slot
                .as_ref()
                .is_some_and(|s| s.last_activity.elapsed() > self.idle_timeout);
            if idle && let Some(session) = slot.take() {
                tracing::info!("hls push went silent; ending its session");
                finish(session, Departure::Dropped).await;
                self.sessions.lock().expect("sessions lock").remove(&key);
            }
        }
    }

    async fn handle(&self, key: &str, file: &str, body: PushBody) -> Result<StatusCode, Error> {
        let kind = classify(file)?;
        if !plausible_key(key) {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "stream key is not valid",
            ));
        }
        // What the head says is refused before anything is started or read.
        if body
            .declared
            .is_some_and(|declared| declared > self.max_bytes)
        {
            return Err(too_large(self.max_bytes));
        }
        let entry = self
            .sessions
            .lock()
            .expect("sessions lock")
            .entry(key.to_string())
            .or_default()
            .clone();
        let mut slot = entry.lock().await;
        if slot.is_none() {
            match self.gate.begin(key).await {
                Ok(publisher) => {
                    *slot = Some(PushSession {
                        publisher,
                        pending: VecDeque::new(),
                        expected: HashMap::new(),
                        announced: VecDeque::new(),
                        ended: false,
                        init: None,
                        next_pts_ms: 0,
                        last_activity: Instant::now(),
                    });
                }
                Err(error) => {
                    drop(slot);
                    self.forget_if_empty(key, &entry);
                    return Err(error);
                }
            }
        }
        // The key is admitted: only now is the body read.
        let body = read_body(body, self.max_bytes).await?;
        let session = slot.as_mut().expect("session was just ensured");
        session.last_activity = Instant::now();
        match kind {
            PushedFile::Fmp4Init => session.init = Some(body),
            PushedFile::TsSegment | PushedFile::Fmp4Segment => {
                if let Some(duration_ms) = session.expected.remove(file) {
                    announce(session, file, body, duration_ms).await?;
                } else {
                    session.pending.push_back((file.to_string(), body));
                }
                if session.pending.len() > MAX_PENDING {
                    tracing::warn!("hls push sends segments without playlists; assuming durations");
                    let (name, bytes) = session.pending.pop_front().expect("not empty");
                    announce(session, &name, bytes, ASSUMED_SEGMENT_MS).await?;
                }
            }
            PushedFile::Playlist => {
                let text = std::str::from_utf8(&body)
                    .map_err(|_| Error::invalid("playlist is not UTF-8 text"))?;
                let playlist = parse_playlist(text)?;
                for (uri, duration_ms) in playlist.segments {
                    if let Some(at) = session.pending.iter().position(|(n, _)| *n == uri) {
                        let (name, bytes) = session.pending.remove(at).expect("position is valid");
                        announce(session, &name, bytes, duration_ms).await?;
                    } else if !session.announced.contains(&uri) {
                        session.expected.insert(uri, duration_ms);
                    }
                }
                session.ended |= playlist.ended;
            }
        }
        if session.ended && session.expected.is_empty() {
            let session = slot.take().expect("session exists");
            finish(session, Departure::Finished).await;
            drop(slot);
            self.forget_if_empty(key, &entry);
        }
        Ok(StatusCode::CREATED)
    }

    fn forget_if_empty(&self, key: &str, entry: &Arc<tokio::sync::Mutex<Option<PushSession>>>) {
        let mut sessions = self.sessions.lock().expect("sessions lock");
        let empty = entry.try_lock().is_ok_and(|slot| slot.is_none());
        if empty && sessions.get(key).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            sessions.remove(key);
        }
    }
}

async fn announce(
    session: &mut PushSession,
    name: &str,
    segment: Bytes,
    duration_ms: u32,
) -> Result<(), Error> {
    let (bytes, container) = if name.ends_with(".m4s") {
        let init = session.init.clone().ok_or_else(|| {
            Error::invalid(format!(
                "fMP4 segment {name} arrived before its init segment"
            ))
        })?;
        let mut joined = Vec::with_capacity(init.len() + segment.len());
        joined.extend_from_slice(&init);
        joined.extend_from_slice(&segment);
        (Bytes::from(joined), SourceExt::Mp4)
    } else {
        (segment, SourceExt::Ts)
    };
    let chunk = MediaChunk {
        bytes,
        container,
        pts_ms: session.next_pts_ms,
        duration_ms,
    };
    session.next_pts_ms += i64::from(duration_ms);
    session.announced.push_back(name.to_string());
    if session.announced.len() > REMEMBERED_NAMES {
        session.announced.pop_front();
    }
    session.publisher.chunk(chunk).await
}

/// Announces what is still held, then ends the publisher.
async fn finish(mut session: PushSession, departure: Departure) {
    while let Some((name, bytes)) = session.pending.pop_front() {
        if let Err(error) = announce(&mut session, &name, bytes, ASSUMED_SEGMENT_MS).await {
            tracing::warn!(%error, "held segment lost at the end of an hls push");
        }
    }
    session.publisher.end(departure).await;
}

/// Reads `body` (at most `max_bytes`, at no less than [`MIN_BODY_BYTES_PER_SECOND`] on
/// average after [`BODY_GRACE`]).
async fn read_body(body: PushBody, max_bytes: usize) -> Result<Bytes, Error> {
    let started = tokio::time::Instant::now();
    let mut data = body.body.into_data_stream();
    let mut read = BytesMut::new();
    loop {
        let earned = Duration::from_secs_f64(read.len() as f64 / MIN_BODY_BYTES_PER_SECOND as f64);
        let next = tokio::time::timeout_at(started + BODY_GRACE + earned, data.next())
            .await
            .map_err(|_| {
                Error::invalid(format!(
                    "the body came slower than {} KiB/s",
                    MIN_BODY_BYTES_PER_SECOND >> 10
                ))
            })?;
        match next {
            None => return Ok(read.freeze()),
            Some(Err(error)) => {
                return Err(Error::invalid(format!(
                    "the body could not be read: {error}"
                )));
            }
            Some(Ok(piece)) if read.len() + piece.len() > max_bytes => {
                return Err(too_large(max_bytes));
            }
            Some(Ok(piece)) => read.extend_from_slice(&piece),
        }
    }
}

fn too_large(max_bytes: usize) -> Error {
    Error::new(
        ErrorKind::PayloadTooLarge,
        format!("a pushed file is at most {max_bytes} bytes"),
    )
}

async fn put_file(
    State(push): State<Arc<HlsPush>>,
    Path((key, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok());
    let body = PushBody { body, declared };
    // Muxers often close the connection without waiting for the answer, which cancels this
    // future; the work runs in its own task so a segment is never half-announced.
    let work = tokio::spawn(async move { push.handle(&key, &file, body).await });
    let outcome = work
        .await
        .map_err(|e| livecast_core::Error::internal(format!("hls push task failed: {e}")))?;
    Ok(outcome?)
}

/// The broadcaster's muxer deletes segments that slid out of its window; Livecast keeps its own
/// durable copies, so this only acknowledges.
async fn delete_file(Path((_key, file)): Path<(String, String)>) -> Result<StatusCode, ApiError> {
    classify(&file)?;
    Ok(StatusCode::NO_CONTENT)
}
