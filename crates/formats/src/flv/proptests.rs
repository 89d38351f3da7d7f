//! Property tests: whatever a broadcaster sends, the chunker does not panic and every chunk it
//! produces is a valid FLV file whose video starts on a keyframe.

use bytes::Bytes;
use proptest::prelude::*;

use super::chunker::tests::{aac_config, aac_frame, avc_config, avc_frame};
use super::{FlvChunk, FlvChunker, ScriptValue, TagKind, VideoPacket, inspect_video, on_metadata};
use super::{parse_flv, tag::MAX_TAG_BODY};

#[derive(Debug, Clone)]
enum Op {
    Video { step: i32, body: Bytes },
    Audio { step: i32, body: Bytes },
    Metadata,
}

fn step() -> impl Strategy<Value = i32> {
    prop_oneof![
        8 => 0..80i32,
        1 => -200..0i32,
        1 => any::<i32>(),
    ]
}

fn video_body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        1 => Just(avc_config()),
        3 => any::<u8>().prop_map(|fill| avc_frame(true, fill)),
        8 => any::<u8>().prop_map(|fill| avc_frame(false, fill)),
        2 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from),
    ]
}

fn audio_body() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        1 => Just(aac_config()),
        8 => Just(aac_frame()),
        2 => proptest::collection::vec(any::<u8>(), 0..12).prop_map(Bytes::from),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (step(), video_body()).prop_map(|(step, body)| Op::Video { step, body }),
        5 => (step(), audio_body()).prop_map(|(step, body)| Op::Audio { step, body }),
        1 => Just(Op::Metadata),
    ]
}

/// The first video frame of a chunk (configurations aside) is a keyframe.
fn check_chunk(chunk: &FlvChunk) -> Result<(), TestCaseError> {
    let file = parse_flv(&chunk.bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert!(!file.tags.is_empty());
    let first_frame = file
        .tags
        .iter()
        .filter(|tag| tag.kind == TagKind::Video)
        .map(|tag| inspect_video(&tag.body))
        .find(|packet| matches!(packet, Ok(VideoPacket::KeyFrame | VideoPacket::InterFrame)));
    if let Some(packet) = first_frame {
        prop_assert_eq!(packet, Ok(VideoPacket::KeyFrame));
    }
    prop_assert!(file.tags.iter().all(|tag| tag.body.len() <= MAX_TAG_BODY));
    Ok(())
}

proptest! {
    #[test]
    fn chunks_are_valid_flv_starting_on_keyframes(
        start in any::<u32>(),
        target in 1..3_000u32,
        ops in proptest::collection::vec(op(), 0..400),
    ) {
        let mut chunker = FlvChunker::new(target);
        let mut at = start;
        let mut chunks = Vec::new();
        for op in ops {
            let produced = match op {
                Op::Video { step, body } => {
                    at = at.wrapping_add_signed(step);
                    chunker.push_video(at, body)
                }
                Op::Audio { step, body } => {
                    at = at.wrapping_add_signed(step);
                    chunker.push_audio(at, body)
                }
                Op::Metadata => chunker
                    .set_metadata(on_metadata(&[("framerate", ScriptValue::Number(30.0))]))
                    .map(|()| None),
            };
            // Errors are allowed (random bodies); panics and broken chunks are not.
            if let Ok(Some(chunk)) = produced {
                chunks.push(chunk);
            }
        }
        for pair in chunks.windows(2) {
            prop_assert_eq!(pair[0].pts_ms + i64::from(pair[0].duration_ms), pair[1].pts_ms);
            prop_assert!(pair[1].pts_ms > pair[0].pts_ms);
        }
        chunks.extend(chunker.flush());
        for chunk in &chunks {
            check_chunk(chunk)?;
        }
    }
}
