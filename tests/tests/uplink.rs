//! A broadcaster on a bad network: its uplink runs through a shaping proxy that lets the push
//! through at full speed for 6 s, throttles it below the top rendition's bitrate for 30 s, cuts
//! it entirely for 10 s (the connection stays open, nothing passes), then opens it again.
//! ffmpeg, as OBS does, keeps what it could not send and sends it when it can. Nothing of the
//! broadcast is lost; a viewer at the live edge stalls while the source is starved, and the
//! figures say how much.

use std::net::SocketAddr;
use std::time::Duration;

use livecast_tests::viewer::watch_live;
use livecast_tests::{
    continuous_segments, listed_seconds, play_to_end, push_test_stream, record_fault_result,
    spawn_platform,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const PUSH_SECONDS: u32 = 40;
/// 300 kbit/s: below the 360p rendition's bitrate and well below what the test source needs.
const THROTTLED_BYTES_PER_SECOND: u64 = 300_000 / 8;

/// What the shaping proxy lets through from the broadcaster.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Uplink {
    Open,
    Throttled { bytes_per_second: u64 },
    Cut,
}

/// Forwards one broadcaster connection to `target`, shaping what the broadcaster sends as
/// `uplink` says; what the server sends back passes freely.
async fn shaping_proxy(
    listener: TcpListener,
    target: SocketAddr,
    mut uplink: watch::Receiver<Uplink>,
) {
    let (broadcaster, _) = listener.accept().await.unwrap();
    let server = TcpStream::connect(target).await.unwrap();
    let (mut from_broadcaster, mut to_broadcaster) = broadcaster.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    tokio::spawn(async move { tokio::io::copy(&mut from_server, &mut to_broadcaster).await });
    let mut buffer = vec![0u8; 4096];
    loop {
        // While the link is cut nothing is read, so the broadcaster's socket fills up and its
        // writes block, as they would behind a dead uplink.
        loop {
            let cut = *uplink.borrow_and_update() == Uplink::Cut;
            if !cut {
                break;
            }
            if uplink.changed().await.is_err() {
                return;
            }
        }
        let read = match from_broadcaster.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if to_server.write_all(&buffer[..read]).await.is_err() {
            return;
        }
        let shape = *uplink.borrow();
        if let Uplink::Throttled { bytes_per_second } = shape {
            tokio::time::sleep(Duration::from_secs_f64(
                read as f64 / bytes_per_second as f64,
            ))
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_throttled_then_cut_uplink_loses_nothing_of_the_broadcast() {
    let platform = spawn_platform(|_| {}).await;
    let created = platform.create_stream("Bad network").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();

    let rtmp: SocketAddr = platform.rtmp["rtmp://".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("rtmp://{}/live/{key}", proxy.local_addr().unwrap());
    let (shape, uplink) = watch::channel(Uplink::Open);
    tokio::spawn(shaping_proxy(proxy, rtmp, uplink));
    let started = tokio::time::Instant::now();
    let push =
        tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], PUSH_SECONDS).await });
    let live = format!("/stream/{id}/360p/index.m3u8");
    let viewer = tokio::spawn(watch_live(
        format!("{}{live}", platform.http),
        Duration::from_secs(150),
    ));

    tokio::time::sleep_until(started + Duration::from_secs(6)).await;
    shape
        .send(Uplink::Throttled {
            bytes_per_second: THROTTLED_BYTES_PER_SECOND,
        })
        .unwrap();
    tokio::time::sleep_until(started + Duration::from_secs(36)).await;
    shape.send(Uplink::Cut).unwrap();
    tokio::time::sleep_until(started + Duration::from_secs(46)).await;
    shape.send(Uplink::Open).unwrap();
    assert!(push.await.unwrap(), "the broadcaster gave up");

    // The recording has the whole broadcast, in order.
    let vod = platform
        .wait_for(&live, Duration::from_secs(90), |s, b| {
            s == 200 && b.contains("#EXT-X-ENDLIST")
        })
        .await;
    let listed = listed_seconds(&continuous_segments("360p", &vod));
    let lost = (f64::from(PUSH_SECONDS) - listed).max(0.0);
    assert!(
        lost < 1.0,
        "{listed:.1} s of a {PUSH_SECONDS} s broadcast are listed:\n{vod}"
    );
    let played = play_to_end(&format!("{}{live}", platform.http))
        .await
        .unwrap_or_else(|e| panic!("the recording does not play: {e}"));
    assert!(
        (played - f64::from(PUSH_SECONDS)).abs() < 2.5,
        "played {played:.1} s"
    );

    // A live viewer cannot see what has not arrived: it stalls, and if the late media comes in
    // a burst longer than the live window it skips ahead as players do.
    let viewing = viewer.await.unwrap();
    assert!(viewing.ended, "the live viewer did not reach the end");
    let (skipped, repeated) = viewing.gaps_and_repeats();
    assert!(repeated.is_empty(), "the viewer played {repeated:?} twice");
    // The shaping happened: 30 s at a fraction of the source's bitrate starves any player.
    assert!(
        !viewing.stalls.stalls().is_empty(),
        "the live viewer never stalled: was the uplink shaped?"
    );
    record_fault_result([
        "uplink throttled to 300 kbit/s for 30 s, then cut 10 s (connection kept)",
        "0 / 0",
        &format!("{lost:.1} s"),
        &format!(
            "longest stall {:.1} s ({} stalls, {:.0} s in all); the live viewer skipped {} segments",
            viewing.stalls.longest_stall().as_secs_f64(),
            viewing.stalls.stalls().len(),
            viewing
                .stalls
                .stalls()
                .iter()
                .sum::<Duration>()
                .as_secs_f64(),
            skipped.len()
        ),
    ]);
}
