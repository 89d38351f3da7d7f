//! Broadcasts that degrade keep every rendition playing: a broadcaster that drops is bridged by
//! slate until it is back, a camera that stalls while the sound goes on is covered by the last
//! picture, and the recording plays to the end either way.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use livecast_tests::viewer::watch_live;
use livecast_tests::{
    ListedSegment, Platform, continuous_segments, listed_seconds, listed_segments,
    listed_sequence_numbers, play_to_end, push_test_stream, record_fault_result, spawn_platform,
    test_stream_command,
};
use tokio::process::Command;
use tokio::time::Instant;

/// The ladder of a 640x360 source.
const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];
/// How many of [`RENDITIONS`] carry a picture (they come first).
const VIDEO_RENDITIONS: u64 = 2;
/// A video frame at 30 fps plus an AAC frame at 48 kHz, with room to spare: how far the end of
/// a segment's picture and the end of its sound may differ.
const ONE_FRAME_EACH: f64 = 0.1;

const SOURCE_CHUNKS: &str = "livecast_ingest_chunks_total";
const SLATE_CHUNKS: &str = "livecast_ingest_slate_chunks_total";
const SLATE_SEGMENTS: &str = r#"livecast_worker_segments_total{content="slate"}"#;
const STILL_PICTURE_SEGMENTS: &str = r#"livecast_worker_segments_total{content="still_picture"}"#;

fn playlist_path(id: &str, rendition: &str) -> String {
    format!("/stream/{id}/{rendition}/index.m3u8")
}

/// Creates a stream; returns its id and its RTMP publish URL.
async fn create_stream(platform: &Platform, name: &str) -> (String, String) {
    let created = platform.create_stream(name).await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap();
    (id, format!("{}/{key}", platform.rtmp))
}

/// Waits until every rendition's playlist has become VOD; returns them in [`RENDITIONS`]
/// order.
async fn wait_for_vod(platform: &Platform, id: &str, deadline: Duration) -> Vec<String> {
    let until = Instant::now() + deadline;
    let mut playlists = Vec::new();
    for rendition in RENDITIONS {
        let left = until.saturating_duration_since(Instant::now());
        let playlist = platform
            .wait_for(&playlist_path(id, rendition), left, |s, b| {
                s == 200 && b.contains("#EXT-X-ENDLIST")
            })
            .await;
        playlists.push(playlist);
    }
    playlists
}

/// The segments of `playlist`, checked to be numbered 0, 1, 2... with none missing.
/// Checks that each video segment lasts as long as the audio segment of the same number, so the
/// picture covers the same time as the sound and players switch renditions at any boundary.
fn assert_aligned_with_audio(rendition: &str, video: &[ListedSegment], audio: &[ListedSegment]) {
    let misaligned: Vec<String> = video
        .iter()
        .zip(audio)
        .filter(|(v, a)| (v.duration - a.duration).abs() > ONE_FRAME_EACH)
        .map(|(v, a)| {
            format!(
                "{}.m4s: {} s of picture, {} s of sound",
                v.seq, v.duration, a.duration
            )
        })
        .collect();
    assert!(
        misaligned.is_empty(),
        "{rendition} does not cover the time its audio covers: {misaligned:?}"
    );
}

fn newest_listed(playlist: &str) -> Option<u64> {
    listed_sequence_numbers(playlist).last().copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcaster_away_for_10_seconds_is_bridged_by_slate_then_continues_on_one_timeline() {
    const FIRST_PUSH: Duration = Duration::from_secs(8);
    const AWAY: Duration = Duration::from_secs(10);
    const RETURN_SECONDS: u32 = 6;
    let platform = spawn_platform(|config| config.ingest.reconnect_window_ms = 15_000).await;
    let (id, url) = create_stream(&platform, "Dropped and back").await;
    let live_path = playlist_path(&id, "360p");

    // The broadcaster would go on for a minute, but its process dies after 8 s: no unpublish,
    // the connection is simply gone.
    let started = Instant::now();
    let mut broadcaster = test_stream_command(&url, &["-f", "flv"], 60)
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg starts");
    platform
        .wait_for(&live_path, Duration::from_secs(20), |s, b| {
            s == 200 && newest_listed(b).is_some()
        })
        .await;
    let viewer = tokio::spawn(watch_live(
        format!("{}{live_path}", platform.http),
        Duration::from_secs(90),
    ));
    tokio::time::sleep_until(started + FIRST_PUSH).await;
    broadcaster.start_kill().expect("ffmpeg can be killed");
    let status = broadcaster.wait().await.unwrap();
    assert!(
        !status.success(),
        "ffmpeg was killed, not finished: {status}"
    );
    let dropped_at = Instant::now();

    // While it is away, viewers keep getting new segments and the stream stays live.
    tokio::time::sleep_until(dropped_at + Duration::from_secs(1)).await;
    let before = newest_listed(&platform.get(&live_path).await.1).unwrap();
    tokio::time::sleep_until(dropped_at + AWAY).await;
    let (_, live) = platform.get(&live_path).await;
    assert!(
        !live.contains("#EXT-X-ENDLIST"),
        "a broadcaster away inside the reconnect window does not end the stream: {live}"
    );
    let during_absence = newest_listed(&live).unwrap();
    assert!(
        during_absence >= before + 3,
        "slate keeps the playlist growing while the broadcaster is away: \
         {before} then {during_absence}\n{live}"
    );
    // Slate is not a source chunk: this counts the first push's chunks only.
    let first_push_chunks = platform.counter(SOURCE_CHUNKS).await as u64;

    assert!(
        push_test_stream(&url, &["-f", "flv"], RETURN_SECONDS).await,
        "the broadcaster could not come back with the same key"
    );
    let playlists = wait_for_vod(&platform, &id, Duration::from_secs(40)).await;

    // The recording: the first push, then the slate, then the return, which ends it (the slate
    // that waited after the return's end is not part of it).
    let return_chunks = platform.counter(SOURCE_CHUNKS).await as u64 - first_push_chunks;
    let recorded = listed_segments(&playlists[0]).len() as u64;
    let slate_chunks = recorded - first_push_chunks - return_chunks;
    // About 10 s away at one piece of slate every 500 ms as its time passes, and one up to
    // the clock when the broadcaster is back.
    assert!(
        (15..=25).contains(&slate_chunks),
        "{slate_chunks} slate chunks for 10 s away"
    );
    assert!(
        platform.counter(SLATE_SEGMENTS).await as u64 >= slate_chunks * RENDITIONS.len() as u64,
        "every slate chunk becomes a slate segment in every rendition"
    );
    assert!(platform.counter(SLATE_CHUNKS).await as u64 >= slate_chunks);

    // Back with the same settings: one timeline, no discontinuity.
    let first_of_return = first_push_chunks + slate_chunks;
    let audio = listed_segments(&playlists[2]);
    for (rendition, playlist) in RENDITIONS.iter().zip(&playlists) {
        let segments = continuous_segments(rendition, playlist);
        assert_aligned_with_audio(rendition, &segments, &audio);
        assert!(
            !segments.iter().any(|s| s.discontinuity),
            "{rendition}: the broadcaster came back with the same settings \
             ({first_push_chunks} chunks pushed, then {slate_chunks} of slate):\n{playlist}"
        );
        let returned = listed_seconds(&segments[first_of_return as usize..]);
        assert!(
            (returned - f64::from(RETURN_SECONDS)).abs() <= 1.5,
            "{rendition}: {returned} s listed after the return of a {RETURN_SECONDS} s push"
        );
    }
    let listed = listed_seconds(&listed_segments(&playlists[0]));
    assert!(
        (listed - 24.0).abs() <= 3.0,
        "360p lists {listed} s for 8 s pushed, 10 s away and 6 s pushed"
    );

    let video_url = format!("{}{}", platform.http, playlist_path(&id, "360p"));
    play_to_end(&video_url)
        .await
        .unwrap_or_else(|e| panic!("360p does not play across the gap: {e}"));
    let master_url = format!("{}/stream/{id}/master.m3u8", platform.http);
    let played = play_to_end(&master_url)
        .await
        .unwrap_or_else(|e| panic!("the master playlist does not play across the gap: {e}"));
    assert!(
        (played - listed).abs() <= 3.0,
        "played {played} s of {listed} s listed"
    );
    assert!(!platform.stopped());

    let stalls = viewer.await.unwrap().assert_whole();
    record_fault_result([
        "broadcaster killed, back after 10 s (slate meanwhile, one timeline)",
        "0 / 0",
        "0 s (10 s of slate where the broadcaster was away)",
        &stalls,
    ]);
}

/// Writes a 16 s FLV (640x360 at 30 fps, a continuous tone) whose camera stalls from 5 s to
/// 11 s: those frames are dropped, the others keep their timestamps, and a keyframe comes
/// right when the picture returns.
async fn make_source_with_stalled_video(path: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", "16", "-vf", "select='lt(t,5)+gte(t,11)'"])
        .args(["-fps_mode", "passthrough", "-force_key_frames", "11"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
        .args([
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-f", "flv",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg could not write the source");
}

/// The presentation times, in seconds, of the packets of the `v` or `a` streams of `input` (a
/// file or a playlist URL).
async fn packet_times(input: impl AsRef<std::ffi::OsStr>, streams: &str) -> Vec<f64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", streams])
        .args(["-show_entries", "packet=pts_time", "-of", "csv=p=0"])
        .arg(input)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().trim_end_matches(',').parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_source_whose_video_stops_for_6_seconds_keeps_every_rendition_playing_with_its_audio() {
    const SOURCE_SECONDS: f64 = 16.0;
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("camera-stalls.flv");
    make_source_with_stalled_video(&source).await;
    // The source really stalls (and only its picture does), or this test would prove nothing.
    let video = packet_times(&source, "v").await;
    let audio = packet_times(&source, "a").await;
    assert!(
        video.iter().all(|&t| t <= 5.2 || t >= 10.8),
        "the source has pictures while its camera should be stalled: {video:?}"
    );
    assert!(video.iter().any(|&t| (4.5..5.2).contains(&t)), "{video:?}");
    assert!(
        video.iter().any(|&t| (10.8..11.5).contains(&t)),
        "{video:?}"
    );
    assert!(
        audio.windows(2).all(|w| w[1] - w[0] < 0.1) && audio.last() > Some(&15.5),
        "the source's sound must go on throughout: {audio:?}"
    );

    let platform = spawn_platform(|_| {}).await;
    let (id, url) = create_stream(&platform, "Camera stalls").await;
    let pushed = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(&source)
        .args(["-c", "copy", "-f", "flv"])
        // Sound goes out as it comes, as a camera app sends it; by default the muxer would hold
        // it back for up to 10 s waiting for the picture to interleave with.
        .args(["-max_interleave_delta", "100000"])
        .arg(&url)
        .stdin(Stdio::null())
        .status()
        .await
        .expect("ffmpeg runs");
    assert!(pushed.success(), "ffmpeg could not push the source");
    let playlists = wait_for_vod(&platform, &id, Duration::from_secs(30)).await;

    for (rendition, playlist) in RENDITIONS.iter().zip(&playlists) {
        let listed = listed_seconds(&continuous_segments(rendition, playlist));
        assert!(
            (listed - SOURCE_SECONDS).abs() <= 2.5,
            "{rendition} lists {listed} s of a {SOURCE_SECONDS} s source:\n{playlist}"
        );
        let url = format!("{}{}", platform.http, playlist_path(&id, rendition));
        play_to_end(&url)
            .await
            .unwrap_or_else(|e| panic!("{rendition} does not play to the end: {e}"));
    }

    // Ingest only decides the picture stopped once a chunk target (2 s) of sound has come
    // without it, so the 6 s stall gives two audio-only chunks (three at most), and each is
    // held under the last picture in both video renditions.
    let still = platform.counter(STILL_PICTURE_SEGMENTS).await as u64;
    assert!(
        (2 * VIDEO_RENDITIONS..=3 * VIDEO_RENDITIONS).contains(&still)
            && still.is_multiple_of(VIDEO_RENDITIONS),
        "{still} still-picture segments for a 6 s stall in {VIDEO_RENDITIONS} video renditions"
    );
    // The broadcaster was there all along: the recording has no slate (the slate after its
    // end, waiting for it to start again, is not part of the recording).

    // The picture never stops while the sound goes on: the stall shows the last picture, so
    // each video rendition covers the time of the sound, segment by segment.
    let audio = listed_segments(&playlists[2]);
    for (rendition, playlist) in RENDITIONS
        .iter()
        .zip(&playlists)
        .take(VIDEO_RENDITIONS as usize)
    {
        let url = format!("{}{}", platform.http, playlist_path(&id, rendition));
        let pictures = packet_times(&url, "v").await;
        let holes: Vec<(f64, f64)> = pictures
            .windows(2)
            .filter(|w| w[1] - w[0] > ONE_FRAME_EACH)
            .map(|w| (w[0], w[1]))
            .collect();
        assert!(
            holes.is_empty(),
            "{rendition} has no picture between these times (s) while its sound goes on: \
             {holes:?}\n{playlist}"
        );
        assert_aligned_with_audio(rendition, &listed_segments(playlist), &audio);
    }
    assert!(!platform.stopped());
    record_fault_result([
        "camera stalled 6 s, sound goes on",
        "0 / 0",
        "0 s",
        &format!("none in the recording: {still} still-picture segments, no hole in the picture"),
    ]);
}
