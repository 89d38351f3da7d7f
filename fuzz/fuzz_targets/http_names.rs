//! Names and text that arrive in HTTP requests: ids in paths, HLS push file names, stream keys
//! and pushed playlists. Each is accepted or refused with an invalid-argument error; an
//! accepted name never walks out of its directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use livecast_core::{ErrorKind, StreamId, ids::validate_id};
use livecast_formats::hls_push::{classify, parse_playlist, plausible_key};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match validate_id("id", text) {
        Ok(()) => assert!(!text.contains('/') && !text.contains("..") && !text.is_empty()),
        Err(error) => assert_eq!(error.kind, ErrorKind::InvalidArgument),
    }
    let _ = StreamId::parse(text);
    if let Err(error) = classify(text) {
        assert_eq!(error.kind, ErrorKind::InvalidArgument);
    }
    if plausible_key(text) {
        assert!(!text.contains('/') && !text.contains('.'));
    }
    if let Ok(playlist) = parse_playlist(text) {
        for (name, _) in playlist.segments {
            assert!(!name.contains('/'), "a segment name is a file name");
        }
    }
});
