//! Init and media segments: one origin fetch per object, HTTP caching semantics, CORS.

use bytes::Bytes;
use livecast_core::StreamStatus;
use reqwest::header;

use crate::helpers::{P720, Seg, World, settings, spawn_edge};
use crate::media::made;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_misses_for_one_segment_cause_one_origin_fetch() {
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    let body: Bytes = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    world
        .segment(&id, &P720, Seg::nth(0), Some(body.clone()))
        .await;
    edge.text_until(&format!("/stream/{id}/720p/index.m3u8"), |playlist| {
        playlist.contains("0.m4s")
    })
    .await;
    assert_eq!(edge.service.origin_fetches(), 0);

    let url = edge.url(&format!("/stream/{id}/720p/0.m4s"));
    let requests = (0..100).map(|_| async {
        let response = edge.client.get(&url).send().await.unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    });
    for (status, received) in futures::future::join_all(requests).await {
        assert_eq!(status, 200);
        assert!(received == body, "a viewer got other bytes");
    }
    assert_eq!(edge.service.origin_fetches(), 1);
    let again = edge.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(edge.service.origin_fetches(), 1);
    let metrics = edge.text("/metrics").await.1;
    assert!(
        metrics.contains("livecast_edge_origin_fetches_total"),
        "{metrics}"
    );
    assert!(metrics.contains("livecast_edge_requests_total{kind=\"segment\",status=\"200\"}"));
}

#[tokio::test]
async fn objects_carry_mime_types_validators_ranges_and_cors() {
    let media = made().await;
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(6)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    world.put_init(&id, &P720, media.video.init.clone()).await;
    let segment = media.video.segments[0].0.clone();
    world
        .segment(&id, &P720, Seg::nth(0), Some(segment.clone()))
        .await;
    let playlist_path = format!("/stream/{id}/720p/index.m3u8");
    edge.text_until(&playlist_path, |body| body.contains("0.m4s"))
        .await;

    let init = edge.get(&format!("/stream/{id}/720p/init.mp4")).await;
    assert_eq!(init.status(), 200);
    assert_eq!(init.headers()[header::CONTENT_TYPE], "video/mp4");
    assert_eq!(
        init.headers()[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert!(init.headers().contains_key(header::LAST_MODIFIED));
    assert_eq!(init.bytes().await.unwrap(), media.video.init);

    let path = format!("/stream/{id}/720p/0.m4s");
    let url = edge.url(&path);
    let full = edge
        .client
        .get(&url)
        .header(header::ORIGIN, "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(full.status(), 200);
    let headers = full.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "video/iso.segment");
    assert_eq!(
        headers[header::CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    let exposed = headers[header::ACCESS_CONTROL_EXPOSE_HEADERS]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        exposed.contains("content-length") && exposed.contains("content-range"),
        "{exposed}"
    );
    assert_eq!(
        headers[header::LAST_MODIFIED],
        "Thu, 01 Jan 2026 00:00:02 GMT"
    );
    assert_eq!(full.bytes().await.unwrap(), segment);
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();

    let not_modified = edge
        .client
        .get(&url)
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()[header::ETAG], etag.as_str());
    assert!(not_modified.bytes().await.unwrap().is_empty());

    let head = edge.client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()[header::CONTENT_TYPE], "video/iso.segment");
    assert_eq!(
        head.headers()[header::CONTENT_LENGTH],
        segment.len().to_string().as_str()
    );
    assert_eq!(head.headers()[header::ETAG], etag.as_str());
    assert!(head.bytes().await.unwrap().is_empty());

    let len = segment.len();
    let part = edge
        .client
        .get(&url)
        .header(header::RANGE, "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()[header::CONTENT_RANGE],
        format!("bytes 0-99/{len}").as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), segment.slice(0..100));
    let beyond = edge
        .client
        .get(&url)
        .header(header::RANGE, format!("bytes={len}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), 416);
    assert_eq!(
        beyond.headers()[header::CONTENT_RANGE],
        format!("bytes */{len}").as_str()
    );

    let preflight = edge
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header(header::ORIGIN, "https://player.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "range")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "*"
    );
    let methods = preflight.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
        .to_str()
        .unwrap();
    assert!(methods.contains("GET"), "{methods}");

    let playlist = edge.get(&playlist_path).await;
    assert_eq!(
        playlist.headers()[header::CONTENT_TYPE],
        "application/vnd.apple.mpegurl"
    );
    let playlist_etag = playlist.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    let revalidated = edge
        .client
        .get(edge.url(&playlist_path))
        .header(header::IF_NONE_MATCH, &playlist_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), 304);
    assert_eq!(edge.service.origin_fetches(), 2);
}
