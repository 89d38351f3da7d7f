//! Cuts a live RTMP publish into self-contained FLV source chunks.
//!
//! Each chunk is a complete FLV file: header, the latest `onMetaData`, the current decoder
//! configurations (repeated in every chunk so that each decodes alone), then the media tags with
//! their original timestamps. With video, a chunk starts on a keyframe and a new one begins at
//! the first keyframe once the current one has lasted the target duration. Audio alone (no
//! video yet, or video that stalled) cuts by duration, since every audio frame decodes alone.

use bytes::{Bytes, BytesMut};

use super::FlvError;
use super::media::{AudioPacket, VideoPacket, inspect_audio, inspect_video};
use super::tag::{MAX_TAG_BODY, TagKind, framed_len, write_header, write_tag};
use super::timeline::{Timeline, Track, flv_timestamp};

/// The chunk duration aimed for when none is configured, in milliseconds.
pub const DEFAULT_TARGET_MS: u32 = 2_000;

/// A chunk never grows past this: it bounds memory per broadcaster when keyframes never come.
const MAX_CHUNK_BYTES: usize = 64 << 20;

/// One self-contained FLV file cut from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvChunk {
    /// The FLV file.
    pub bytes: Bytes,
    /// Timestamp of the first media tag, in milliseconds on the broadcaster's timeline.
    pub pts_ms: i64,
    /// Until the next chunk's start. For the last chunk, and for one cut early because it
    /// reached the size limit, until its last tag plus one frame.
    pub duration_ms: u32,
}

/// Receives an RTMP publish's media messages and produces FLV chunks.
#[derive(Debug)]
pub struct FlvChunker {
    target_ms: i64,
    timeline: Timeline,
    metadata: Option<Bytes>,
    video_config: Option<Bytes>,
    audio_config: Option<Bytes>,
    seen_video: bool,
    seen_audio: bool,
    last_video_at: Option<i64>,
    last_at: [Option<i64>; 2],
    frame_ms: [i64; 2],
    current: Option<OpenChunk>,
    dropped: u64,
}

#[derive(Debug)]
struct OpenChunk {
    bytes: BytesMut,
    start: i64,
    end: i64,
    has_keyframe: bool,
}

impl Default for FlvChunker {
    fn default() -> Self {
        FlvChunker::new(DEFAULT_TARGET_MS)
    }
}

impl FlvChunker {
    /// A chunker aiming at chunks of `target_ms` milliseconds (at least 1).
    pub fn new(target_ms: u32) -> Self {
        FlvChunker {
            target_ms: i64::from(target_ms.max(1)),
            timeline: Timeline::default(),
            metadata: None,
            video_config: None,
            audio_config: None,
            seen_video: false,
            seen_audio: false,
            last_video_at: None,
            last_at: [None; 2],
            frame_ms: [0; 2],
            current: None,
            dropped: 0,
        }
    }

    /// Media tags dropped because they could not be decoded (video before the first keyframe,
    /// audio while waiting for it).
    pub fn dropped_tags(&self) -> u64 {
        self.dropped
    }

    /// Sets the `onMetaData` script tag body that starts each following chunk.
    pub fn set_metadata(&mut self, body: Bytes) -> Result<(), FlvError> {
        if body.len() > MAX_TAG_BODY {
            return Err(FlvError::TagTooLarge(body.len()));
        }
        self.metadata = Some(body);
        Ok(())
    }

    /// Takes one RTMP video message; returns the chunk it completed, if any.
    pub fn push_video(
        &mut self,
        timestamp: u32,
        body: Bytes,
    ) -> Result<Option<FlvChunk>, FlvError> {
        let packet = inspect_video(&body)?;
        check_size(&body)?;
        let at = self.timeline.map(Track::Video, timestamp);
        self.seen_video = true;
        self.last_video_at = Some(at);
        self.note_frame(Track::Video, at);
        match packet {
            VideoPacket::SequenceHeader => Ok(self.set_config(TagKind::Video, at, body)),
            VideoPacket::KeyFrame => Ok(self.push_media(TagKind::Video, at, body, true)),
            VideoPacket::InterFrame | VideoPacket::Other => {
                let decodable = self.current.as_ref().is_some_and(|c| c.has_keyframe)
                    || (packet == VideoPacket::Other && self.current.is_some());
                if decodable {
                    Ok(self.push_media(TagKind::Video, at, body, false))
                } else {
                    self.dropped += 1;
                    Ok(None)
                }
            }
        }
    }

    /// Takes one RTMP audio message; returns the chunk it completed, if any.
    pub fn push_audio(
        &mut self,
        timestamp: u32,
        body: Bytes,
    ) -> Result<Option<FlvChunk>, FlvError> {
        let packet = inspect_audio(&body)?;
        check_size(&body)?;
        let at = self.timeline.map(Track::Audio, timestamp);
        self.seen_audio = true;
        self.note_frame(Track::Audio, at);
        match packet {
            AudioPacket::SequenceHeader => Ok(self.set_config(TagKind::Audio, at, body)),
            AudioPacket::Frame => Ok(self.push_media(TagKind::Audio, at, body, false)),
        }
    }

    /// A fingerprint of the decoder configurations in force (video and audio sequence
    /// headers), stable across processes: two publishes with the same one carry the same codecs,
    /// profiles and picture size. `None` before any configuration arrived.
    pub fn codec_fingerprint(&self) -> Option<u64> {
        if self.video_config.is_none() && self.audio_config.is_none() {
            return None;
        }
        // FNV-1a over both configurations, each preceded by its length.
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for config in [&self.video_config, &self.audio_config] {
            let body = config.as_deref().unwrap_or_default();
            for byte in (body.len() as u64).to_le_bytes().iter().chain(body) {
                hash ^= u64::from(*byte);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        Some(hash)
    }

    /// The chunk being cut, so far: its bytes (a prefix of the [`FlvChunk`] it becomes) and
    /// the timestamp of its first media tag. `None` before the first decodable tag.
    pub fn chunk_so_far(&self) -> Option<(&[u8], i64)> {
        self.current
            .as_ref()
            .map(|open| (&open.bytes[..], open.start))
    }

    /// Ends the stream: the chunk in progress, if any, with its duration estimated as the last
    /// tag's time plus one frame.
    pub fn flush(&mut self) -> Option<FlvChunk> {
        let open = self.current.take()?;
        let end = open.end.max(open.start);
        Some(finish(open, end))
    }

    /// Video is flowing when its last frame is recent relative to `at`: audio then waits for
    /// keyframes to cut; otherwise it cuts by duration on its own.
    fn video_flowing(&self, at: i64) -> bool {
        self.last_video_at
            .is_some_and(|video| at - video < self.target_ms)
    }

    fn note_frame(&mut self, track: Track, at: i64) {
        let slot = track as usize;
        if let Some(last) = self.last_at[slot]
            && at > last
        {
            self.frame_ms[slot] = at - last;
        }
        self.last_at[slot] = Some(at);
    }

    /// Keeps a new decoder configuration for the next chunks and, when it changed mid-chunk,
    /// writes it in place too so the rest of this chunk decodes (or, when the chunk is full,
    /// ends it: the next one starts with this configuration).
    fn set_config(&mut self, kind: TagKind, at: i64, body: Bytes) -> Option<FlvChunk> {
        let known = match kind {
            TagKind::Audio => &self.audio_config,
            _ => &self.video_config,
        };
        if known.as_ref() == Some(&body) {
            return None;
        }
        let mut done = None;
        if let Some(open) = self.current.as_mut() {
            if open.bytes.len() + framed_len(body.len()) > MAX_CHUNK_BYTES {
                done = self.current.take().map(|open| {
                    let end = open.end;
                    finish(open, end)
                });
            } else {
                append(open, kind, at, &body, 0);
            }
        }
        match kind {
            TagKind::Audio => self.audio_config = Some(body),
            _ => self.video_config = Some(body),
        }
        done
    }

    /// Appends a media tag, cutting first when this tag may start a chunk and the current one is
    /// long enough (or too large).
    fn push_media(
        &mut self,
        kind: TagKind,
        at: i64,
        body: Bytes,
        keyframe: bool,
    ) -> Option<FlvChunk> {
        // While video flows, audio never starts a chunk: the video in it could not decode.
        let can_start = keyframe || (kind == TagKind::Audio && !self.video_flowing(at));
        let cut_at = self.current.as_ref().and_then(|open| {
            if can_start && at - open.start >= self.target_ms {
                // The next chunk starts with this tag.
                Some(at)
            } else if open.bytes.len() + framed_len(body.len()) > MAX_CHUNK_BYTES {
                // Forced: where the next chunk starts is unknown, so this one ends with its
                // content.
                Some(open.end)
            } else {
                None
            }
        });
        let done = cut_at.and_then(|end| self.current.take().map(|open| finish(open, end)));
        if self.current.is_none() {
            if !can_start {
                self.dropped += 1;
                return done;
            }
            self.current = Some(self.open_chunk(at));
        }
        let frame = self.frame_ms[track_of(kind) as usize];
        if let Some(open) = self.current.as_mut() {
            open.has_keyframe |= keyframe;
            append(open, kind, at, &body, frame);
        }
        done
    }

    fn open_chunk(&self, at: i64) -> OpenChunk {
        let mut open = OpenChunk {
            bytes: BytesMut::with_capacity(64 * 1024),
            start: at,
            end: at,
            has_keyframe: false,
        };
        let has_audio = self.seen_audio || self.audio_config.is_some();
        write_header(&mut open.bytes, has_audio, self.seen_video);
        // Demuxers take `onMetaData` as file metadata only at timestamp 0 (ffmpeg turns a later
        // one into a data stream); the configurations go at the chunk's start.
        if let Some(body) = &self.metadata {
            let written = write_tag(&mut open.bytes, TagKind::Script, 0, body);
            debug_assert!(written.is_ok(), "metadata size is checked when set");
        }
        for (kind, body) in [
            (TagKind::Video, &self.video_config),
            (TagKind::Audio, &self.audio_config),
        ] {
            if let Some(body) = body {
                append(&mut open, kind, at, body, 0);
            }
        }
        open
    }
}

fn track_of(kind: TagKind) -> Track {
    match kind {
        TagKind::Audio => Track::Audio,
        _ => Track::Video,
    }
}

fn check_size(body: &[u8]) -> Result<(), FlvError> {
    if body.len() > MAX_TAG_BODY {
        return Err(FlvError::TagTooLarge(body.len()));
    }
    Ok(())
}

fn append(open: &mut OpenChunk, kind: TagKind, at: i64, body: &[u8], frame_ms: i64) {
    // Sizes were checked when the tag came in, so writing cannot fail.
    let written = write_tag(&mut open.bytes, kind, flv_timestamp(at), body);
    debug_assert!(written.is_ok());
    open.end = open.end.max(at + frame_ms);
}

fn finish(open: OpenChunk, end: i64) -> FlvChunk {
    let duration = (end - open.start).clamp(0, i64::from(u32::MAX));
    FlvChunk {
        bytes: open.bytes.freeze(),
        pts_ms: open.start,
        duration_ms: duration as u32,
    }
}

#[cfg(test)]
#[path = "chunker_tests.rs"]
pub(super) mod tests;
