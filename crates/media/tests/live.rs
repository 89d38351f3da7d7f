//! A chunk transcoded while its bytes arrive: partial segments come out as the encoders make
//! them, aligned across renditions, within the part target, and laid end to end they are the
//! segment.

mod support;

use std::{
    collections::BTreeMap,
    io::Read,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use livecast_media::{EncodedPart, LiveChunkInput, StreamTranscoder};
use support::*;

/// Bytes handed over a few kilobytes at a time by another thread, like a feed from ingest.
struct Trickle {
    pieces: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.current.len() {
            match self.pieces.recv() {
                Ok(piece) => (self.current, self.at) = (piece, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Parts as they came, with how many bytes of the chunk had been sent when each came.
struct LiveRun {
    parts: Vec<(EncodedPart, usize)>,
    renditions: Vec<livecast_media::EncodedRendition>,
    total: usize,
}

fn transcode_live(mut transcoder: StreamTranscoder, bytes: Vec<u8>, pts_ms: i64) -> LiveRun {
    let total = bytes.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(1);
    let duration = Arc::new(OnceLock::new());
    let feeder = {
        let (sent, duration) = (sent.clone(), duration.clone());
        std::thread::spawn(move || {
            for piece in bytes.chunks(8 * 1024) {
                // About 4 MB/s: the chunk takes a while to arrive, as a live one does.
                std::thread::sleep(Duration::from_millis(2));
                tx.send(piece.to_vec()).expect("reader is listening");
                sent.fetch_add(piece.len(), Ordering::SeqCst);
            }
            duration.set(2_000).expect("set once");
        })
    };
    let input = LiveChunkInput {
        reader: Box::new(Trickle {
            pieces: rx,
            current: Vec::new(),
            at: 0,
        }),
        seq: 1,
        pts_ms,
        duration_ms: duration,
    };
    let mut parts = Vec::new();
    let renditions = transcoder
        .transcode_live(input, &mut |part| {
            parts.push((part, sent.load(Ordering::SeqCst)));
            Ok(())
        })
        .expect("live transcode");
    feeder.join().expect("feeder");
    LiveRun {
        parts,
        renditions,
        total,
    }
}

#[test]
fn parts_come_out_while_the_chunk_arrives_and_make_up_the_segment() {
    let fx = fixtures();
    let path = fx.path("chunk1.flv");
    let bytes = std::fs::read(&path).expect("chunk");
    let run = transcode_live(transcoder(), bytes, ingest_pts_ms(&path));
    assert_eq!(
        names(&run.renditions),
        vec!["720p", "480p", "360p", "240p", "audio"]
    );

    let mut by_rendition: BTreeMap<&str, Vec<&(EncodedPart, usize)>> = BTreeMap::new();
    for entry in &run.parts {
        by_rendition.entry(&entry.0.name).or_default().push(entry);
    }
    let target = run.parts[0].0.target_ms;
    assert!((450..=525).contains(&target), "part target {target} ms");
    let video_starts: Vec<i64> = by_rendition["720p"]
        .iter()
        .map(|(p, _)| p.start_ms)
        .collect();
    for rendition in &run.renditions {
        let parts = &by_rendition[rendition.name.as_str()];
        let name = &rendition.name;
        assert_eq!(rendition.parts as usize, parts.len(), "{name}");
        assert!(parts.len() >= 4, "{name}: {} parts in 2 s", parts.len());
        for (index, (part, _)) in parts.iter().enumerate() {
            assert_eq!(part.index as usize, index, "{name}");
            assert!(
                part.duration_ms <= target,
                "{name} part {index}: {} ms",
                part.duration_ms
            );
            // RFC 8216bis: only a segment's last part may be much shorter than the target.
            if index + 1 < parts.len() {
                assert!(part.duration_ms * 100 >= target * 85, "{name} part {index}");
            }
            assert_eq!(part.init_segment, rendition.init_segment, "{name}");
        }
        assert!(
            parts[0].0.independent,
            "{name}: part 0 starts on a keyframe"
        );
        if !rendition.audio_only {
            let starts: Vec<i64> = parts.iter().map(|(p, _)| p.start_ms).collect();
            assert_eq!(starts, video_starts, "{name}: boundaries differ from 720p");
            // A joining player finds an independent part at most about a second back: a
            // keyframe opens every second part, but not the one just before the next segment.
            let independent: Vec<bool> = parts.iter().map(|(p, _)| p.independent).collect();
            assert_eq!(independent, [true, false, true, false, false], "{name}");
        }
        let joined: Vec<u8> = parts.iter().flat_map(|(p, _)| p.media.to_vec()).collect();
        assert_eq!(
            joined, rendition.media_segment,
            "{name}: parts laid end to end"
        );
        assert_plays(&[&rendition.init_segment, &rendition.media_segment]);
        // Each part plays after the init segment on its own, as a player joining there does.
        for (part, _) in parts.iter().filter(|(p, _)| p.independent) {
            assert_plays(&[&rendition.init_segment, &part.media]);
        }
        // Low latency: the first part came when at most half the chunk had been sent.
        assert!(
            parts[0].1 * 2 <= run.total,
            "{name}: first part only after {} of {} bytes",
            parts[0].1,
            run.total
        );
    }
}

#[test]
fn a_chunk_transcoded_live_gives_the_segments_it_gives_from_the_store() {
    let fx = fixtures();
    let (first, path) = (fx.path("chunk0.flv"), fx.path("chunk1.flv"));
    let pts_ms = ingest_pts_ms(&path);
    // Both after the stream's first chunk, as a worker follows every chunk but the first.
    let after_first = || {
        let mut transcoder = transcoder();
        transcoder
            .transcode(&chunk(&first, 0, ingest_pts_ms(&first)))
            .expect("first chunk");
        transcoder
    };
    let stored = after_first()
        .transcode(&chunk(&path, 1, pts_ms))
        .expect("from the store");
    let live = transcode_live(after_first(), std::fs::read(&path).expect("chunk"), pts_ms);
    for (from_store, from_feed) in stored.iter().zip(&live.renditions) {
        assert_eq!(from_store.name, from_feed.name);
        assert_eq!(
            from_store.init_segment, from_feed.init_segment,
            "{}",
            from_store.name
        );
        assert_eq!(
            from_store.media_segment, from_feed.media_segment,
            "{}",
            from_store.name
        );
    }
}

#[test]
fn a_feed_that_breaks_is_an_error_not_a_segment() {
    let fx = fixtures();
    let bytes = std::fs::read(fx.path("chunk1.flv")).expect("chunk");
    /// The chunk's first `sent` bytes, then a broken feed: an error, or an end with no cut.
    struct Broken {
        bytes: Vec<u8>,
        sent: usize,
        at: usize,
        then_error: bool,
    }
    impl Read for Broken {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.at >= self.sent {
                return match self.then_error {
                    true => Err(std::io::Error::other("feed lost")),
                    false => Ok(0),
                };
            }
            let n = buf.len().min(self.sent - self.at);
            buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }
    // Mid-tag, and after the last byte but before the cut (every tag whole), the feed failing
    // or just ending: never a segment.
    for (sent, then_error) in [
        (bytes.len() / 2, true),
        (bytes.len(), true),
        (bytes.len(), false),
    ] {
        let reader = Broken {
            bytes: bytes.clone(),
            sent,
            at: 0,
            then_error,
        };
        let input = LiveChunkInput {
            reader: Box::new(reader),
            seq: 1,
            pts_ms: 2_000,
            duration_ms: Arc::new(OnceLock::new()),
        };
        let mut last_parts = 0;
        let result = transcoder().transcode_live(input, &mut |part| {
            last_parts += usize::from(part.last);
            Ok(())
        });
        assert!(
            result.is_err(),
            "{sent} of {} bytes, no cut, is not a segment",
            bytes.len()
        );
        assert_eq!(last_parts, 0, "no part closes a chunk that was not cut");
    }
}

/// A standby encoder joins a stream at any chunk and continues what the primary began inside
/// a group of pictures: that is sound only if it makes the same bytes. Two transcoders, one
/// that made the stream's first chunk and one that joins at the second where the first says
/// the stream stands, give the same parts.
#[test]
fn a_transcoder_joining_mid_stream_makes_the_same_parts_as_the_one_that_began_it() {
    let fx = fixtures();
    let (first, path) = (fx.path("chunk0.flv"), fx.path("chunk1.flv"));
    let pts_ms = ingest_pts_ms(&path);
    let mut primary = transcoder();
    primary
        .transcode(&chunk(&first, 0, ingest_pts_ms(&first)))
        .expect("first chunk");
    let mut standby = transcoder();
    standby.continue_from(primary.continuity());
    let bytes = std::fs::read(&path).expect("chunk");
    let from_primary = transcode_live(primary, bytes.clone(), pts_ms);
    let from_standby = transcode_live(standby, bytes, pts_ms);
    let key = |run: &LiveRun| -> BTreeMap<(String, u32), Vec<u8>> {
        run.parts
            .iter()
            .map(|(part, _)| ((part.name.clone(), part.index), part.media.to_vec()))
            .collect()
    };
    let (primary_parts, standby_parts) = (key(&from_primary), key(&from_standby));
    assert_eq!(
        primary_parts.keys().collect::<Vec<_>>(),
        standby_parts.keys().collect::<Vec<_>>()
    );
    let differing: Vec<_> = primary_parts
        .iter()
        .filter(|(at, bytes)| *bytes != &standby_parts[*at])
        .map(|(at, _)| at.clone())
        .collect();
    assert!(differing.is_empty(), "{differing:?} differ");
    for (a, b) in from_primary.renditions.iter().zip(&from_standby.renditions) {
        assert_eq!(a.init_segment, b.init_segment, "{}: init segment", a.name);
    }
}
