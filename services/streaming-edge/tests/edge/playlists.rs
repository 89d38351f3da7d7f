//! Master and media playlists as a player sees them, live and after the lifecycle moves on.

use livecast_core::StreamStatus;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    AUDIO, P360, P720, Seg, World, segment_uris, settings, spawn_edge, tag_value,
};

#[tokio::test]
async fn master_lists_video_renditions_highest_first_and_audio_last() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    for rendition in [&AUDIO, &P360, &P720] {
        world.segment(&id, rendition, Seg::nth(0), None).await;
    }

    let path = format!("/stream/{id}/master.m3u8");
    let master = edge
        .text_until(&path, |body| body.matches("#EXT-X-STREAM-INF").count() == 3)
        .await;
    assert_eq!(
        master,
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
         #EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=2700000,RESOLUTION=1280x720,\
         CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970\n720p/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=720000,RESOLUTION=640x360,\
         CODECS=\"avc1.64001e,mp4a.40.2\",FRAME-RATE=29.970\n360p/index.m3u8\n\
         #EXT-X-STREAM-INF:BANDWIDTH=64000,AVERAGE-BANDWIDTH=57600,CODECS=\"mp4a.40.2\"\n\
         audio/index.m3u8\n"
    );
    let response = edge.get(&path).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=1");
}

#[tokio::test]
async fn the_live_window_slides_with_continuous_sequence_numbers_on_every_instance() {
    let world = World::new().await;
    let edges = [
        spawn_edge(&world, settings(3)).await,
        spawn_edge(&world, settings(3)).await,
    ];
    assert_ne!(
        edges[0].service.consumer_group(),
        edges[1].service.consumer_group()
    );
    let id = world.stream(StreamStatus::StreamActive).await;
    let path = format!("/stream/{id}/720p/index.m3u8");
    for seq in 0..2 {
        world.segment(&id, &P720, Seg::nth(seq), None).await;
    }
    for edge in &edges {
        let playlist = edge
            .text_until(&path, |body| segment_uris(body).len() == 2)
            .await;
        assert_eq!(tag_value(&playlist, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
        assert_eq!(segment_uris(&playlist), ["0.m4s", "1.m4s"]);
    }
    for seq in 2..7 {
        world.segment(&id, &P720, Seg::nth(seq), None).await;
    }
    for edge in &edges {
        let playlist = edge.text_until(&path, |body| body.contains("6.m4s")).await;
        assert!(
            playlist.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n"),
            "{playlist}"
        );
        assert_eq!(tag_value(&playlist, "#EXT-X-TARGETDURATION"), Some("2"));
        assert_eq!(tag_value(&playlist, "#EXT-X-MEDIA-SEQUENCE"), Some("4"));
        assert_eq!(
            tag_value(&playlist, "#EXT-X-DISCONTINUITY-SEQUENCE"),
            Some("0")
        );
        assert!(playlist.contains("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert_eq!(segment_uris(&playlist), ["4.m4s", "5.m4s", "6.m4s"]);
        assert!(playlist.contains(
            "#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:08.000Z\n#EXTINF:2.000,\n4.m4s\n"
        ));
        assert!(!playlist.contains("#EXT-X-ENDLIST"), "{playlist}");
        assert!(!playlist.contains("#EXT-X-PLAYLIST-TYPE"), "{playlist}");
    }
}

#[tokio::test]
async fn discontinuities_are_marked_and_counted_before_the_window() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(3)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    let path = format!("/stream/{id}/360p/index.m3u8");
    for seq in 0..10 {
        let seg = Seg {
            discontinuity: seq == 2 || seq == 7,
            ..Seg::nth(seq)
        };
        world.segment(&id, &P360, seg, None).await;
    }
    let playlist = edge.text_until(&path, |body| body.contains("9.m4s")).await;
    assert_eq!(tag_value(&playlist, "#EXT-X-MEDIA-SEQUENCE"), Some("7"));
    assert_eq!(
        tag_value(&playlist, "#EXT-X-DISCONTINUITY-SEQUENCE"),
        Some("1")
    );
    assert_eq!(playlist.matches("#EXT-X-DISCONTINUITY\n").count(), 1);
    assert!(
        playlist.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:14.000Z\n#EXTINF:2.000,\n7.m4s\n"),
        "{playlist}"
    );

    for seq in 10..12 {
        world.segment(&id, &P360, Seg::nth(seq), None).await;
    }
    let playlist = edge.text_until(&path, |body| body.contains("11.m4s")).await;
    assert_eq!(
        tag_value(&playlist, "#EXT-X-DISCONTINUITY-SEQUENCE"),
        Some("2")
    );
    assert!(!playlist.contains("#EXT-X-DISCONTINUITY\n"), "{playlist}");

    world.set_status(&id, StreamStatus::StreamComplete).await;
    let vod = edge
        .text_until(&path, |body| body.contains("#EXT-X-ENDLIST"))
        .await;
    assert_eq!(tag_value(&vod, "#EXT-X-DISCONTINUITY-SEQUENCE"), Some("0"));
    assert_eq!(vod.matches("#EXT-X-DISCONTINUITY\n").count(), 2);
    assert_eq!(segment_uris(&vod).len(), 12);
}

fn error_of(body: &str) -> (String, String) {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    (
        json["error"]["code"].as_str().unwrap().to_owned(),
        json["error"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_stream_without_segments_is_404_with_a_message() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::Created).await;
    for path in [
        format!("/stream/{id}/master.m3u8"),
        format!("/stream/{id}/720p/index.m3u8"),
    ] {
        let response = edge.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        let (code, message) = error_of(&response.text().await.unwrap());
        assert_eq!(code, "not_found");
        assert_eq!(message, format!("stream {id} has no segments yet"));
    }
}

#[tokio::test]
async fn bad_ids_are_400_and_unknown_streams_and_unlisted_segments_are_404() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    for path in [
        "/stream/a..b/master.m3u8",
        "/stream/a%2Fb/master.m3u8",
        "/stream/a%0Ab/master.m3u8",
        "/stream/ok/..x/index.m3u8",
        "/stream/ok/a%20b/0.m4s",
    ] {
        let (status, body) = edge.text(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let (code, message) = error_of(&body);
        assert_eq!(code, "invalid_argument", "{path}");
        assert!(
            message.starts_with("stream id") || message.starts_with("rendition"),
            "{path}: {message}"
        );
    }
    // `..` as a whole segment, sent as is (HTTP clients would resolve it).
    let mut socket = tokio::net::TcpStream::connect(edge.base.trim_start_matches("http://"))
        .await
        .unwrap();
    socket
        .write_all(
            b"GET /stream/../master.m3u8 HTTP/1.1\r\nHost: edge\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    let unknown = livecast_core::StreamId::generate();
    let (status, body) = edge.text(&format!("/stream/{unknown}/master.m3u8")).await;
    assert_eq!((status, error_of(&body).0.as_str()), (404, "not_found"));

    let id = world.stream(StreamStatus::StreamActive).await;
    world
        .segment(&id, &P720, Seg::nth(0), Some("listed".into()))
        .await;
    edge.text_until(&format!("/stream/{id}/720p/index.m3u8"), |body| {
        body.contains("0.m4s")
    })
    .await;
    // Bytes exist for seq 5, but the index never listed it.
    let unlisted = livecast_core::blob_keys::media_segment(&id, &P720.name(), 5);
    world.blob.put(&unlisted, "unlisted".into()).await.unwrap();
    for file in ["5.m4s", "05.m4s", "00.m4s", "index.txt"] {
        let (status, body) = edge.text(&format!("/stream/{id}/720p/{file}")).await;
        assert_eq!(status, 404, "{file}: {body}");
    }
    let (status, _) = edge.text(&format!("/stream/{id}/1080p/0.m4s")).await;
    assert_eq!(status, 404);
    assert_eq!(edge.service.origin_fetches(), 0);
    let (status, body) = edge.text(&format!("/stream/{id}/720p/0.m4s")).await;
    assert_eq!((status, body.as_str()), (200, "listed"));
    assert_eq!(edge.service.origin_fetches(), 1);
}

#[tokio::test]
async fn an_archived_stream_disappears_and_comes_back_when_restored() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(3)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    world
        .segment(&id, &P720, Seg::nth(0), Some("media".into()))
        .await;
    let master = format!("/stream/{id}/master.m3u8");
    let media = format!("/stream/{id}/720p/index.m3u8");
    edge.text_until(&media, |body| body.contains("0.m4s")).await;
    world.set_status(&id, StreamStatus::StreamComplete).await;
    world.set_status(&id, StreamStatus::Archived).await;
    crate::helpers::eventually("the archived stream to be gone", || async {
        (edge.text(&master).await.0 == 404).then_some(())
    })
    .await;
    for path in [&media, &format!("/stream/{id}/720p/0.m4s")] {
        let (status, body) = edge.text(path).await;
        assert_eq!(
            (status, error_of(&body).0.as_str()),
            (404, "not_found"),
            "{path}"
        );
    }

    world.set_status(&id, StreamStatus::StreamComplete).await;
    let vod = edge
        .text_until(&media, |body| body.contains("#EXT-X-ENDLIST"))
        .await;
    assert_eq!(segment_uris(&vod), ["0.m4s"]);
}
