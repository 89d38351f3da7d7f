//! A stream pushed with ffmpeg is transcoded into the ladder and plays over HLS, live and then
//! as VOD at the same URL.

use std::time::Duration;

use livecast_tests::{
    listed_segments, listed_sequence_numbers, play_to_end, push_test_stream, spawn_platform,
};
use serde_json::Value;

/// One video frame at 30 fps: the tolerance for "aligned".
const FRAME_SECONDS: f64 = 0.034;

async fn status_of(platform: &livecast_tests::Platform, id: &str) -> String {
    let (_, body) = platform.get(&format!("/v1/videos/{id}")).await;
    let json: Value = serde_json::from_str(&body).unwrap();
    json["status"].as_str().unwrap_or_default().to_string()
}

async fn assert_plays_as_vod(platform: &livecast_tests::Platform, id: &str, pushed_seconds: u32) {
    let master_path = format!("/stream/{id}/master.m3u8");
    let master = platform.get(&master_path).await.1;
    let mut video_playlists = Vec::new();
    for rendition in ["360p", "240p", "audio"] {
        let path = format!("/stream/{id}/{rendition}/index.m3u8");
        let playlist = platform
            .wait_for(&path, Duration::from_secs(30), |s, b| {
                s == 200 && b.contains("#EXT-X-ENDLIST")
            })
            .await;
        let seqs = listed_sequence_numbers(&playlist);
        let expected: Vec<u64> = (0..seqs.len() as u64).collect();
        assert_eq!(
            seqs, expected,
            "{rendition}: sequence numbers must be continuous"
        );
        assert!(seqs.len() >= 3, "{rendition}: {playlist}");
        let url = format!("{}{path}", platform.http);
        play_to_end(&url)
            .await
            .unwrap_or_else(|e| panic!("{rendition} does not play: {e}"));
        if rendition != "audio" {
            video_playlists.push(listed_segments(&playlist));
        }
    }
    // Segment boundaries align across renditions, so a player can switch at any of them.
    let (first, second) = (&video_playlists[0], &video_playlists[1]);
    assert_eq!(first.len(), second.len());
    for (a, b) in first.iter().zip(second) {
        assert_eq!(a.seq, b.seq);
        assert!(
            (a.duration - b.duration).abs() <= FRAME_SECONDS,
            "{a:?} vs {b:?}"
        );
        assert_eq!(a.program_date_time, b.program_date_time, "seq {}", a.seq);
    }
    assert!(
        !master.contains("480p") && !master.contains("720p"),
        "never upscale: {master}"
    );
    let duration = play_to_end(&format!("{}{master_path}", platform.http))
        .await
        .expect("the VOD playlist plays to the end");
    let expected = f64::from(pushed_seconds);
    assert!(
        (duration - expected).abs() < 2.5,
        "played {duration} s of a {expected} s broadcast"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_30_second_rtmp_push_plays_live_then_as_vod_with_the_aligned_ladder() {
    const PUSH_SECONDS: u32 = 30;
    let platform = spawn_platform(|_| {}).await;
    let created = platform.create_stream("End to end over RTMP").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    assert_eq!(status_of(&platform, &id).await, "CREATED");

    let url = format!("{}/{key}", platform.rtmp);
    let push =
        tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], PUSH_SECONDS).await });

    let master_path = format!("/stream/{id}/master.m3u8");
    let master = platform
        .wait_for(&master_path, Duration::from_secs(60), |s, b| {
            s == 200 && b.contains("240p/index.m3u8") && b.contains("audio/index.m3u8")
        })
        .await;
    assert!(master.contains("CODECS=\"avc1."), "{master}");
    assert!(master.contains("RESOLUTION=640x360"), "{master}");
    assert_eq!(status_of(&platform, &id).await, "STREAM_ACTIVE");
    let (_, live) = platform.get(&format!("/stream/{id}/360p/index.m3u8")).await;
    assert!(
        !live.contains("#EXT-X-ENDLIST"),
        "a live playlist has no end: {live}"
    );

    assert!(push.await.unwrap(), "ffmpeg could not push");
    platform
        .wait_for(
            &format!("/v1/videos/{id}"),
            Duration::from_secs(30),
            |_, b| b.contains("STREAM_COMPLETE"),
        )
        .await;
    assert_plays_as_vod(&platform, &id, PUSH_SECONDS).await;
    assert!(!platform.stopped());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_hls_push_plays_as_vod_with_the_ladder() {
    const PUSH_SECONDS: u32 = 8;
    let platform = spawn_platform(|_| {}).await;
    let created = platform.create_stream("End to end over HLS push").await;
    let id = created["id"].as_str().unwrap().to_string();
    let push_url = created["hls_push_url"].as_str().unwrap().to_string();
    assert!(push_url.starts_with(&platform.http), "{push_url}");
    let pushed = push_test_stream(
        &push_url,
        &["-f", "hls", "-hls_time", "2", "-method", "PUT"],
        PUSH_SECONDS,
    )
    .await;
    assert!(pushed, "ffmpeg could not push HLS");
    platform
        .wait_for(
            &format!("/v1/videos/{id}"),
            Duration::from_secs(30),
            |_, b| b.contains("STREAM_COMPLETE"),
        )
        .await;
    assert_plays_as_vod(&platform, &id, PUSH_SECONDS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_stream_key_is_refused_and_nothing_is_stored() {
    let platform = spawn_platform(|_| {}).await;
    let created = platform.create_stream("Guarded").await;
    let id = created["id"].as_str().unwrap().to_string();
    let url = format!("{}/lck_not-the-key", platform.rtmp);
    assert!(
        !push_test_stream(&url, &["-f", "flv"], 2).await,
        "a wrong key must be refused"
    );
    let hls = format!("{}/ingest/lck_wrong/index0.ts", platform.http);
    let response = platform
        .client
        .put(&hls)
        .body(vec![0u8; 188])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream key")
    );
    assert_eq!(status_of(&platform, &id).await, "CREATED");
    let (status, _) = platform.get(&format!("/stream/{id}/master.m3u8")).await;
    assert_eq!(status, 404);
    assert!(!platform.stopped());
}
