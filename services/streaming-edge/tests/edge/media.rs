//! Real CMAF media made by the ffmpeg command line, once per test run.

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use bytes::Bytes;
use livecast_core::StreamId;

use crate::helpers::{EPOCH_MS, Rendition, Seg, World};

/// Seconds of media in each generated rendition.
pub const MEDIA_SECONDS: u32 = 12;

/// One rendition as ffmpeg's HLS muxer wrote it.
pub struct Encoded {
    pub init: Bytes,
    /// Each segment with its duration.
    pub segments: Vec<(Bytes, u32)>,
}

pub struct Media {
    pub video: Encoded,
    pub audio: Encoded,
}

/// [`media`], made off the reactor.
pub async fn made() -> &'static Media {
    tokio::task::spawn_blocking(media).await.unwrap()
}

/// 320x180 H.264 at 30 fps with a keyframe every 2 s, and 48 kHz AAC, cut into 2 s fMP4
/// segments.
pub fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let seconds = MEDIA_SECONDS.to_string();
        let video = encode(
            dir.path(),
            "v",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30",
                "-t",
                &seconds,
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-g",
                "60",
                "-keyint_min",
                "60",
                "-sc_threshold",
                "0",
            ],
        );
        let audio = encode(
            dir.path(),
            "a",
            &[
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
                "-t",
                &seconds,
                "-c:a",
                "aac",
                "-b:a",
                "64k",
            ],
        );
        Media { video, audio }
    })
}

fn encode(dir: &Path, name: &str, input_and_codec: &[&str]) -> Encoded {
    let playlist = dir.join(format!("{name}.m3u8"));
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y"])
        .args(input_and_codec)
        .args(["-f", "hls", "-hls_segment_type", "fmp4", "-hls_time", "2"])
        .args(["-hls_playlist_type", "vod"])
        .arg("-hls_fmp4_init_filename")
        .arg(format!("{name}_init.mp4"))
        .arg("-hls_segment_filename")
        .arg(dir.join(format!("{name}%d.m4s")))
        .arg(&playlist)
        .output()
        .expect("the ffmpeg command line is needed to make test media");
    assert!(
        output.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&playlist).unwrap();
    let mut segments = Vec::new();
    let mut duration_ms = None;
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let secs: f64 = value.trim_end_matches(',').parse().unwrap();
            duration_ms = Some((secs * 1000.0).round() as u32);
        } else if !line.starts_with('#') && !line.is_empty() {
            let body = std::fs::read(dir.join(line)).unwrap();
            segments.push((Bytes::from(body), duration_ms.take().unwrap()));
        }
    }
    let init = std::fs::read(dir.join(format!("{name}_init.mp4"))).unwrap();
    assert!(
        segments.len() >= 5,
        "ffmpeg made {} segments",
        segments.len()
    );
    Encoded {
        init: Bytes::from(init),
        segments,
    }
}

impl World {
    /// Stores `encoded` as `rendition` of `id` and announces every segment.
    pub async fn broadcast(&self, id: &StreamId, rendition: &Rendition, encoded: &Encoded) {
        self.put_init(id, rendition, encoded.init.clone()).await;
        let mut at_ms = EPOCH_MS;
        for (seq, (body, duration_ms)) in encoded.segments.iter().enumerate() {
            let seg = Seg {
                seq: seq as u64,
                duration_ms: *duration_ms,
                discontinuity: false,
                at_ms,
            };
            self.segment(id, rendition, seg, Some(body.clone())).await;
            at_ms += i64::from(*duration_ms);
        }
    }
}

/// Runs a command-line tool off the reactor and returns (success, stdout, stderr).
pub async fn run_tool(program: &'static str, args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}
