//! Real media through the edge, played by ffmpeg.

use livecast_core::StreamStatus;

use crate::helpers::{AUDIO, Rendition, World, segment_uris, settings, spawn_edge, tag_value};
use crate::media::{MEDIA_SECONDS, made, run_tool};

/// The rendition ffmpeg made: 320x180 H.264 High.
const P180: Rendition = Rendition {
    name: "180p",
    width: 320,
    height: 180,
    bandwidth: 300_000,
    codecs: "avc1.64000d",
    audio_only: false,
};

#[tokio::test]
async fn a_completed_stream_becomes_vod_at_the_same_url_and_ffmpeg_plays_it() {
    let media = made().await;
    let world = World::new().await;
    let edge = spawn_edge(&world, settings(3)).await;
    let id = world.stream(StreamStatus::StreamActive).await;
    world.broadcast(&id, &P180, &media.video).await;
    world.broadcast(&id, &AUDIO, &media.audio).await;

    let count = media.video.segments.len();
    let path = format!("/stream/{id}/180p/index.m3u8");
    let live = edge
        .text_until(&path, |body| {
            body.contains(&format!("\n{}.m4s\n", count - 1))
        })
        .await;
    let first = (count - 3).to_string();
    assert_eq!(
        tag_value(&live, "#EXT-X-MEDIA-SEQUENCE"),
        Some(first.as_str())
    );
    assert_eq!(segment_uris(&live).len(), 3);
    assert!(!live.contains("#EXT-X-ENDLIST"));

    world.set_status(&id, StreamStatus::StreamComplete).await;
    let vod = edge
        .text_until(&path, |body| body.contains("#EXT-X-ENDLIST"))
        .await;
    assert_eq!(tag_value(&vod, "#EXT-X-MEDIA-SEQUENCE"), Some("0"));
    assert_eq!(tag_value(&vod, "#EXT-X-PLAYLIST-TYPE"), Some("VOD"));
    let expected: Vec<String> = (0..count).map(|seq| format!("{seq}.m4s")).collect();
    assert_eq!(segment_uris(&vod), expected);
    assert!(vod.ends_with("#EXT-X-ENDLIST\n"), "{vod}");
    let response = edge.get(&path).await;
    assert_eq!(response.headers()["cache-control"], "public, max-age=86400");

    let master = edge
        .text_until(&format!("/stream/{id}/master.m3u8"), |body| {
            body.contains("audio/index.m3u8") && body.contains("180p/index.m3u8")
        })
        .await;
    assert!(
        master.contains("RESOLUTION=320x180,CODECS=\"avc1.64000d\""),
        "{master}"
    );

    for url in [
        edge.url(&path),
        edge.url(&format!("/stream/{id}/master.m3u8")),
    ] {
        let (played, _, errors) = run_tool(
            "ffmpeg",
            vec![
                "-nostdin".into(),
                "-v".into(),
                "error".into(),
                "-i".into(),
                url.clone(),
                "-f".into(),
                "null".into(),
                "-".into(),
            ],
        )
        .await;
        assert!(played, "ffmpeg could not play {url}: {errors}");
    }

    // Every object was read once from the origin however often ffmpeg asked.
    assert_eq!(
        edge.service.origin_fetches() as usize,
        count + 1 + media.audio.segments.len() + 1
    );

    let duration = probe(&edge.url(&path), &["-show_entries", "format=duration"]).await;
    let duration: f64 = duration.parse().unwrap();
    assert!(
        (duration - f64::from(MEDIA_SECONDS)).abs() < 0.5,
        "played {duration} s of {MEDIA_SECONDS} s"
    );
    let frames = probe(
        &edge.url(&path),
        &[
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
        ],
    )
    .await;
    // ffprobe lists the stream once per HLS program it belongs to.
    assert_eq!(
        frames.lines().next(),
        Some((MEDIA_SECONDS * 30).to_string().as_str())
    );
}

/// One value from ffprobe, read over HTTP from the edge.
async fn probe(url: &str, what: &[&str]) -> String {
    let mut args: Vec<String> = ["-v", "error", "-of", "csv=p=0"]
        .iter()
        .chain(what)
        .map(|s| s.to_string())
        .collect();
    args.push(url.to_owned());
    let (probed, out, errors) = run_tool("ffprobe", args).await;
    assert!(probed, "ffprobe failed on {url}: {errors}");
    out.trim().to_owned()
}
