//! The transcoding core of the Livecast encode worker: one source chunk in, the CMAF renditions
//! of the ladder out.
//!
//! A [`StreamTranscoder`] lives as long as a live stream. For each [`SourceChunkInput`] it
//! decodes whatever FFmpeg can demux and decode (FLV with H.264/AAC, MPEG-TS, fMP4, other
//! codecs), fits the [`Ladder`] to the source (never upscaling), encodes each rung with libx264
//! (one closed GOP per segment, a single IDR at its start, VBV-capped), carries the audio
//! (AAC copied, anything else encoded by one AAC encoder kept for the stream), and muxes each
//! rendition plus an audio-only one as fragmented MP4: an init segment and one media segment
//! whose timestamps are the chunk's place on the stream timeline, identical across video
//! renditions, so a player can switch at any segment boundary.
//!
//! It is blocking, CPU-heavy work: call it from `spawn_blocking` or a dedicated thread. No
//! Kafka, no blob store here; the encode worker does the I/O around it.
// One call into glibc, in `memory.rs`, says why it is sound; nothing else is unsafe.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod boxes;
pub mod codecs;
mod decode;
mod encode_audio;
mod encode_video;
mod error;
mod ladder;
mod memory;
mod mux;
mod parts;
mod scale;
mod slate;
mod timeline;
mod transcoder;

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::{Arc, OnceLock},
};

pub use error::MediaError;
pub use ladder::{AUDIO_RENDITION, Ladder, Rung};
pub use memory::return_freed_buffers_to_the_system;
pub use parts::EncodedPart;
pub use transcoder::{Continuity, StreamTranscoder};

/// Encoder settings shared by every chunk of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscodeOptions {
    /// x264 preset: "veryfast" in production; "ultrafast" keeps tests quick.
    pub preset: String,
    /// x264 threads per rendition; 0 lets x264 choose from the core count.
    pub x264_threads: u32,
    /// Longest chunk that still becomes a single-GOP segment. It fixes the keyframe interval
    /// (at up to 60 fps), which is part of the SPS: constant per stream, so init segments are
    /// the same for every chunk.
    pub max_chunk_ms: u32,
    /// Where chunks given as bytes are written to be opened by path; the system default if
    /// `None`.
    pub temp_dir: Option<PathBuf>,
    /// The longest a partial segment may last (Low-Latency HLS `PART-TARGET`), in
    /// milliseconds: segments are made of parts cut at most this long.
    pub part_target_ms: u32,
    /// x264 without lookahead, so each frame comes out of the encoder right after it went in
    /// and a part is complete as soon as its last frame is encoded. Costs some quality per bit.
    pub low_delay: bool,
    /// Longest time between keyframes inside a segment: a part starting one is independent,
    /// and a Low-Latency HLS player joins at the newest independent part. 0: a keyframe only
    /// at each segment's start.
    pub keyframe_interval_ms: u32,
    /// How long ingest aims to make chunks (its `chunk_target_ms`): no keyframe is forced
    /// within a part of that, where the next segment's own keyframe comes. A setting rather
    /// than the chunk's measured length, so every worker makes the same segment of a chunk.
    pub chunk_target_ms: u32,
}

impl Default for TranscodeOptions {
    fn default() -> Self {
        Self {
            preset: "veryfast".into(),
            x264_threads: 0,
            max_chunk_ms: 10_000,
            temp_dir: None,
            part_target_ms: 500,
            low_delay: true,
            keyframe_interval_ms: 1_000,
            chunk_target_ms: 2_000,
        }
    }
}

/// Where the bytes of a source chunk are.
#[derive(Debug, Clone, Copy)]
pub enum ChunkMedia<'a> {
    /// A file on local disk.
    File(&'a Path),
    /// In memory; written to a temporary file first, since FFmpeg probes and seeks best by path.
    Bytes(&'a [u8]),
}

/// One source chunk as cut by the ingest: starts on a keyframe, about 2 s long.
#[derive(Debug, Clone, Copy)]
pub struct SourceChunkInput<'a> {
    /// The chunk's bytes.
    pub media: ChunkMedia<'a>,
    /// Sequence number within the stream (for logs; segments are named by the caller).
    pub seq: u64,
    /// Where the chunk starts on the stream timeline, in milliseconds: the chunk's earliest
    /// timestamp (the first media tag of an FLV chunk) lands there and every other keeps its
    /// distance to it. When the chunk's timestamps already are the stream timeline (RTMP), pass
    /// that first timestamp and the output keeps the source timestamps. Never negative.
    pub pts_ms: i64,
    /// The chunk's nominal duration as the ingest measured it.
    pub duration_ms: u32,
}

/// A source chunk whose bytes are still arriving (a live feed from the ingest).
pub struct LiveChunkInput {
    /// The chunk's bytes from its first: blocks until more come, reports the chunk's end as
    /// end of file and a broken feed as an error.
    pub reader: Box<dyn Read + Send>,
    /// Sequence number within the stream (for logs).
    pub seq: u64,
    /// Where the chunk starts on the stream timeline, as in [`SourceChunkInput::pts_ms`].
    pub pts_ms: i64,
    /// The chunk's duration as the ingest cut it, set before `reader` reports the end.
    pub duration_ms: Arc<OnceLock<u32>>,
}

impl std::fmt::Debug for LiveChunkInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChunkInput")
            .field("seq", &self.seq)
            .field("pts_ms", &self.pts_ms)
            .finish_non_exhaustive()
    }
}

/// One rendition of one chunk: a CMAF init segment and one media segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRendition {
    /// "720p", ... or [`AUDIO_RENDITION`].
    pub name: String,
    /// Picture size; 0 x 0 for the audio-only rendition.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// True for the audio-only rendition.
    pub audio_only: bool,
    /// `ftyp` + `moov`; the same bytes for every chunk of a rendition while the source keeps
    /// its codecs.
    pub init_segment: bytes::Bytes,
    /// The chunk's fragments (`moof` + `mdat`, one per part), end to end.
    pub media_segment: bytes::Bytes,
    /// Where the segment starts on the stream timeline (its first video frame; for audio
    /// only, its first audio sample), in milliseconds.
    pub start_ms: i64,
    /// Duration of the segment's main track (video, else audio), in milliseconds.
    pub duration_ms: u32,
    /// RFC 6381 CODECS value read from the init segment, e.g. "avc1.64001f,mp4a.40.2".
    pub codecs: String,
    /// Bits per second of this media segment (its size over its duration): the HLS BANDWIDTH.
    pub bandwidth: u32,
    /// Frames per second times 1000; 0 for audio only.
    pub frame_rate_milli: u32,
    /// Whether this is the source's media or a stand-in for it.
    pub content: Content,
    /// How many parts (fragments) the segment is made of.
    pub parts: u32,
}

/// What a rendition of a chunk shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// The source's picture and sound.
    Source,
    /// The source's sound under its last picture held still: its video stalled or could not
    /// be decoded while audio kept coming.
    StillPicture,
    /// Slate: the last picture held still, with silence. Stands in for a chunk that could not
    /// be decoded or for time when the broadcaster sent nothing.
    Slate,
}
