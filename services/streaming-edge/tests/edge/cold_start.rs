//! An edge started after the segments were recorded serves what a warm edge serves.

use std::sync::atomic::Ordering;

use livecast_core::StreamStatus;

use crate::helpers::{AUDIO, P720, Seg, World, segment_uris, settings, spawn_edge, tag_value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_edge_serves_the_recorded_playlists_after_one_load_then_follows_events() {
    let world = World::new().await;
    let warm = spawn_edge(&world, settings(4)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    for seq in 0..8 {
        for rendition in [&P720, &AUDIO] {
            let seg = Seg {
                discontinuity: seq == 5,
                ..Seg::nth(seq)
            };
            world.segment(&id, rendition, seg, None).await;
        }
    }
    let master_path = format!("/stream/{id}/master.m3u8");
    let media_path = format!("/stream/{id}/720p/index.m3u8");
    let warm_media = warm
        .text_until(&media_path, |body| body.contains("7.m4s"))
        .await;
    let warm_master = warm
        .text_until(&master_path, |body| body.contains("audio/index.m3u8"))
        .await;
    assert_eq!(tag_value(&warm_media, "#EXT-X-MEDIA-SEQUENCE"), Some("4"));
    let audio_path = format!("/stream/{id}/audio/index.m3u8");
    let warm_audio = warm
        .text_until(&audio_path, |body| body.contains("7.m4s"))
        .await;

    // The cold edge has seen no event about this stream: only the catalogue knows it.
    let cold = spawn_edge(&world, settings(4)).await;
    let loads_before = world.directory.stream_calls.load(Ordering::SeqCst);
    let requests = (0..20).map(|_| cold.text(&master_path));
    for (status, body) in futures::future::join_all(requests).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, warm_master);
    }
    assert_eq!(
        world.directory.stream_calls.load(Ordering::SeqCst) - loads_before,
        1,
        "concurrent first requests must share one load"
    );
    assert_eq!(cold.text(&media_path).await, (200, warm_media.clone()));
    assert_eq!(cold.text(&audio_path).await, (200, warm_audio));

    // From now on both follow the events.
    world.segment(&id, &P720, Seg::nth(8), None).await;
    for edge in [&warm, &cold] {
        let playlist = edge
            .text_until(&media_path, |body| body.contains("8.m4s"))
            .await;
        assert_eq!(
            segment_uris(&playlist),
            ["5.m4s", "6.m4s", "7.m4s", "8.m4s"]
        );
        assert_eq!(
            tag_value(&playlist, "#EXT-X-DISCONTINUITY-SEQUENCE"),
            Some("0")
        );
    }
    world.set_status(&id, StreamStatus::StreamComplete).await;
    let warm_vod = warm
        .text_until(&media_path, |body| body.contains("#EXT-X-ENDLIST"))
        .await;
    let cold_vod = cold
        .text_until(&media_path, |body| body.contains("#EXT-X-ENDLIST"))
        .await;
    assert_eq!(warm_vod, cold_vod);
    assert_eq!(segment_uris(&cold_vod).len(), 9);
    assert_eq!(
        world.directory.stream_calls.load(Ordering::SeqCst) - loads_before,
        1
    );
}
