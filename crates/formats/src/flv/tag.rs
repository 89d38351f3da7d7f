//! FLV framing: the file header, tags, and the PreviousTagSize fields between them.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::FlvError;

/// The largest tag body FLV can frame (its DataSize field has 24 bits).
pub const MAX_TAG_BODY: usize = 0xFF_FFFF;

const SIGNATURE: &[u8; 3] = b"FLV";
const HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;
const FLAG_AUDIO: u8 = 0x04;
const FLAG_VIDEO: u8 = 0x01;

/// What an FLV tag carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagKind {
    /// An audio packet (tag type 8).
    Audio,
    /// A video packet (tag type 9).
    Video,
    /// AMF0 script data such as `onMetaData` (tag type 18).
    Script,
}

impl TagKind {
    /// The FLV TagType byte.
    pub fn type_id(self) -> u8 {
        match self {
            TagKind::Audio => 8,
            TagKind::Video => 9,
            TagKind::Script => 18,
        }
    }

    /// The kind for a TagType byte, if FLV defines one.
    pub fn from_type_id(id: u8) -> Option<TagKind> {
        match id {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        }
    }
}

impl fmt::Display for TagKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TagKind::Audio => "audio",
            TagKind::Video => "video",
            TagKind::Script => "script",
        })
    }
}

/// One FLV tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvTag {
    /// What the body is.
    pub kind: TagKind,
    /// Decode timestamp in milliseconds (FLV's 24 bits plus the extension byte).
    pub timestamp: u32,
    /// The tag body: the audio or video packet, or AMF0 script data.
    pub body: Bytes,
}

/// A parsed FLV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvFile {
    /// The header announces audio.
    pub has_audio: bool,
    /// The header announces video.
    pub has_video: bool,
    /// The tags in file order.
    pub tags: Vec<FlvTag>,
}

/// Writes the FLV file header and the PreviousTagSize0 field that follows it.
pub fn write_header(out: &mut BytesMut, has_audio: bool, has_video: bool) {
    let mut flags = 0;
    if has_audio {
        flags |= FLAG_AUDIO;
    }
    if has_video {
        flags |= FLAG_VIDEO;
    }
    out.put_slice(SIGNATURE);
    out.put_u8(1);
    out.put_u8(flags);
    out.put_u32(HEADER_LEN as u32);
    out.put_u32(0);
}

/// Writes one tag and the PreviousTagSize field that closes it.
pub fn write_tag(
    out: &mut BytesMut,
    kind: TagKind,
    timestamp: u32,
    body: &[u8],
) -> Result<(), FlvError> {
    if body.len() > MAX_TAG_BODY {
        return Err(FlvError::TagTooLarge(body.len()));
    }
    out.reserve(TAG_HEADER_LEN + body.len() + 4);
    out.put_u8(kind.type_id());
    put_u24(out, body.len() as u32);
    put_u24(out, timestamp & 0xFF_FFFF);
    out.put_u8((timestamp >> 24) as u8);
    put_u24(out, 0);
    out.put_slice(body);
    out.put_u32((TAG_HEADER_LEN + body.len()) as u32);
    Ok(())
}

/// The size `write_tag` adds for a body of `body_len` bytes.
pub(crate) fn framed_len(body_len: usize) -> usize {
    TAG_HEADER_LEN + body_len + 4
}

/// Parses a whole FLV file, checking every PreviousTagSize.
pub fn parse_flv(data: &[u8]) -> Result<FlvFile, FlvError> {
    let bytes = Bytes::copy_from_slice(data);
    if bytes.len() < HEADER_LEN || &bytes[..3] != SIGNATURE || bytes[3] != 1 {
        return Err(FlvError::NotFlv);
    }
    let flags = bytes[4];
    let data_offset = read_u32(&bytes, 5) as usize;
    if data_offset < HEADER_LEN {
        return Err(FlvError::NotFlv);
    }
    let mut at = data_offset;
    if bytes.len() < at + 4 {
        return Err(FlvError::Truncated(bytes.len()));
    }
    // PreviousTagSize0 is always zero; some writers put junk there, so it is not checked.
    at += 4;
    let mut tags = Vec::new();
    while at < bytes.len() {
        if bytes.len() < at + TAG_HEADER_LEN {
            return Err(FlvError::Truncated(bytes.len()));
        }
        let type_byte = bytes[at];
        let kind =
            TagKind::from_type_id(type_byte).ok_or(FlvError::UnsupportedTagType(type_byte))?;
        let body_len = read_u24(&bytes, at + 1) as usize;
        let timestamp = read_u24(&bytes, at + 4) | (u32::from(bytes[at + 7]) << 24);
        let body_start = at + TAG_HEADER_LEN;
        let body_end = body_start + body_len;
        if bytes.len() < body_end + 4 {
            return Err(FlvError::Truncated(bytes.len()));
        }
        if read_u32(&bytes, body_end) as usize != TAG_HEADER_LEN + body_len {
            return Err(FlvError::BadPreviousTagSize(body_end));
        }
        tags.push(FlvTag {
            kind,
            timestamp,
            body: bytes.slice(body_start..body_end),
        });
        at = body_end + 4;
    }
    Ok(FlvFile {
        has_audio: flags & FLAG_AUDIO != 0,
        has_video: flags & FLAG_VIDEO != 0,
        tags,
    })
}

fn put_u24(out: &mut BytesMut, value: u32) {
    out.put_slice(&value.to_be_bytes()[1..]);
}

fn read_u24(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]])
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_parses_back() {
        let mut out = BytesMut::new();
        write_header(&mut out, true, false);
        write_tag(&mut out, TagKind::Audio, 0x0123_4567, b"\xaf\x01abc").unwrap();
        write_tag(&mut out, TagKind::Script, 0, b"").unwrap();
        let file = parse_flv(&out).unwrap();
        assert!(file.has_audio && !file.has_video);
        assert_eq!(file.tags.len(), 2);
        assert_eq!(file.tags[0].timestamp, 0x0123_4567);
        assert_eq!(&file.tags[0].body[..], b"\xaf\x01abc");
        assert_eq!(file.tags[1].kind, TagKind::Script);
    }

    #[test]
    fn broken_files_are_errors() {
        assert_eq!(parse_flv(b"NOPE"), Err(FlvError::NotFlv));
        let mut out = BytesMut::new();
        write_header(&mut out, false, true);
        write_tag(&mut out, TagKind::Video, 5, b"\x17\x01\0\0\0xyz").unwrap();
        let full = out.to_vec();
        assert!(matches!(
            parse_flv(&full[..full.len() - 1]),
            Err(FlvError::Truncated(_))
        ));
        let mut bad_size = full.clone();
        let last = bad_size.len() - 1;
        bad_size[last] ^= 1;
        assert!(matches!(
            parse_flv(&bad_size),
            Err(FlvError::BadPreviousTagSize(_))
        ));
        let mut bad_type = full;
        bad_type[13] = 7;
        assert_eq!(parse_flv(&bad_type), Err(FlvError::UnsupportedTagType(7)));
    }

    #[test]
    fn oversized_bodies_are_refused() {
        let mut out = BytesMut::new();
        let body = vec![0; MAX_TAG_BODY + 1];
        assert_eq!(
            write_tag(&mut out, TagKind::Video, 0, &body),
            Err(FlvError::TagTooLarge(MAX_TAG_BODY + 1))
        );
        assert!(out.is_empty());
    }
}
