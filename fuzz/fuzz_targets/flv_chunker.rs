//! RTMP media messages as the session hands them over, straight into the chunker: any sequence
//! of audio, video and metadata bodies with any timestamps. The chunker refuses or cuts, never
//! panics, and every chunk it cuts is valid FLV starting with its codec headers.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use livecast_formats::flv::{FlvChunker, TagKind, parse_flv};

/// Splits the input into messages: a kind byte, a 4-byte timestamp, a 2-byte length, the body.
fn messages(mut data: &[u8]) -> impl Iterator<Item = (u8, u32, &[u8])> {
    std::iter::from_fn(move || {
        let (head, rest) = data.split_at_checked(7)?;
        let len = usize::from(u16::from_be_bytes([head[5], head[6]])).min(rest.len());
        let (body, rest) = rest.split_at(len);
        data = rest;
        let timestamp = u32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        Some((head[0], timestamp, body))
    })
}

fuzz_target!(|data: &[u8]| {
    let mut chunker = FlvChunker::new(300);
    let mut chunks = Vec::new();
    for (kind, timestamp, body) in messages(data) {
        let body = Bytes::copy_from_slice(body);
        let cut = match kind % 3 {
            0 => chunker.push_video(timestamp, body),
            1 => chunker.push_audio(timestamp, body),
            _ => chunker.set_metadata(body).map(|()| None),
        };
        if let Ok(Some(chunk)) = cut {
            chunks.push(chunk);
        }
    }
    chunks.extend(chunker.flush());
    for chunk in chunks {
        let file = parse_flv(&chunk.bytes).expect("a chunk the chunker cut is valid FLV");
        assert!(
            file.tags.iter().any(|tag| tag.kind != TagKind::Script),
            "a chunk carries media"
        );
    }
});
