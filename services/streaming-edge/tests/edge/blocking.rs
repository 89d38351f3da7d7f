//! Blocking playlist reload (RFC 8216bis 6.2.5.2): `index.m3u8?_HLS_msn=N` is answered when
//! segment N is listed. A thousand viewers waiting for the next segment wake on one in-memory
//! change, get the same playlist, and fetching the segment then costs one blob read.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_core::StreamStatus;

use crate::helpers::{P360, P720, Seg, TestEdge, World, eventually, settings, spawn_edge};

const VIEWERS: usize = 1_000;

fn body(seq: u64) -> Bytes {
    (0..200_000u32)
        .map(|i| (i as u64 * 7 + seq) as u8)
        .collect()
}

async fn blocked_reloads(edge: &TestEdge) -> Option<f64> {
    let metrics = edge.text("/metrics").await.1;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("livecast_edge_blocked_reloads "))
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_blocked_reloads_wake_on_the_next_segment_and_fetch_it_with_one_blob_read() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    for seq in 0..3 {
        for rendition in [&P720, &P360] {
            world
                .segment(&id, rendition, Seg::nth(seq), Some(body(seq)))
                .await;
        }
    }
    let path = format!("/stream/{id}/720p/index.m3u8");
    let playlist = edge.text_until(&path, |p| p.contains("2.m4s")).await;
    assert!(
        playlist.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n"),
        "{playlist}"
    );
    assert!(
        playlist.contains("#EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=2\n"),
        "{playlist}"
    );

    let answered = Arc::new(AtomicUsize::new(0));
    let url = edge.url(&format!("{path}?_HLS_msn=3"));
    let viewers: Vec<_> = (0..VIEWERS)
        .map(|_| {
            let (client, url, answered) = (edge.client.clone(), url.clone(), answered.clone());
            tokio::spawn(async move {
                let response = client.get(&url).send().await.unwrap();
                let status = response.status().as_u16();
                let cache_control = response.headers()["cache-control"].clone();
                let text = response.text().await.unwrap();
                answered.fetch_add(1, Ordering::SeqCst);
                (status, cache_control, text, Instant::now())
            })
        })
        .collect();
    eventually("every viewer blocked on segment 3", || async {
        (blocked_reloads(&edge).await == Some(VIEWERS as f64)).then_some(())
    })
    .await;
    assert_eq!(
        answered.load(Ordering::SeqCst),
        0,
        "nobody is answered early"
    );

    world.segment(&id, &P720, Seg::nth(3), Some(body(3))).await;
    let announced = Instant::now();
    let mut playlists = Vec::with_capacity(VIEWERS);
    let mut last_answer = announced;
    for viewer in viewers {
        let (status, cache_control, text, at) = viewer.await.unwrap();
        assert_eq!(status, 200, "{text}");
        assert_eq!(cache_control, "public, max-age=12");
        last_answer = last_answer.max(at);
        playlists.push(text);
    }
    println!(
        "{VIEWERS} blocked reloads answered within {:?} of the segment's announcement",
        last_answer - announced
    );
    assert!(playlists[0].contains("\n3.m4s\n"), "{}", playlists[0]);
    assert!(
        playlists.iter().all(|p| *p == playlists[0]),
        "every viewer got the same playlist"
    );
    assert_eq!(blocked_reloads(&edge).await, Some(0.0));

    // Then all of them fetch the new segment: one blob read.
    let fetches_before = edge.service.origin_fetches();
    let segment_url = edge.url(&format!("/stream/{id}/720p/3.m4s"));
    let fetches = (0..VIEWERS).map(|_| {
        let (client, url) = (edge.client.clone(), segment_url.clone());
        async move {
            client
                .get(&url)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
        }
    });
    let bodies = futures::future::join_all(fetches).await;
    assert!(bodies.iter().all(|b| *b == body(3)));
    assert_eq!(edge.service.origin_fetches(), fetches_before + 1);
}

#[tokio::test]
async fn bad_directives_are_refused_and_a_segment_that_never_comes_times_out() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    world.segment(&id, &P720, Seg::nth(0), None).await;
    let path = format!("/stream/{id}/720p/index.m3u8");
    edge.text_until(&path, |p| p.contains("0.m4s")).await;

    for (query, says) in [
        ("_HLS_msn=3", "more than two segments past the newest"),
        ("_HLS_part=1", "_HLS_part needs _HLS_msn"),
        ("_HLS_msn=next", "_HLS_msn must be a whole number"),
        (
            "_HLS_msn=1&_HLS_part=-1",
            "_HLS_part must be a whole number",
        ),
    ] {
        let (status, body) = edge.text(&format!("{path}?{query}")).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(body.contains(says), "{query}: {body}");
    }
    // Unknown parameters (a cache buster) are ignored.
    let (status, _) = edge.text(&format!("{path}?_HLS_msn=0&v=2")).await;
    assert_eq!(status, 200);

    // Three target durations (6 s) without segment 1: 503, never cached.
    let asked = Instant::now();
    let response = edge.get(&format!("{path}?_HLS_msn=1")).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(asked.elapsed() >= Duration::from_secs(6));

    // A finished stream answers at once, whatever is asked.
    world.set_status(&id, StreamStatus::StreamComplete).await;
    let vod = edge
        .text_until(&path, |p| p.contains("#EXT-X-ENDLIST"))
        .await;
    assert!(!vod.contains("SERVER-CONTROL"), "{vod}");
    let (status, body) = edge.text(&format!("{path}?_HLS_msn=2")).await;
    assert_eq!((status, body), (200, vod));
}
