//! Bytes on the RTMP port, driven the way ingest drives them: the server handshake, then the
//! server session accepting any connect and publish, its media going into the chunker.
//!
//! The first input byte picks the phase under test: odd feeds everything to the handshake as
//! a client would send it; even completes a genuine handshake first, so the rest of the input
//! reaches the session's chunk and message parsing. rml_rtmp 0.8 can panic inside
//! `handle_input` on crafted messages; ingest contains that panic to the one connection
//! (`catch_unwind`), and so does this target, so only panics in Livecast's own code count.
#![no_main]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use livecast_formats::flv::{FlvChunker, parse_flv};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};

fuzz_target!(|data: &[u8]| {
    static QUIET: Once = Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 1 {
        let mut server = Handshake::new(PeerType::Server);
        for piece in rest.chunks(usize::from(mode).max(1)) {
            match server.process_bytes(piece) {
                Ok(HandshakeProcessResult::InProgress { .. }) => {}
                Ok(HandshakeProcessResult::Completed { .. }) | Err(_) => return,
            }
        }
    } else if let Some(leftover) = genuine_handshake() {
        session(&[leftover.as_slice(), rest].concat());
    }
});

/// Runs a client and a server handshake against each other; the server's leftover bytes.
fn genuine_handshake() -> Option<Vec<u8>> {
    let mut client = Handshake::new(PeerType::Client);
    let mut server = Handshake::new(PeerType::Server);
    let mut to_server = client.generate_outbound_p0_and_p1().ok()?;
    loop {
        let to_client = match server.process_bytes(&to_server).ok()? {
            HandshakeProcessResult::InProgress { response_bytes } => response_bytes,
            HandshakeProcessResult::Completed {
                remaining_bytes, ..
            } => {
                return Some(remaining_bytes);
            }
        };
        to_server = match client.process_bytes(&to_client).ok()? {
            HandshakeProcessResult::InProgress { response_bytes } => response_bytes,
            HandshakeProcessResult::Completed { response_bytes, .. } => response_bytes,
        };
    }
}

fn session(bytes: &[u8]) {
    let Ok((mut session, _greeting)) = ServerSession::new(ServerSessionConfig::new()) else {
        return;
    };
    let mut chunker = FlvChunker::new(300);
    let mut pending = vec![bytes.to_vec()];
    while let Some(input) = pending.pop() {
        let Ok(Ok(results)) = catch_unwind(AssertUnwindSafe(|| session.handle_input(&input)))
        else {
            return;
        };
        for result in results {
            let ServerSessionResult::RaisedEvent(event) = result else {
                continue;
            };
            let cut = match event {
                ServerSessionEvent::ConnectionRequested { request_id, .. }
                | ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                    let Ok(Ok(answers)) =
                        catch_unwind(AssertUnwindSafe(|| session.accept_request(request_id)))
                    else {
                        return;
                    };
                    drop(answers);
                    Ok(None)
                }
                ServerSessionEvent::VideoDataReceived {
                    data, timestamp, ..
                } => chunker.push_video(timestamp.value, data),
                ServerSessionEvent::AudioDataReceived {
                    data, timestamp, ..
                } => chunker.push_audio(timestamp.value, data),
                _ => Ok(None),
            };
            match cut {
                Ok(Some(chunk)) => {
                    parse_flv(&chunk.bytes).expect("a chunk the chunker cut is valid FLV");
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}
