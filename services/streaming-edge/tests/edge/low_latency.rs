//! Low-Latency HLS at the edge: partial segments announced by the encoder are listed with
//! `EXT-X-PART`, the next one is hinted (`EXT-X-PRELOAD-HINT`) and held open until durable, and
//! a thousand players blocked on the next part (`_HLS_msn` + `_HLS_part`) plus a thousand
//! holding its hinted URL are answered by one in-memory wake-up and one blob read.

use std::time::Instant;

use bytes::Bytes;
use livecast_core::StreamStatus;

use crate::helpers::{P360, P720, Seg, TestEdge, World, eventually, settings, spawn_edge};

const PLAYERS: usize = 1_000;

fn part_body(seq: u64, index: u32) -> Bytes {
    (0..60_000u32)
        .map(|i| (i as u64 * 13 + seq * 7 + u64::from(index)) as u8)
        .collect()
}

async fn blocked(edge: &TestEdge) -> Option<f64> {
    let metrics = edge.text("/metrics").await.1;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("livecast_edge_blocked_reloads "))
        .and_then(|value| value.parse().ok())
}

/// A live stream: segments 0-2 whole (2 made of 4 parts), 2 parts of segment 3 so far.
async fn live_with_parts(world: &World) -> livecast_core::StreamId {
    let id = world.stream(StreamStatus::StreamActive).await;
    for seq in 0..3 {
        for rendition in [&P720, &P360] {
            if seq == 2 {
                for index in 0..4 {
                    world
                        .part(&id, rendition, seq, index, part_body(seq, index))
                        .await;
                }
            }
            let part_count = if seq == 2 { 4 } else { 0 };
            world
                .segment_after_parts(&id, rendition, Seg::nth(seq), None, part_count)
                .await;
        }
    }
    for index in 0..2 {
        for rendition in [&P720, &P360] {
            world
                .part(&id, rendition, 3, index, part_body(3, index))
                .await;
        }
    }
    id
}

#[tokio::test]
async fn a_live_playlist_lists_recent_parts_hints_the_next_and_reports_the_other_renditions() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = live_with_parts(&world).await;
    let path = format!("/stream/{id}/720p/index.m3u8");
    let playlist = edge.text_until(&path, |p| p.contains("3.1.m4s")).await;
    for line in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n",
        "#EXT-X-PART-INF:PART-TARGET=0.500\n",
        "#EXT-X-PART:DURATION=0.500,URI=\"2.0.m4s\",INDEPENDENT=YES\n",
        "#EXT-X-PART:DURATION=0.500,URI=\"2.3.m4s\"\n#EXTINF:2.000,\n2.m4s\n",
        "#EXT-X-PART:DURATION=0.500,URI=\"3.1.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"3.2.m4s\"\n",
        "#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=3,LAST-PART=1\n",
    ] {
        assert!(playlist.contains(line), "{line} in\n{playlist}");
    }
    let violations = livecast_formats::hls_check::check_media(&playlist);
    assert!(violations.is_empty(), "{violations:?}\n{playlist}");

    // Listed parts are served; a part that is neither listed nor next is not.
    let response = edge.get(&format!("/stream/{id}/720p/3.1.m4s")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), part_body(3, 1));
    let (status, body) = edge.text(&format!("/stream/{id}/720p/3.3.m4s")).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("neither listed nor next"), "{body}");

    // Part 3, the segment's last: the hint moves to segment 4 before segment 3 is whole, and
    // a blocking reload for the part after the last is one for segment 4's first.
    world.part(&id, &P720, 3, 2, part_body(3, 2)).await;
    world
        .part_of(&id, &P720, (3, 3), part_body(3, 3), true)
        .await;
    let playlist = edge.text_until(&path, |p| p.contains("3.3.m4s")).await;
    assert!(
        playlist.contains("URI=\"3.3.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.0.m4s\"\n"),
        "{playlist}"
    );
    assert_eq!(livecast_formats::hls_check::check_media(&playlist), vec![]);
    let (status, body) = edge.text(&format!("/stream/{id}/720p/3.4.m4s")).await;
    assert_eq!(status, 404, "no part after the last: {body}");
    let (client, url) = (
        edge.client.clone(),
        edge.url(&format!("{path}?_HLS_msn=3&_HLS_part=4")),
    );
    let blocked = tokio::spawn(async move { client.get(url).send().await.unwrap().text().await });

    // Segment 3 comes whole: its parts stay listed before it; the reload is still held.
    world
        .segment_after_parts(&id, &P720, Seg::nth(3), None, 4)
        .await;
    let playlist = edge.text_until(&path, |p| p.contains("\n3.m4s\n")).await;
    assert!(
        playlist.contains("#EXT-X-PART:DURATION=0.500,URI=\"3.3.m4s\"\n#EXTINF:2.000,\n3.m4s\n"),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.0.m4s\"\n"),
        "{playlist}"
    );
    let violations = livecast_formats::hls_check::check_media(&playlist);
    assert!(violations.is_empty(), "{violations:?}\n{playlist}");
    assert!(!blocked.is_finished(), "held until segment 4's first part");
    world.part(&id, &P720, 4, 0, part_body(4, 0)).await;
    let answer = blocked.await.unwrap().unwrap();
    assert!(
        answer.contains("URI=\"4.0.m4s\""),
        "answered with part 4.0: {answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_players_blocked_on_the_next_part_are_answered_by_one_wake_up_and_one_blob_read()
{
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = live_with_parts(&world).await;
    let path = format!("/stream/{id}/720p/index.m3u8");
    edge.text_until(&path, |p| p.contains("3.1.m4s")).await;

    let reload = edge.url(&format!("{path}?_HLS_msn=3&_HLS_part=2"));
    let hinted = edge.url(&format!("/stream/{id}/720p/3.2.m4s"));
    let reloads: Vec<_> = (0..PLAYERS)
        .map(|_| {
            let (client, url) = (edge.client.clone(), reload.clone());
            tokio::spawn(async move {
                let response = client.get(&url).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.text().await.unwrap(), Instant::now())
            })
        })
        .collect();
    let preloads: Vec<_> = (0..PLAYERS)
        .map(|_| {
            let (client, url) = (edge.client.clone(), hinted.clone());
            tokio::spawn(async move {
                let response = client.get(&url).send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.bytes().await.unwrap(), Instant::now())
            })
        })
        .collect();
    eventually("every player waiting for part 3.2", || async {
        (blocked(&edge).await == Some(2.0 * PLAYERS as f64)).then_some(())
    })
    .await;
    let fetches_before = edge.service.origin_fetches();

    world.part(&id, &P720, 3, 2, part_body(3, 2)).await;
    let durable = Instant::now();
    let mut last = durable;
    let mut first_playlist = None;
    for reload in reloads {
        let (status, text, at) = reload.await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert!(text.contains("URI=\"3.2.m4s\""), "{text}");
        assert_eq!(first_playlist.get_or_insert_with(|| text.clone()), &text);
        last = last.max(at);
    }
    for preload in preloads {
        let (status, body, at) = preload.await.unwrap();
        assert_eq!(status, 200);
        assert!(body == part_body(3, 2), "a player got other bytes");
        last = last.max(at);
    }
    println!(
        "{} waiting players answered within {:?} of the part being announced",
        2 * PLAYERS,
        last - durable
    );
    assert_eq!(
        edge.service.origin_fetches(),
        fetches_before + 1,
        "one blob read for every player"
    );
    assert_eq!(blocked(&edge).await, Some(0.0));
}
