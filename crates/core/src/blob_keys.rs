//! The blob key layout, in one place. Every part is a validated id or a number, so a key can
//! never escape its prefix.

use crate::{RenditionName, StreamId};

/// `source/{stream_id}/{epoch}/{seq}.{ext}`: a source chunk as ingest stored it.
pub fn source_chunk(stream: &StreamId, epoch: u32, seq: u64, ext: SourceExt) -> String {
    format!("source/{stream}/{epoch}/{seq}.{}", ext.as_str())
}

/// `source/{stream_id}/`: every source chunk and epoch claim of a stream.
pub fn source_prefix(stream: &StreamId) -> String {
    format!("source/{stream}/")
}

/// `source/{stream_id}/{epoch}/publisher`: written when an ingest instance starts an epoch, so
/// every other instance sees that the stream continues there before its first chunk lands.
pub fn source_epoch_claim(stream: &StreamId, epoch: u32) -> String {
    format!("source/{stream}/{epoch}/publisher")
}

/// `source/{stream_id}/timeline`: where the stream's timeline stands (next sequence number, end
/// of the last chunk), so that whichever ingest instance a broadcaster comes back to continues
/// it.
pub fn source_timeline(stream: &StreamId) -> String {
    format!("source/{stream}/timeline")
}

/// `hls/{stream_id}/{rendition}/init.mp4`: the CMAF init segment of a rendition.
pub fn init_segment(stream: &StreamId, rendition: &RenditionName) -> String {
    format!("hls/{stream}/{rendition}/init.mp4")
}

/// `hls/{stream_id}/{rendition}/{seq}.m4s`: one CMAF media segment.
pub fn media_segment(stream: &StreamId, rendition: &RenditionName, seq: u64) -> String {
    format!("hls/{stream}/{rendition}/{seq}.m4s")
}

/// `hls/{stream_id}/{rendition}/{seq}.{part}.m4s`: one partial segment of segment `seq`.
pub fn media_part(stream: &StreamId, rendition: &RenditionName, seq: u64, part: u32) -> String {
    format!("hls/{stream}/{rendition}/{seq}.{part}.m4s")
}

/// `hls/{stream_id}/parts/{seq}`: the one worker that makes the partial segments of segment
/// `seq` (the first to write it). Without an extension it is no rendition's file.
pub fn parts_claim(stream: &StreamId, seq: u64) -> String {
    format!("hls/{stream}/parts/{seq}")
}

/// `hls/{stream_id}/`: everything the encoder wrote for a stream.
pub fn stream_output_prefix(stream: &StreamId) -> String {
    format!("hls/{stream}/")
}

/// The container of a source chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceExt {
    /// FLV, cut from an RTMP publish.
    Flv,
    /// MPEG-TS, pushed over HLS.
    Ts,
    /// Fragmented MP4, pushed over HLS.
    Mp4,
}

impl SourceExt {
    /// The file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceExt::Flv => "flv",
            SourceExt::Ts => "ts",
            SourceExt::Mp4 => "m4s",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_layout() {
        let stream = StreamId::parse("s1").unwrap();
        let rendition = RenditionName::parse("720p").unwrap();
        assert_eq!(
            source_chunk(&stream, 2, 17, SourceExt::Flv),
            "source/s1/2/17.flv"
        );
        assert_eq!(init_segment(&stream, &rendition), "hls/s1/720p/init.mp4");
        assert_eq!(media_segment(&stream, &rendition, 9), "hls/s1/720p/9.m4s");
        assert_eq!(stream_output_prefix(&stream), "hls/s1/");
        assert_eq!(parts_claim(&stream, 9), "hls/s1/parts/9");
    }
}
