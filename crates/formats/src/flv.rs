//! FLV, the container RTMP media travels in: the tag model, a reader and writer, codec packet
//! inspection, and the chunker that cuts a publish into self-contained source chunks.

mod amf0;
mod chunker;
mod media;
#[cfg(test)]
mod proptests;
pub mod tag;
mod timeline;

pub use amf0::{ScriptValue, on_metadata};
pub use chunker::{DEFAULT_TARGET_MS, FlvChunk, FlvChunker};
pub use media::{AudioPacket, VideoPacket, inspect_audio, inspect_video};
pub use tag::{FlvFile, FlvTag, MAX_TAG_BODY, TagKind, parse_flv, write_header, write_tag};

/// Why FLV data or a media packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The data does not start with an FLV header.
    #[error("not an FLV file")]
    NotFlv,
    /// The data ends inside a header or tag (its length is given).
    #[error("FLV data is truncated after {0} bytes")]
    Truncated(usize),
    /// A tag's trailing PreviousTagSize does not match the tag (at this offset).
    #[error("FLV PreviousTagSize at offset {0} does not match its tag")]
    BadPreviousTagSize(usize),
    /// A tag type other than audio, video and script data.
    #[error("FLV tag type {0} is not audio, video or script data")]
    UnsupportedTagType(u8),
    /// A tag body larger than FLV can frame.
    #[error("FLV tag body of {0} bytes is larger than FLV allows")]
    TagTooLarge(usize),
    /// An audio or video packet with no bytes.
    #[error("empty {0} packet")]
    EmptyPacket(TagKind),
    /// A packet shorter than its headers need.
    #[error("{kind} packet of {len} bytes is shorter than the {needed} its header needs")]
    TruncatedPacket {
        /// Audio or video.
        kind: TagKind,
        /// Its length.
        len: usize,
        /// The length its header needs.
        needed: usize,
    },
    /// A header field holds a reserved value.
    #[error("{kind} packet has reserved {field} value {value}")]
    Reserved {
        /// Audio or video.
        kind: TagKind,
        /// Which header field.
        field: &'static str,
        /// The value found.
        value: u8,
    },
}
