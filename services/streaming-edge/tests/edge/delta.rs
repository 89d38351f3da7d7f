//! Playlist delta updates: on a live window longer than the skip boundary the edge offers
//! `CAN-SKIP-UNTIL`, and `_HLS_skip=YES` answers with the older segments replaced by
//! `EXT-X-SKIP`, the rest exactly as in the whole playlist.

use livecast_core::StreamStatus;
use livecast_formats::hls_check::{check_media, parse_media};

use crate::helpers::{P720, Seg, World, settings, spawn_edge, tag_value};

#[tokio::test]
async fn a_delta_update_skips_the_segments_before_the_boundary_and_keeps_the_rest() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(15)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    for seq in 0..20 {
        world.segment(&id, &P720, Seg::nth(seq), None).await;
    }
    let path = format!("/stream/{id}/720p/index.m3u8");
    let whole = edge.text_until(&path, |body| body.contains("19.m4s")).await;
    assert!(whole.contains("CAN-SKIP-UNTIL=12"), "{whole}");

    let (status, delta) = edge.text(&format!("{path}?_HLS_skip=YES")).await;
    assert_eq!(status, 200, "{delta}");
    assert_eq!(check_media(&delta), vec![], "{delta}");
    assert_eq!(tag_value(&delta, "#EXT-X-VERSION"), Some("9"));
    let (whole, delta) = (parse_media(&whole).unwrap(), parse_media(&delta).unwrap());
    assert_eq!(whole.segments.len(), 15);
    // 2 s segments, a 12 s boundary: the newest 6 stay.
    assert_eq!(delta.skipped_segments, 9);
    assert_eq!(delta.media_sequence, whole.media_sequence);
    assert_eq!(delta.segments, whole.segments[9..]);
    assert_eq!(delta.rendition_reports, whole.rendition_reports);

    // The same answer to a blocking reload asking for a delta.
    let blocking = edge
        .text(&format!("{path}?_HLS_msn=19&_HLS_skip=v2"))
        .await
        .1;
    assert_eq!(parse_media(&blocking).unwrap().skipped_segments, 9);
    let (status, body) = edge.text(&format!("{path}?_HLS_skip=NO")).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("_HLS_skip must be YES or v2"), "{body}");
}

#[tokio::test]
async fn a_window_no_longer_than_the_boundary_offers_no_delta() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    for seq in 0..8 {
        world.segment(&id, &P720, Seg::nth(seq), None).await;
    }
    let path = format!("/stream/{id}/720p/index.m3u8");
    let whole = edge.text_until(&path, |body| body.contains("7.m4s")).await;
    assert!(!whole.contains("CAN-SKIP-UNTIL"), "{whole}");
    let (_, asked) = edge.text(&format!("{path}?_HLS_skip=YES")).await;
    assert!(!asked.contains("#EXT-X-SKIP"), "{asked}");
    assert_eq!(parse_media(&asked).unwrap().segments.len(), 6);
}
