//! Reading just enough of an FLV audio or video packet header to know where a chunk may start.
//!
//! Both the legacy headers (codec id in the first byte; AVC and HEVC add a packet type and a
//! composition time) and Enhanced RTMP's extended headers (a FourCC codec) are understood.
//! The codec itself is never checked.

use super::FlvError;
use super::tag::TagKind;

/// What a video packet means for cutting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoPacket {
    /// A decoder configuration (AVC/HEVC configuration record, Enhanced RTMP SequenceStart).
    SequenceHeader,
    /// A frame that decodes on its own: a chunk may start here.
    KeyFrame,
    /// A frame that needs earlier frames.
    InterFrame,
    /// Anything else (end of sequence, command frames, in-band metadata): passed through.
    Other,
}

/// What an audio packet means for cutting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioPacket {
    /// A decoder configuration (AAC AudioSpecificConfig, Enhanced RTMP SequenceStart).
    SequenceHeader,
    /// Audio frames or anything else, passed through.
    Frame,
}

const LEGACY_AVC: u8 = 7;
/// HEVC under the widespread (non-Adobe) legacy codec id extension.
const LEGACY_HEVC: u8 = 12;
const EX_HEADER: u8 = 0x80;
const COMMAND_FRAME: u8 = 5;
const AUDIO_AAC: u8 = 10;
const AUDIO_EX_HEADER: u8 = 9;

/// Classifies a video tag body.
pub fn inspect_video(body: &[u8]) -> Result<VideoPacket, FlvError> {
    let kind = TagKind::Video;
    let first = *body.first().ok_or(FlvError::EmptyPacket(kind))?;
    let need = |needed: usize| {
        if body.len() < needed {
            Err(FlvError::TruncatedPacket {
                kind,
                len: body.len(),
                needed,
            })
        } else {
            Ok(())
        }
    };
    let reserved = |field: &'static str, value: u8| FlvError::Reserved { kind, field, value };
    if first & EX_HEADER != 0 {
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0F;
        if !(1..=5).contains(&frame_type) {
            return Err(reserved("frame type", frame_type));
        }
        // Enhanced RTMP: a command frame carries one command byte and no FourCC, except in a
        // Metadata packet.
        if frame_type == COMMAND_FRAME && packet_type != 4 {
            need(2)?;
            return Ok(VideoPacket::Other);
        }
        return match packet_type {
            // SequenceStart, MPEG2TSSequenceStart
            0 | 5 => need(5).map(|()| VideoPacket::SequenceHeader),
            // CodedFrames, CodedFramesX
            1 | 3 => need(5).map(|()| by_frame_type(frame_type)),
            // SequenceEnd, Metadata
            2 | 4 => need(5).map(|()| VideoPacket::Other),
            // Multitrack, ModEx: the frame type still says whether the packet is a keyframe.
            6 | 7 => need(2).map(|()| by_frame_type(frame_type)),
            other => Err(reserved("packet type", other)),
        };
    }
    let frame_type = first >> 4;
    let codec = first & 0x0F;
    if !(1..=5).contains(&frame_type) {
        return Err(reserved("frame type", frame_type));
    }
    if frame_type == COMMAND_FRAME {
        need(2)?;
        return Ok(VideoPacket::Other);
    }
    if codec == LEGACY_AVC || codec == LEGACY_HEVC {
        // Codec byte, packet type, 24-bit composition time.
        need(5)?;
        return match body[1] {
            0 => Ok(VideoPacket::SequenceHeader),
            1 => Ok(by_frame_type(frame_type)),
            2 => Ok(VideoPacket::Other),
            other => Err(reserved("AVC packet type", other)),
        };
    }
    Ok(by_frame_type(frame_type))
}

fn by_frame_type(frame_type: u8) -> VideoPacket {
    match frame_type {
        1 => VideoPacket::KeyFrame,
        COMMAND_FRAME => VideoPacket::Other,
        // Inter, disposable inter and server-generated keyframes all need earlier frames.
        _ => VideoPacket::InterFrame,
    }
}

/// Classifies an audio tag body.
pub fn inspect_audio(body: &[u8]) -> Result<AudioPacket, FlvError> {
    let kind = TagKind::Audio;
    let first = *body.first().ok_or(FlvError::EmptyPacket(kind))?;
    let need = |needed: usize| {
        if body.len() < needed {
            Err(FlvError::TruncatedPacket {
                kind,
                len: body.len(),
                needed,
            })
        } else {
            Ok(())
        }
    };
    let reserved = |field: &'static str, value: u8| FlvError::Reserved { kind, field, value };
    match first >> 4 {
        AUDIO_AAC => {
            need(2)?;
            match body[1] {
                0 => Ok(AudioPacket::SequenceHeader),
                1 => Ok(AudioPacket::Frame),
                other => Err(reserved("AAC packet type", other)),
            }
        }
        AUDIO_EX_HEADER => match first & 0x0F {
            0 => need(5).map(|()| AudioPacket::SequenceHeader),
            // CodedFrames, SequenceEnd, MultichannelConfig carry a FourCC.
            1 | 2 | 4 => need(5).map(|()| AudioPacket::Frame),
            // Multitrack, ModEx
            5 | 7 => need(2).map(|()| AudioPacket::Frame),
            other => Err(reserved("packet type", other)),
        },
        _ => Ok(AudioPacket::Frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_and_hevc_packets() {
        assert_eq!(
            inspect_video(b"\x17\0\0\0\0\x01"),
            Ok(VideoPacket::SequenceHeader)
        );
        assert_eq!(inspect_video(b"\x17\x01\0\0\0"), Ok(VideoPacket::KeyFrame));
        assert_eq!(
            inspect_video(b"\x27\x01\0\0\0"),
            Ok(VideoPacket::InterFrame)
        );
        assert_eq!(inspect_video(b"\x1c\x01\0\0\0"), Ok(VideoPacket::KeyFrame));
        assert_eq!(inspect_video(b"\x17\x02\0\0\0"), Ok(VideoPacket::Other));
        assert!(matches!(
            inspect_video(b"\x17\x01"),
            Err(FlvError::TruncatedPacket { needed: 5, .. })
        ));
        assert!(matches!(
            inspect_video(b"\x17\x09\0\0\0"),
            Err(FlvError::Reserved { .. })
        ));
    }

    #[test]
    fn other_codecs_pass_through() {
        // Sorenson H.263 and VP6 keyframes, a screen-video interframe: never refused.
        assert_eq!(inspect_video(b"\x12abc"), Ok(VideoPacket::KeyFrame));
        assert_eq!(inspect_video(b"\x14"), Ok(VideoPacket::KeyFrame));
        assert_eq!(inspect_video(b"\x23x"), Ok(VideoPacket::InterFrame));
        assert_eq!(inspect_audio(b"\x2f"), Ok(AudioPacket::Frame));
        assert_eq!(inspect_audio(b"\xe0xx"), Ok(AudioPacket::Frame));
    }

    #[test]
    fn enhanced_rtmp_packets() {
        assert_eq!(
            inspect_video(b"\x90av01\x81"),
            Ok(VideoPacket::SequenceHeader)
        );
        assert_eq!(inspect_video(b"\x91hvc1\0\0\0"), Ok(VideoPacket::KeyFrame));
        assert_eq!(inspect_video(b"\xa3vp09"), Ok(VideoPacket::InterFrame));
        assert_eq!(inspect_video(b"\xd1\x01"), Ok(VideoPacket::Other));
        assert!(matches!(
            inspect_video(b"\x91hv"),
            Err(FlvError::TruncatedPacket { .. })
        ));
        assert!(matches!(
            inspect_video(b"\x81av01"),
            Err(FlvError::Reserved { .. })
        ));
        assert_eq!(inspect_audio(b"\x90Opus"), Ok(AudioPacket::SequenceHeader));
        assert_eq!(inspect_audio(b"\x91Opusxx"), Ok(AudioPacket::Frame));
        assert!(matches!(
            inspect_audio(b"\x93Opus"),
            Err(FlvError::Reserved { .. })
        ));
    }

    #[test]
    fn aac_and_empty_packets() {
        assert_eq!(
            inspect_audio(b"\xaf\0\x12\x10"),
            Ok(AudioPacket::SequenceHeader)
        );
        assert_eq!(inspect_audio(b"\xaf\x01\x21"), Ok(AudioPacket::Frame));
        assert!(matches!(
            inspect_audio(b"\xaf"),
            Err(FlvError::TruncatedPacket { .. })
        ));
        assert_eq!(
            inspect_audio(b""),
            Err(FlvError::EmptyPacket(TagKind::Audio))
        );
        assert_eq!(
            inspect_video(b""),
            Err(FlvError::EmptyPacket(TagKind::Video))
        );
        assert!(matches!(
            inspect_video(b"\x07\x01\0\0\0"),
            Err(FlvError::Reserved { .. })
        ));
    }
}
