use bytes::Bytes;

use super::*;
use crate::flv::tag::{FlvTag, parse_flv};

pub(crate) fn avc_config() -> Bytes {
    Bytes::from_static(b"\x17\x00\x00\x00\x00\x01\x64\x00\x1f")
}

pub(crate) fn avc_frame(key: bool, fill: u8) -> Bytes {
    let first = if key { 0x17 } else { 0x27 };
    Bytes::from(vec![first, 0x01, 0, 0, 0, fill, fill])
}

pub(crate) fn aac_config() -> Bytes {
    Bytes::from_static(b"\xaf\x00\x11\x90")
}

pub(crate) fn aac_frame() -> Bytes {
    Bytes::from_static(b"\xaf\x01\x21\x00")
}

/// A 30 fps video with a keyframe every second and 48 kHz AAC, interleaved by time, for
/// `seconds`, starting at `start`.
fn av_stream(chunker: &mut FlvChunker, start: u32, seconds: u32) -> Vec<FlvChunk> {
    let mut chunks = Vec::new();
    chunker
        .set_metadata(crate::flv::on_metadata(&[(
            "width",
            crate::flv::ScriptValue::Number(640.0),
        )]))
        .unwrap();
    assert!(chunker.push_video(start, avc_config()).unwrap().is_none());
    assert!(chunker.push_audio(start, aac_config()).unwrap().is_none());
    let frames = seconds * 30;
    let mut audio = 0u32;
    for frame in 0..frames {
        let at = frame * 1000 / 30;
        let body = avc_frame(frame % 30 == 0, frame as u8);
        chunks.extend(chunker.push_video(start.wrapping_add(at), body).unwrap());
        while audio * 1024 * 1000 / 48_000 <= at {
            let audio_at = start.wrapping_add(audio * 1024 * 1000 / 48_000);
            chunks.extend(chunker.push_audio(audio_at, aac_frame()).unwrap());
            audio += 1;
        }
    }
    chunks.extend(chunker.flush());
    chunks
}

fn tags(chunk: &FlvChunk) -> Vec<FlvTag> {
    parse_flv(&chunk.bytes).expect("chunk parses as FLV").tags
}

#[test]
fn cuts_at_the_first_keyframe_after_the_target() {
    let mut chunker = FlvChunker::new(2_000);
    let chunks = av_stream(&mut chunker, 0, 7);
    let starts: Vec<_> = chunks.iter().map(|c| c.pts_ms).collect();
    assert_eq!(starts, [0, 2_000, 4_000, 6_000]);
    for pair in chunks.windows(2) {
        assert_eq!(
            pair[0].pts_ms + i64::from(pair[0].duration_ms),
            pair[1].pts_ms
        );
    }
    // The last chunk ends one frame after its last tag (video 6966 + 33).
    let last = chunks.last().unwrap();
    assert!((990..=1_010).contains(&last.duration_ms), "{last:?}");
    assert_eq!(chunker.dropped_tags(), 0);
}

#[test]
fn every_chunk_is_self_contained() {
    let mut chunker = FlvChunker::new(2_000);
    for chunk in av_stream(&mut chunker, 500, 5) {
        let file = parse_flv(&chunk.bytes).unwrap();
        assert!(file.has_audio && file.has_video);
        let kinds: Vec<_> = file.tags.iter().take(4).map(|t| t.kind).collect();
        assert_eq!(
            kinds,
            [
                TagKind::Script,
                TagKind::Video,
                TagKind::Audio,
                TagKind::Video
            ]
        );
        assert_eq!(file.tags[1].body, avc_config());
        assert_eq!(file.tags[2].body, aac_config());
        assert_eq!(file.tags[3].body[0], 0x17, "first frame is a keyframe");
        // Metadata at 0 (as demuxers expect it), configurations at the chunk's start.
        assert_eq!(file.tags[0].timestamp, 0);
        assert!(
            file.tags[1..4]
                .iter()
                .all(|t| i64::from(t.timestamp) == chunk.pts_ms)
        );
    }
}

#[test]
fn audio_alone_cuts_by_duration() {
    let mut chunker = FlvChunker::new(2_000);
    chunker.push_audio(0, aac_config()).unwrap();
    let mut chunks = Vec::new();
    for frame in 0..300u32 {
        chunks.extend(chunker.push_audio(frame * 20, aac_frame()).unwrap());
    }
    chunks.extend(chunker.flush());
    let starts: Vec<_> = chunks.iter().map(|c| c.pts_ms).collect();
    assert_eq!(starts, [0, 2_000, 4_000]);
    assert_eq!(chunks[2].duration_ms, 2_000);
    let file = parse_flv(&chunks[1].bytes).unwrap();
    assert!(file.has_audio && !file.has_video);
    assert_eq!(file.tags[0].body, aac_config());
}

#[test]
fn media_before_the_first_keyframe_is_dropped() {
    let mut chunker = FlvChunker::new(2_000);
    chunker.push_video(0, avc_config()).unwrap();
    chunker.push_video(0, avc_frame(false, 1)).unwrap();
    chunker.push_audio(10, aac_frame()).unwrap();
    chunker.push_video(33, avc_frame(true, 2)).unwrap();
    chunker.push_video(66, avc_frame(false, 3)).unwrap();
    let chunk = chunker.flush().unwrap();
    assert_eq!(chunker.dropped_tags(), 2);
    assert_eq!(chunk.pts_ms, 33);
    assert_eq!(chunk.duration_ms, 66);
    let bodies: Vec<_> = tags(&chunk).into_iter().map(|t| t.body).collect();
    assert_eq!(
        bodies,
        [avc_config(), avc_frame(true, 2), avc_frame(false, 3)]
    );
}

#[test]
fn a_new_configuration_is_written_in_place_and_repeated_after() {
    let mut chunker = FlvChunker::new(1_000);
    let other_config = Bytes::from_static(b"\x17\x00\x00\x00\x00\x01\x4d\x00\x1e");
    chunker.push_video(0, avc_config()).unwrap();
    chunker.push_video(0, avc_frame(true, 1)).unwrap();
    chunker.push_video(500, other_config.clone()).unwrap();
    chunker.push_video(500, avc_frame(true, 2)).unwrap();
    let first = chunker
        .push_video(1_000, avc_frame(true, 3))
        .unwrap()
        .unwrap();
    let second = chunker.flush().unwrap();
    let bodies: Vec<_> = tags(&first).into_iter().map(|t| t.body).collect();
    assert_eq!(
        bodies,
        [
            avc_config(),
            avc_frame(true, 1),
            other_config.clone(),
            avc_frame(true, 2)
        ]
    );
    assert_eq!(tags(&second)[0].body, other_config);
}

#[test]
fn audio_keeps_cutting_when_video_stalls() {
    let mut chunker = FlvChunker::new(2_000);
    chunker.push_video(0, avc_config()).unwrap();
    chunker.push_video(0, avc_frame(true, 1)).unwrap();
    let mut chunks = Vec::new();
    for frame in 0..500u32 {
        chunks.extend(chunker.push_audio(frame * 20, aac_frame()).unwrap());
    }
    // Video stopped at 0: audio cuts from 2 s on, then resumed video waits for a keyframe.
    assert_eq!(chunks.len(), 4);
    assert!(
        chunker
            .push_video(10_000, avc_frame(false, 2))
            .unwrap()
            .is_none()
    );
    assert_eq!(chunker.dropped_tags(), 1);
    let resumed = chunker.push_video(10_033, avc_frame(true, 3)).unwrap();
    assert_eq!(resumed.map(|c| c.pts_ms), Some(8_000));
    let last = chunker.flush().unwrap();
    assert_eq!(last.pts_ms, 10_033);
    assert_eq!(tags(&last)[1].body, avc_frame(true, 3));
}

#[test]
fn timestamps_survive_the_32_bit_wrap() {
    let start = u32::MAX - 2_999;
    let mut chunker = FlvChunker::new(2_000);
    let chunks = av_stream(&mut chunker, start, 5);
    let starts: Vec<_> = chunks.iter().map(|c| c.pts_ms - i64::from(start)).collect();
    assert_eq!(starts, [0, 2_000, 4_000]);
    // FLV carries the broadcaster's own 32-bit timestamps.
    let after_wrap = tags(&chunks[2]);
    assert_eq!(after_wrap[1].timestamp, start.wrapping_add(4_000));
}

#[test]
fn unframeable_packets_are_errors_and_the_stream_goes_on() {
    let mut chunker = FlvChunker::new(2_000);
    assert!(chunker.push_video(0, Bytes::new()).is_err());
    assert!(chunker.push_audio(0, Bytes::from_static(b"\xaf")).is_err());
    assert!(
        chunker
            .push_video(0, Bytes::from_static(b"\x17\x01"))
            .is_err()
    );
    chunker.push_video(0, avc_frame(true, 1)).unwrap();
    let chunk = chunker.flush().unwrap();
    assert_eq!(tags(&chunk).len(), 1);
    assert!(chunker.flush().is_none());
}

#[test]
fn any_codec_passes_through() {
    let mut chunker = FlvChunker::new(2_000);
    // VP6 video and Speex audio: not decoded here, just framed.
    chunker
        .push_video(0, Bytes::from_static(b"\x14\x00vp6"))
        .unwrap();
    chunker
        .push_audio(0, Bytes::from_static(b"\xb2spx"))
        .unwrap();
    chunker
        .push_video(40, Bytes::from_static(b"\x24\x00vp6"))
        .unwrap();
    let chunk = chunker.flush().unwrap();
    assert_eq!(tags(&chunk).len(), 3);
}

#[test]
fn a_chunk_without_keyframes_is_cut_at_the_size_limit() {
    let mut chunker = FlvChunker::new(2_000);
    chunker.push_video(0, avc_frame(true, 1)).unwrap();
    let mut big = vec![0x27, 0x01, 0, 0, 0];
    big.resize(MAX_TAG_BODY, 7);
    let big = Bytes::from(big);
    let mut cut = None;
    for frame in 1..6u32 {
        if let Some(chunk) = chunker.push_video(frame * 33, big.clone()).unwrap() {
            cut = Some((frame, chunk));
            break;
        }
    }
    let (frame, chunk) = cut.expect("the size limit cuts");
    assert!(chunk.bytes.len() <= MAX_CHUNK_BYTES);
    // It ends with its content; the interframe that did not fit waits for a keyframe.
    assert_eq!(chunk.duration_ms, (frame - 1) * 33 + 33);
    assert_eq!(chunker.dropped_tags(), 1);
    assert!(chunker.flush().is_none());
}

#[test]
fn changing_configurations_cannot_grow_a_chunk_past_the_limit() {
    let mut chunker = FlvChunker::new(2_000);
    chunker.push_video(0, avc_frame(true, 1)).unwrap();
    let mut cut = None;
    for round in 0..8u8 {
        let mut config = vec![0x17, 0x00, 0, 0, 0];
        config.resize(MAX_TAG_BODY, round);
        if let Some(chunk) = chunker.push_video(40, Bytes::from(config)).unwrap() {
            cut = Some(chunk);
            break;
        }
    }
    let chunk = cut.expect("the size limit cuts");
    assert!(chunk.bytes.len() <= MAX_CHUNK_BYTES);
    parse_flv(&chunk.bytes).unwrap();
}

#[test]
fn publishes_with_the_same_configurations_share_a_fingerprint() {
    let mut first = FlvChunker::new(1_000);
    assert_eq!(first.codec_fingerprint(), None);
    av_stream(&mut first, 0, 2);
    let mut again = FlvChunker::new(1_000);
    av_stream(&mut again, 90_000, 1);
    assert_eq!(first.codec_fingerprint(), again.codec_fingerprint());

    let mut other = FlvChunker::new(1_000);
    other
        .push_video(
            0,
            Bytes::from_static(b"\x17\x00\x00\x00\x00\x01\x4d\x00\x1e"),
        )
        .unwrap();
    other.push_audio(0, aac_config()).unwrap();
    assert_ne!(first.codec_fingerprint(), other.codec_fingerprint());
    let mut audio_only = FlvChunker::new(1_000);
    audio_only.push_audio(0, aac_config()).unwrap();
    assert_ne!(audio_only.codec_fingerprint(), first.codec_fingerprint());
}
