//! A whole FLV file (as HLS push or a stored chunk could hold): parsing never panics, and every
//! tag of a file that parses goes through the chunker, whose chunks parse again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livecast_formats::flv::{FlvChunker, TagKind, parse_flv};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = parse_flv(data) else {
        return;
    };
    let mut chunker = FlvChunker::new(500);
    let mut chunks = Vec::new();
    for tag in file.tags {
        let body = tag.body;
        let cut = match tag.kind {
            TagKind::Video => chunker.push_video(tag.timestamp, body),
            TagKind::Audio => chunker.push_audio(tag.timestamp, body),
            TagKind::Script => chunker.set_metadata(body).map(|()| None),
        };
        match cut {
            Ok(Some(chunk)) => chunks.push(chunk),
            Ok(None) => {}
            Err(_) => return,
        }
    }
    chunks.extend(chunker.flush());
    for chunk in chunks {
        parse_flv(&chunk.bytes).expect("a chunk the chunker cut is valid FLV");
    }
});
