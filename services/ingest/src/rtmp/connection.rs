//! One broadcaster's connection: handshake, the RTMP session, and the publish it carries.

use std::io;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use livecast_core::Error;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

use super::convert::{media_chunk, metadata_body, publish_refusal, without_query};
use super::{RtmpConfig, metrics};
use crate::publish::{ChunkSoFar, Departure, PublishGate, Publisher};
use livecast_formats::flv::{FlvChunk, FlvChunker, FlvError};

const READ_BUFFER: usize = 64 * 1024;
/// After refusing a request: how long to wait for the client to read the answer and hang up.
const LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Why a connection ended.
#[derive(Debug)]
enum Outcome {
    Closed,
    Shutdown,
    HandshakeTimeout,
    BadHandshake(String),
    IdleTimeout,
    Protocol(String),
    InvalidMedia(FlvError),
    PublisherFailed(Error),
    Rejected(&'static str),
    Io(io::Error),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Closed => "closed",
            Outcome::Shutdown => "shutdown",
            Outcome::HandshakeTimeout => "handshake_timeout",
            Outcome::BadHandshake(_) => "bad_handshake",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::Protocol(_) => "protocol_error",
            Outcome::InvalidMedia(_) => "invalid_media",
            Outcome::PublisherFailed(_) => "publisher_failed",
            Outcome::Rejected(_) => "rejected",
            Outcome::Io(_) => "io_error",
        }
    }

    fn log(&self) {
        let outcome = self.label();
        match self {
            Outcome::Closed | Outcome::Shutdown => {
                tracing::debug!(outcome, "rtmp connection ended")
            }
            Outcome::Rejected(reason) => tracing::info!(reason, "rtmp request refused"),
            Outcome::BadHandshake(error) => {
                tracing::info!(%error, "closing connection: not an rtmp handshake")
            }
            Outcome::Protocol(error) => {
                tracing::info!(%error, "closing connection: rtmp protocol error")
            }
            Outcome::InvalidMedia(error) => {
                tracing::info!(%error, "closing connection: invalid media")
            }
            Outcome::PublisherFailed(error) => {
                tracing::warn!(%error, "closing connection: source chunk was not stored")
            }
            Outcome::Io(error) => tracing::info!(%error, "rtmp connection failed"),
            Outcome::HandshakeTimeout | Outcome::IdleTimeout => {
                tracing::info!(outcome, "rtmp connection timed out")
            }
        }
    }
}

impl From<ServerSessionError> for Outcome {
    fn from(error: ServerSessionError) -> Self {
        Outcome::Protocol(error.to_string())
    }
}

/// Serves one connection to its end, counting and logging how it ended.
pub(super) async fn serve(
    stream: TcpStream,
    gate: Arc<dyn PublishGate>,
    config: Arc<RtmpConfig>,
    shutdown: CancellationToken,
) {
    // Only latency matters for the few small answers a publisher gets.
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        stream,
        gate,
        config,
        shutdown,
        publishing: None,
    };
    let outcome = connection.run().await;
    let flush = !matches!(outcome, Outcome::PublisherFailed(_));
    connection.end_publishing(flush, Departure::Dropped).await;
    if matches!(outcome, Outcome::Rejected(_)) {
        connection.linger().await;
    }
    metrics::connection_ended(outcome.label());
    outcome.log();
}

struct Publishing {
    publisher: Box<dyn Publisher>,
    chunker: FlvChunker,
    /// The chunk being cut: where it starts and when its first tag arrived (Unix ms).
    opened: Option<(i64, i64)>,
}

struct Connection {
    stream: TcpStream,
    gate: Arc<dyn PublishGate>,
    config: Arc<RtmpConfig>,
    shutdown: CancellationToken,
    publishing: Option<Publishing>,
}

impl Connection {
    async fn run(&mut self) -> Outcome {
        let leftover = match self.handshake().await {
            Ok(leftover) => leftover,
            Err(outcome) => return outcome,
        };
        match self.session(leftover).await {
            Ok(()) => Outcome::Closed,
            Err(outcome) => outcome,
        }
    }

    /// The RTMP handshake; returns the bytes the client sent after it.
    async fn handshake(&mut self) -> Result<Vec<u8>, Outcome> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        let mut handshake = Handshake::new(PeerType::Server);
        let mut buffer = vec![0; 4096];
        loop {
            let read = tokio::select! {
                () = self.shutdown.cancelled() => return Err(Outcome::Shutdown),
                read = timeout_at(deadline, self.stream.read(&mut buffer)) => read,
            };
            let n = match read {
                Err(_) => return Err(Outcome::HandshakeTimeout),
                Ok(Err(error)) => return Err(Outcome::Io(error)),
                Ok(Ok(0)) => return Err(Outcome::Closed),
                Ok(Ok(n)) => n,
            };
            let step = handshake
                .process_bytes(&buffer[..n])
                .map_err(|error| Outcome::BadHandshake(error.to_string()))?;
            match step {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.write(&response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.write(&response_bytes).await?;
                    return Ok(remaining_bytes);
                }
            }
        }
    }

    /// The RTMP session after the handshake; `Ok` when the client hung up.
    async fn session(&mut self, leftover: Vec<u8>) -> Result<(), Outcome> {
        let (mut session, greeting) = ServerSession::new(ServerSessionConfig::new())?;
        self.apply(&mut session, greeting).await?;
        let results = feed(&mut session, &leftover)?;
        self.apply(&mut session, results).await?;
        let mut buffer = vec![0; READ_BUFFER];
        loop {
            let read = tokio::select! {
                () = self.shutdown.cancelled() => return Err(Outcome::Shutdown),
                read = timeout(self.config.idle_timeout, self.stream.read(&mut buffer)) => read,
            };
            let n = match read {
                Err(_) => return Err(Outcome::IdleTimeout),
                Ok(Err(error)) => return Err(Outcome::Io(error)),
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(n)) => n,
            };
            let results = feed(&mut session, &buffer[..n])?;
            self.apply(&mut session, results).await?;
        }
    }

    /// Sends the session's answers and acts on its events, in order.
    async fn apply(
        &mut self,
        session: &mut ServerSession,
        results: Vec<ServerSessionResult>,
    ) -> Result<(), Outcome> {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.write(&packet.bytes).await?,
                ServerSessionResult::RaisedEvent(event) => self.on_event(session, event).await?,
                ServerSessionResult::UnhandleableMessageReceived(message) => {
                    tracing::debug!(type_id = message.type_id, "ignoring rtmp message");
                }
            }
        }
        Ok(())
    }

    async fn on_event(
        &mut self,
        session: &mut ServerSession,
        event: ServerSessionEvent,
    ) -> Result<(), Outcome> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                if without_query(&app_name) == self.config.app {
                    let answer = session.accept_request(request_id)?;
                    self.send(answer).await
                } else {
                    let description = format!("unknown application {app_name:?}");
                    self.refuse(
                        session,
                        request_id,
                        "NetConnection.Connect.Rejected",
                        &description,
                        "app",
                    )
                    .await
                }
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => self.on_publish(session, request_id, &stream_key).await,
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                let description = "this server only accepts publishing";
                self.refuse(
                    session,
                    request_id,
                    "NetStream.Play.Failed",
                    description,
                    "play",
                )
                .await
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.end_publishing(true, Departure::Finished).await;
                Ok(())
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(publishing) = self.publishing.as_mut() {
                    let body = metadata_body(&metadata);
                    publishing
                        .chunker
                        .set_metadata(body)
                        .map_err(Outcome::InvalidMedia)?;
                }
                Ok(())
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                self.on_media(|chunker| chunker.push_video(timestamp.value, data))
                    .await
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                self.on_media(|chunker| chunker.push_audio(timestamp.value, data))
                    .await
            }
            _ => Ok(()),
        }
    }

    async fn on_publish(
        &mut self,
        session: &mut ServerSession,
        request_id: u32,
        stream_key: &str,
    ) -> Result<(), Outcome> {
        if self.publishing.is_some() {
            let description = "this connection is already publishing";
            return self
                .refuse(
                    session,
                    request_id,
                    "NetStream.Publish.BadConnection",
                    description,
                    "second_publish",
                )
                .await;
        }
        let key = without_query(stream_key);
        if key.is_empty() {
            return self
                .refuse(
                    session,
                    request_id,
                    "NetStream.Publish.BadName",
                    "missing stream key",
                    "bad_name",
                )
                .await;
        }
        // Not raced against shutdown: a begun publish must reach `end`, so the answer is
        // awaited (the gate bounds it) and the session loop sees shutdown right after.
        match self.gate.begin(key).await {
            Ok(publisher) => {
                // Kept before answering, so that any failure from here on still ends it.
                self.publishing = Some(Publishing {
                    publisher,
                    chunker: FlvChunker::new(self.config.chunk_target_ms),
                    opened: None,
                });
                tracing::info!("rtmp publish started");
                let answer = session.accept_request(request_id)?;
                self.send(answer).await
            }
            Err(error) => {
                let (code, reason) = publish_refusal(error.kind);
                self.refuse(session, request_id, code, &error.message, reason)
                    .await
            }
        }
    }

    /// Feeds one media message to the chunker and hands over the chunk it completes.
    async fn on_media(
        &mut self,
        push: impl FnOnce(&mut FlvChunker) -> Result<Option<FlvChunk>, FlvError>,
    ) -> Result<(), Outcome> {
        let Some(publishing) = self.publishing.as_mut() else {
            return Ok(());
        };
        let cut = push(&mut publishing.chunker).map_err(Outcome::InvalidMedia)?;
        // Noted now, before storing the chunk this tag ended, which may take a while.
        let now = livecast_core::time::now_millis();
        let start = publishing.chunker.chunk_so_far().map(|(_, pts_ms)| pts_ms);
        if start.is_some() && publishing.opened.map(|(pts_ms, _)| pts_ms) != start {
            publishing.opened = start.map(|pts_ms| (pts_ms, now));
        }
        if let Some(chunk) = cut {
            tracing::debug!(
                pts_ms = chunk.pts_ms,
                duration_ms = chunk.duration_ms,
                bytes = chunk.bytes.len(),
                "source chunk cut"
            );
            publishing
                .publisher
                .chunk(media_chunk(chunk))
                .await
                .map_err(Outcome::PublisherFailed)?;
        }
        if let (Some((bytes, pts_ms)), Some((_, arrived_ms))) =
            (publishing.chunker.chunk_so_far(), publishing.opened)
        {
            publishing.publisher.growing(ChunkSoFar {
                bytes,
                pts_ms,
                arrived_ms,
                format: publishing.chunker.codec_fingerprint(),
            });
        }
        Ok(())
    }

    /// Ends the publish, if any: flushes the last chunk (unless storing chunks already failed)
    /// and tells the publisher the broadcaster is gone.
    async fn end_publishing(&mut self, flush: bool, departure: Departure) {
        let Some(mut publishing) = self.publishing.take() else {
            return;
        };
        let last = if flush {
            publishing.chunker.flush()
        } else {
            None
        };
        if let Some(chunk) = last
            && let Err(error) = publishing.publisher.chunk(media_chunk(chunk)).await
        {
            tracing::warn!(%error, "last source chunk was not stored");
        }
        tracing::info!(
            dropped_tags = publishing.chunker.dropped_tags(),
            "rtmp publish ended"
        );
        publishing.publisher.end(departure).await;
    }

    /// Answers a request with an error status, counts it, and ends the connection.
    async fn refuse(
        &mut self,
        session: &mut ServerSession,
        request_id: u32,
        code: &str,
        description: &str,
        reason: &'static str,
    ) -> Result<(), Outcome> {
        metrics::rejected(reason);
        let answer = session.reject_request(request_id, code, description)?;
        self.send(answer).await?;
        Err(Outcome::Rejected(reason))
    }

    /// Writes the packets of an accept or reject answer (which raises no events).
    async fn send(&mut self, results: Vec<ServerSessionResult>) -> Result<(), Outcome> {
        for result in results {
            if let ServerSessionResult::OutboundResponse(packet) = result {
                self.write(&packet.bytes).await?;
            }
        }
        Ok(())
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        if bytes.is_empty() {
            return Ok(());
        }
        match timeout(self.config.idle_timeout, self.stream.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(Outcome::Io(error)),
            Err(_) => Err(Outcome::IdleTimeout),
        }
    }

    /// Half-closes and waits briefly for the client to hang up, so that it reads the refusal
    /// instead of a reset.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let mut sink = vec![0; 4096];
        let drain = async {
            while let Ok(n) = self.stream.read(&mut sink).await
                && n > 0
            {}
        };
        let _ = timeout(LINGER, drain).await;
    }
}

/// Feeds received bytes to the session.
fn feed(session: &mut ServerSession, bytes: &[u8]) -> Result<Vec<ServerSessionResult>, Outcome> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    // rml_rtmp 0.8 can panic on crafted input (an `@setDataFrame` without its arguments is
    // indexed past its end). The session is dropped right after, so a panic ends this
    // connection like any protocol error instead of skipping its teardown.
    match std::panic::catch_unwind(AssertUnwindSafe(|| session.handle_input(bytes))) {
        Ok(results) => Ok(results?),
        Err(_) => Err(Outcome::Protocol("malformed rtmp message".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_that_panics_the_session_is_a_protocol_error() {
        let (mut session, _) = ServerSession::new(ServerSessionConfig::new()).unwrap();
        // One chunk (format 0, chunk stream 3) carrying an AMF0 data message that is only
        // "@setDataFrame": rml_rtmp 0.8 indexes past its end.
        let payload = b"\x02\x00\x0d@setDataFrame";
        let mut bytes = vec![0x03, 0, 0, 0, 0, 0, payload.len() as u8, 18, 0, 0, 0, 0];
        bytes.extend_from_slice(payload);
        assert!(matches!(
            feed(&mut session, &bytes),
            Err(Outcome::Protocol(_))
        ));
    }
}
