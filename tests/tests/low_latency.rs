//! Low-Latency HLS end to end: an RTMP push is followed by the worker while ingest cuts it,
//! and the edge lists partial segments of the segment being made, in playlists that keep the
//! RFC 8216bis rules; the parts of a segment, end to end, are the segment; a player that asks
//! for the hinted part gets it once it is made; the recording still plays as VOD.

use std::time::Duration;

use livecast_formats::hls_check::{check_blocking_answer, check_media, check_reload, parse_media};
use livecast_tests::{Platform, play_to_end, push_test_stream, spawn_platform};

/// Bytes of `path`, which must answer 200.
async fn fetch(platform: &Platform, path: &str) -> Vec<u8> {
    let response = platform
        .client
        .get(format!("{}{path}", platform.http))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_push_is_served_in_parts_that_keep_the_rules_and_make_up_each_segment() {
    const PUSH_SECONDS: u32 = 20;
    let platform = spawn_platform(|_| {}).await;
    let created = platform.create_stream("Low latency").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let url = format!("{}/{key}", platform.rtmp);
    let push =
        tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], PUSH_SECONDS).await });

    let base = format!("/stream/{id}/360p");
    let playlist_path = format!("{base}/index.m3u8");
    // Parts of the segment still being made are listed after the last whole segment.
    let first = platform
        .wait_for(&playlist_path, Duration::from_secs(60), |status, body| {
            status == 200
                && parse_media(body)
                    .is_ok_and(|p| !p.trailing_parts.is_empty() && p.segments.len() >= 2)
        })
        .await;
    assert_eq!(check_media(&first), vec![], "{first}");
    let parsed = parse_media(&first).unwrap();
    let target = parsed.part_target.expect("PART-TARGET");
    assert!((0.3..=0.6).contains(&target), "PART-TARGET {target}");
    assert!(parsed.trailing_parts[0].independent, "{first}");

    // Reload by blocking for each next part until a segment's parts are all listed with it.
    let mut previous = first;
    let whole = loop {
        let playlist = parse_media(&previous).unwrap();
        let next_msn = playlist.media_sequence + playlist.segments.len() as u64;
        let next_part = playlist.trailing_parts.len() as u64;
        let path = format!("{playlist_path}?_HLS_msn={next_msn}&_HLS_part={next_part}");
        let answer = String::from_utf8(fetch(&platform, &path).await).unwrap();
        assert_eq!(
            check_blocking_answer(&answer, next_msn, Some(next_part)),
            vec![],
            "{answer}"
        );
        assert_eq!(check_media(&answer), vec![], "{answer}");
        assert_eq!(
            check_reload(&previous, &answer),
            vec![],
            "{previous}\n---\n{answer}"
        );
        let parsed = parse_media(&answer).unwrap();
        let done = parsed
            .segments
            .iter()
            .find(|s| s.msn == next_msn && !s.parts.is_empty())
            .cloned();
        previous = answer;
        if let Some(segment) = done {
            break segment;
        }
    };
    let mut joined = Vec::new();
    for part in &whole.parts {
        joined.extend(fetch(&platform, &format!("{base}/{}", part.uri)).await);
    }
    let segment = fetch(&platform, &format!("{base}/{}", whole.uri)).await;
    assert_eq!(joined.len(), segment.len(), "segment {}", whole.msn);
    assert!(
        joined == segment,
        "the parts of segment {} are not the segment",
        whole.msn
    );

    // The hinted part is held until it is made, then answered whole.
    let playlist = parse_media(&previous).unwrap();
    let hint = playlist.preload_hint.expect("a preload hint while live");
    let hinted = fetch(&platform, &format!("{base}/{hint}")).await;
    assert!(&hinted[4..8] == b"moof", "a part is a CMAF fragment");

    assert!(push.await.unwrap(), "ffmpeg could not push");
    let vod = platform
        .wait_for(&playlist_path, Duration::from_secs(30), |s, b| {
            s == 200 && b.contains("#EXT-X-ENDLIST")
        })
        .await;
    assert_eq!(check_media(&vod), vec![], "{vod}");
    assert!(
        !vod.contains("#EXT-X-PART:"),
        "a recording lists whole segments: {vod}"
    );
    let played = play_to_end(&format!("{}/stream/{id}/master.m3u8", platform.http))
        .await
        .expect("the recording plays");
    assert!(
        (played - f64::from(PUSH_SECONDS)).abs() < 2.5,
        "played {played} s"
    );
    // Every chunk after the first was made from its feed, none from the store.
    assert!(
        platform
            .counter("livecast_worker_followed_chunks_total{outcome=\"announced\"}")
            .await
            >= 5.0
    );
    assert_eq!(
        platform
            .counter("livecast_worker_followed_chunks_total{outcome=\"fell_back\"}")
            .await,
        0.0
    );
}
