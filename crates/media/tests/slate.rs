//! Stand-ins for missing pictures: slate (last picture + silence) and a held picture under live
//! audio. Each continues the stream as if the source had sent it: same renditions, same init
//! segments, on the timeline right after the previous chunk.

mod support;

use livecast_media::{Content, EncodedRendition, MediaError, StreamTranscoder};
use support::*;

/// Checks that `next` continues `previous` in every rendition, with the same init segment,
/// and plays after it.
fn assert_continues(previous: &[EncodedRendition], next: &[EncodedRendition], seconds: f64) {
    assert_eq!(names(previous), names(next));
    for (a, b) in previous.iter().zip(next) {
        let name = &a.name;
        assert_eq!(
            a.init_segment, b.init_segment,
            "{name}: init segment changed"
        );
        let before = streams(&probe(&[&a.init_segment, &a.media_segment]));
        let after = streams(&probe(&[&b.init_segment, &b.media_segment]));
        for (sa, sb) in before.iter().zip(&after) {
            let what = format!("{name} {}", sb.codec_type);
            assert_near(sb.start, sa.end, 0.03, &format!("{what} start"));
            assert_near(
                sb.end - sb.start,
                seconds,
                0.05,
                &format!("{what} duration"),
            );
        }
        if let Some(video) = after.iter().find(|s| s.codec_type == "video") {
            assert!(video.keyframes[0], "{name}: starts on a keyframe");
            assert_eq!(video.keyframes.iter().filter(|k| **k).count(), 1, "{name}");
            assert_eq!(u64::from(b.height), video.height, "{name}");
        }
        assert_plays(&[&a.init_segment, &a.media_segment, &b.media_segment]);
    }
}

/// A transcoder that has done the stream's first chunk, its renditions, and where it ended.
fn after_first_chunk() -> (StreamTranscoder, Vec<EncodedRendition>, i64) {
    let path = fixtures().path("chunk0.flv");
    let mut transcoder = transcoder();
    let first = transcoder
        .transcode(&chunk(&path, 0, ingest_pts_ms(&path)))
        .expect("chunk 0");
    let next = first[0].start_ms + i64::from(first[0].duration_ms);
    (transcoder, first, next)
}

#[test]
fn slate_holds_the_last_picture_with_silence_in_every_rendition() {
    let fx = fixtures();
    let (mut transcoder, first, next) = after_first_chunk();
    // The next chunk is corrupt: the worker slates its time range instead.
    let error = transcoder
        .transcode(&chunk(&fx.path("garbage.flv"), 1, next))
        .expect_err("garbage");
    assert!(error.is_bad_input());
    let slate = transcoder.slate(next, 2_000).expect("slate");

    assert!(slate.iter().all(|r| r.content == Content::Slate));
    assert_continues(&first, &slate, 2.0);
    let then = transcoder
        .transcode(&chunk(&fx.path("chunk1.flv"), 2, next + 2_000))
        .expect("the stream goes on after slate");
    assert_eq!(names(&then), names(&first));
}

#[test]
fn audio_without_a_picture_plays_under_the_last_picture() {
    let fx = fixtures();
    let (mut transcoder, first, next) = after_first_chunk();
    let audio_only = transcoder
        .transcode(&chunk(&fx.path("audio_only.flv"), 1, next))
        .expect("video stalled");

    assert_continues(&first, &audio_only, 2.0);
    for rendition in &audio_only {
        let expected = match rendition.audio_only {
            true => Content::Source,
            false => Content::StillPicture,
        };
        assert_eq!(rendition.content, expected, "{}", rendition.name);
    }
}

#[test]
fn a_stream_without_a_picture_or_sound_yet_has_nothing_to_slate() {
    let slate = transcoder().slate(0, 2_000).expect("slate");
    assert!(slate.is_empty());
    let error = transcoder()
        .slate(-5, 2_000)
        .expect_err("before the timeline");
    assert!(matches!(error, MediaError::Config(_)), "{error:?}");
}

#[test]
fn a_picture_that_stops_inside_a_chunk_is_held_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    // The camera stalls after 1 s; the sound goes on to 2 s.
    ffmpeg(
        dir.path(),
        "-f lavfi -t 2 -i testsrc2=size=640x360:rate=30 -f lavfi -t 2 \
         -i sine=f=440:sample_rate=48000 -vf select=lt(t\\,1) -fps_mode passthrough \
         -c:v libx264 -preset ultrafast -g 60 -pix_fmt yuv420p -c:a aac -f flv stalled.flv",
    );
    let path = dir.path().join("stalled.flv");
    let renditions = transcoder()
        .transcode(&chunk(&path, 0, ingest_pts_ms(&path)))
        .expect("transcode");
    for rendition in &renditions {
        let probed = streams(&probe(&[&rendition.init_segment, &rendition.media_segment]));
        for stream in &probed {
            let what = format!("{} {}", rendition.name, stream.codec_type);
            assert_near(stream.end - stream.start, 2.0, 0.05, &what);
        }
        assert_near(
            f64::from(rendition.duration_ms),
            2_000.0,
            50.0,
            &rendition.name,
        );
        assert_plays(&[&rendition.init_segment, &rendition.media_segment]);
    }
}
