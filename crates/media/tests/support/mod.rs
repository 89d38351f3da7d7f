//! Fixtures made with the ffmpeg command line, and ffprobe readings of the output.
// Shared by several test binaries; each uses only part of it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use livecast_media::{
    ChunkMedia, EncodedRendition, Ladder, SourceChunkInput, StreamTranscoder, TranscodeOptions,
};
use serde_json::Value;

/// Source chunks, made once per test run.
pub struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Cuts a stream at its keyframes every 2 s, keeping its timestamps, as the ingest does.
pub fn split_into_chunks(dir: &Path, input: &str, format: &str, pattern: &str) {
    ffmpeg(
        dir,
        &format!(
            "-i {input} -c copy -f segment -segment_time 2 -segment_format {format} \
             -reset_timestamps 0 {pattern}"
        ),
    );
}

/// Runs the ffmpeg command line in `dir`; `args` are separated by whitespace.
pub fn ffmpeg(dir: &Path, args: &str) {
    let args: Vec<&str> = args.split_whitespace().collect();
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        // 4 s of 720p30 H.264/AAC as an RTMP broadcaster sends it, cut at the 2 s keyframe
        // the way the ingest cuts chunks: timestamps continue from chunk to chunk.
        ffmpeg(
            d,
            "-f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=f=440:sample_rate=48000 \
             -t 4 -c:v libx264 -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 \
             -pix_fmt yuv420p -c:a aac -f flv stream.flv",
        );
        split_into_chunks(d, "stream.flv", "flv", "chunk%d.flv");
        // HLS-push style MPEG-TS: timestamps start at 1.4 s, AAC in ADTS.
        ffmpeg(
            d,
            "-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=f=300:sample_rate=44100 \
             -t 2 -c:v libx264 -preset ultrafast -g 50 -c:a aac -f mpegts chunk.ts",
        );
        // HLS-push style fMP4.
        ffmpeg(
            d,
            "-f lavfi -i testsrc2=size=640x360:rate=25 -f lavfi -i sine=f=300:sample_rate=44100 \
             -t 2 -c:v libx264 -preset ultrafast -g 50 -c:a aac \
             -movflags frag_keyframe+empty_moov+default_base_moof -f mp4 chunk.mp4",
        );
        // Neither H.264 nor AAC: MPEG-4 Part 2 video and MP3 audio, in two chunks.
        ffmpeg(
            d,
            "-f lavfi -i testsrc2=size=854x480:rate=30 -f lavfi -i sine=f=500:sample_rate=44100 \
             -t 4 -c:v mpeg4 -g 60 -c:a libmp3lame -f mpegts mpeg4_mp3.ts",
        );
        split_into_chunks(d, "mpeg4_mp3.ts", "mpegts", "mpeg4_mp3_%d.ts");
        // Video stopped, audio goes on.
        ffmpeg(
            d,
            "-f lavfi -i sine=f=600:sample_rate=48000 -t 2 -c:a aac -f flv audio_only.flv",
        );
        let garbage: Vec<u8> = (0..50_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(d.join("garbage.flv"), garbage).expect("write garbage");
        Fixtures { dir }
    })
}

pub fn transcoder() -> StreamTranscoder {
    let options = TranscodeOptions {
        preset: "ultrafast".into(),
        ..TranscodeOptions::default()
    };
    StreamTranscoder::new(Ladder::default(), options).expect("transcoder")
}

pub fn chunk(path: &Path, seq: u64, pts_ms: i64) -> SourceChunkInput<'_> {
    SourceChunkInput {
        media: ChunkMedia::File(path),
        seq,
        pts_ms,
        duration_ms: 2_000,
    }
}

pub fn find<'a>(renditions: &'a [EncodedRendition], name: &str) -> &'a EncodedRendition {
    renditions
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no {name} rendition"))
}

pub fn names(renditions: &[EncodedRendition]) -> Vec<&str> {
    renditions.iter().map(|r| r.name.as_str()).collect()
}

/// ffprobe's JSON for init + segments concatenated, as a player would read them.
pub fn probe(parts: &[&[u8]]) -> Value {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), parts.concat()).expect("write");
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("stream=codec_name,codec_type,width,height:packet=stream_index,pts_time,dts_time,duration_time,flags")
        .arg(file.path())
        .output()
        .expect("ffprobe runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe json")
}

/// Per stream of a probe: codec type, first pts, end of the last packet, keyframe flags.
///
/// ffprobe leaves packet durations of fMP4 video unknown when the frame rate is not in the
/// file, so a packet without one lasts as long as the gap before it.
pub struct ProbedStream {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u64,
    pub height: u64,
    pub start: f64,
    pub end: f64,
    pub keyframes: Vec<bool>,
}

pub fn streams(probe: &Value) -> Vec<ProbedStream> {
    let num = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    probe["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .enumerate()
        .map(|(index, stream)| {
            let packets: Vec<&Value> = probe["packets"]
                .as_array()
                .expect("packets")
                .iter()
                .filter(|p| p["stream_index"].as_u64() == Some(index as u64))
                .collect();
            ProbedStream {
                codec_type: stream["codec_type"].as_str().unwrap_or_default().into(),
                codec_name: stream["codec_name"].as_str().unwrap_or_default().into(),
                width: stream["width"].as_u64().unwrap_or(0),
                height: stream["height"].as_u64().unwrap_or(0),
                start: packets
                    .iter()
                    .map(|p| num(&p["pts_time"]))
                    .fold(f64::INFINITY, f64::min),
                end: {
                    let mut pts: Vec<f64> = packets.iter().map(|p| num(&p["pts_time"])).collect();
                    pts.sort_by(f64::total_cmp);
                    let last = packets
                        .iter()
                        .max_by(|a, b| num(&a["pts_time"]).total_cmp(&num(&b["pts_time"])))
                        .expect("packets");
                    let gap = match pts.as_slice() {
                        [.., before, last] => last - before,
                        _ => 0.0,
                    };
                    let duration = num(&last["duration_time"]);
                    pts.last().expect("packets") + if duration > 0.0 { duration } else { gap }
                },
                keyframes: packets
                    .iter()
                    .map(|p| p["flags"].as_str().unwrap_or_default().starts_with('K'))
                    .collect(),
            }
        })
        .collect()
}

pub fn stream_of<'a>(streams: &'a [ProbedStream], kind: &str) -> &'a ProbedStream {
    streams
        .iter()
        .find(|s| s.codec_type == kind)
        .unwrap_or_else(|| panic!("no {kind} stream"))
}

pub fn assert_near(actual: f64, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tolerance,
        "{what}: {actual} is not within {tolerance} of {expected}"
    );
}

/// Decodes the bytes with the ffmpeg command line; any error output fails the test.
pub fn assert_plays(parts: &[&[u8]]) {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), parts.concat()).expect("write");
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
        .arg(file.path())
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "playback failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Start times of a source chunk's streams, in seconds, as ffprobe reads them.
pub struct SourceStarts {
    pub earliest: f64,
    pub video: Option<f64>,
    pub audio: Option<f64>,
}

pub fn source_starts(path: &Path) -> SourceStarts {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-of",
            "json",
            "-show_entries",
            "stream=codec_type,start_time",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    let json: Value = serde_json::from_slice(&output.stdout).expect("ffprobe json");
    let start = |kind: &str| {
        json["streams"]
            .as_array()
            .expect("streams")
            .iter()
            .find_map(|s| {
                (s["codec_type"] == kind)
                    .then(|| s["start_time"].as_str().and_then(|t| t.parse::<f64>().ok()))
                    .flatten()
            })
    };
    let (video, audio) = (start("video"), start("audio"));
    let earliest = video.into_iter().chain(audio).fold(f64::INFINITY, f64::min);
    SourceStarts {
        earliest,
        video,
        audio,
    }
}

/// `pts_ms` as the RTMP ingest reports it: the chunk's first media timestamp.
pub fn ingest_pts_ms(path: &Path) -> i64 {
    (source_starts(path).earliest * 1000.0).round() as i64
}

/// Frames per part at 30 fps with the default part target (14 frames: 467 ms).
pub const PART_FRAMES_30: usize = 14;

/// Keyframes open the segment and then come only a part or two apart (each opens a part):
/// a Low-Latency HLS player joins close to the live edge, and no keyframe is wasted.
pub fn assert_keyframes_open_parts(keyframes: &[bool], part_frames: usize, what: &str) {
    assert!(keyframes[0], "{what}: the first frame is not a keyframe");
    let mut bounds: Vec<usize> = (0..keyframes.len()).filter(|&i| keyframes[i]).collect();
    let at = bounds.clone();
    bounds.push(keyframes.len());
    let gaps: Vec<usize> = bounds.windows(2).map(|pair| pair[1] - pair[0]).collect();
    assert!(
        gaps[..gaps.len() - 1]
            .iter()
            .all(|gap| *gap + 1 >= part_frames),
        "{what}: keyframes {at:?} closer than a part"
    );
    assert!(
        gaps.iter()
            .all(|gap| *gap <= 2 * part_frames + part_frames / 2),
        "{what}: keyframes {at:?} more than two parts apart"
    );
}
