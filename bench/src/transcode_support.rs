//! Helpers of `transcode-bench`: the cached source and its chunks, and what Linux tells about
//! CPU time and resident memory. Included by the binary with `#[path]`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;

/// Length of the source.
pub const SOURCE_SECONDS: u32 = 60;
/// Length of a chunk, and the keyframe interval of the source.
pub const CHUNK_SECONDS: u32 = 2;
/// Frame rate of the source.
pub const FPS: u32 = 30;

/// One source chunk as the ingest would have stored it.
pub struct Chunk {
    pub bytes: Bytes,
    /// Timestamp of the chunk's first media tag, on the stream timeline.
    pub pts_ms: i64,
    /// Until the next chunk's start; for the last one, its last tag plus one frame.
    pub duration_ms: u32,
}

/// What one side of the benchmark cost.
#[derive(Debug, Clone, Copy)]
pub struct Measure {
    pub wall: Duration,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
}

/// The 60 s source and its 2 s chunks, generated once into `cache` and checked.
pub fn prepare_source(cache: &Path) -> anyhow::Result<(PathBuf, Vec<Chunk>)> {
    let source = cache.join("source.flv");
    let chunk_dir = cache.join("chunks");
    let ready = cache.join("ready");
    let fresh = !ready.exists();
    if fresh {
        let _ = fs::remove_dir_all(cache);
        fs::create_dir_all(&chunk_dir)?;
        println!("generating the source into {} (once)", cache.display());
        let (gop, seconds) = (
            (FPS * CHUNK_SECONDS).to_string(),
            SOURCE_SECONDS.to_string(),
        );
        let video = format!("testsrc2=size=1280x720:rate={FPS}");
        #[rustfmt::skip]
        ffmpeg(&[
            "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", &seconds, "-map", "0:v", "-map", "1:a",
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-b:v", "4M", "-maxrate", "4M", "-bufsize", "8M",
            "-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2", "-f", "flv", &path(&source),
        ])?;
        // Like the ingest's chunks: each a whole FLV with the codec headers, starting on a
        // keyframe, timestamps left on the stream timeline.
        #[rustfmt::skip]
        ffmpeg(&[
            "-i", &path(&source), "-map", "0", "-c", "copy",
            "-f", "segment", "-segment_time", &CHUNK_SECONDS.to_string(),
            "-segment_format", "flv", "-reset_timestamps", "0", &path(&chunk_dir.join("%03d.flv")),
        ])?;
    }
    let mut paths: Vec<PathBuf> = fs::read_dir(&chunk_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.sort();
    let expected = (SOURCE_SECONDS / CHUNK_SECONDS) as usize;
    ensure!(
        paths.len() == expected,
        "{} chunks, not {expected}",
        paths.len()
    );
    let mut scans = Vec::new();
    for chunk in &paths {
        let bytes = Bytes::from(fs::read(chunk)?);
        let scan = scan_flv(&bytes).with_context(|| path(chunk))?;
        ensure!(
            scan.keyframe_first,
            "{} does not start on a keyframe",
            path(chunk)
        );
        if fresh {
            // Each chunk must decode on its own, as the worker will decode it.
            ffmpeg(&["-xerror", "-i", &path(chunk), "-f", "null", "-"])?;
        }
        scans.push((bytes, scan));
    }
    fs::write(&ready, "")?;
    let frame_ms = i64::from(1000 / FPS);
    let mut chunks = Vec::with_capacity(scans.len());
    for (i, (bytes, scan)) in scans.iter().enumerate() {
        let end = scans
            .get(i + 1)
            .map_or(scan.last_ms + frame_ms, |(_, next)| next.first_ms);
        chunks.push(Chunk {
            bytes: bytes.clone(),
            pts_ms: scan.first_ms,
            duration_ms: u32::try_from(end - scan.first_ms)?,
        });
    }
    Ok((source, chunks))
}

fn path(path: &Path) -> String {
    path.display().to_string()
}

/// Runs the ffmpeg command line quietly; any complaint is an error.
fn ffmpeg(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .context("cannot run ffmpeg (is it installed?)")?;
    let log = String::from_utf8_lossy(&output.stderr);
    let line = args.join(" ");
    ensure!(output.status.success(), "ffmpeg {line} failed: {log}");
    ensure!(log.trim().is_empty(), "ffmpeg {line} complained: {log}");
    Ok(())
}

/// Media timestamps of an FLV chunk and whether its first picture is a keyframe that follows an
/// AVC sequence header.
struct FlvScan {
    first_ms: i64,
    last_ms: i64,
    keyframe_first: bool,
}

fn scan_flv(bytes: &[u8]) -> anyhow::Result<FlvScan> {
    let be24 = |b: &[u8]| (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    let header = bytes.get(..9).context("shorter than an FLV header")?;
    ensure!(header.starts_with(b"FLV"), "not an FLV file");
    let mut at = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize + 4;
    let (mut first, mut last, mut keyframe_first, mut avc_config) = (None, 0, None, false);
    while let Some(tag) = bytes.get(at..at + 11) {
        let size = be24(&tag[1..4]) as usize;
        let ts = i64::from(be24(&tag[4..7]) | (u32::from(tag[7]) << 24));
        let body = bytes
            .get(at + 11..at + 11 + size)
            .context("truncated FLV tag")?;
        // Sequence headers (AAC and AVC packet type 0) are configuration, not media.
        let media = match tag[0] & 0x1f {
            8 => body.get(1) != Some(&0),
            9 if body.get(1) == Some(&0) => {
                avc_config = true;
                false
            }
            9 => {
                let key = body.first().map(|b| b >> 4) == Some(1);
                keyframe_first.get_or_insert(avc_config && key);
                true
            }
            _ => false,
        };
        if media {
            first.get_or_insert(ts);
            last = last.max(ts);
        }
        at += 11 + size + 4;
    }
    Ok(FlvScan {
        first_ms: first.context("no media tags")?,
        last_ms: last,
        keyframe_first: keyframe_first.unwrap_or(false),
    })
}

/// Runs `command` to its end: wall time, CPU seconds (the growth of this process's reaped
/// children time) and peak RSS. The peak is the child's own VmHWM, sampled every 10 ms while
/// it runs: its `ru_maxrss` would not do, since a child spawned with CLONE_VM starts that
/// figure from this process's peak. Returns the measure and the child's stderr.
pub fn run_child(command: &mut Command, tick: f64) -> anyhow::Result<(Measure, String)> {
    let log = tempfile::tempfile()?;
    let cpu = process_cpu(tick)?.1;
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.try_clone()?)
        .spawn()?;
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Ok(status) = fs::read_to_string(&status_path) {
            peak_rss_kib = peak_rss_kib.max(kib(&status, "VmHWM:").unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = started.elapsed();
    let cpu_s = process_cpu(tick)?.1 - cpu;
    let log = read_all(log)?;
    ensure!(status.success(), "{command:?} failed ({status}): {log}");
    let measure = Measure {
        wall,
        cpu_s,
        peak_rss_kib,
    };
    Ok((measure, log))
}

fn read_all(mut file: File) -> anyhow::Result<String> {
    use std::io::{Read, Seek};
    let mut text = String::new();
    file.rewind()?;
    file.read_to_string(&mut text)?;
    Ok(text)
}

/// CPU seconds of this process (all threads) and of its reaped children, from /proc/self/stat.
pub fn process_cpu(tick: f64) -> anyhow::Result<(f64, f64)> {
    let stat = fs::read_to_string("/proc/self/stat")?;
    let (_, after_name) = stat
        .rsplit_once(')')
        .context("unreadable /proc/self/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // After the command name: state is field 3; utime, stime, cutime, cstime are 14 to 17.
    let field = |n: usize| -> anyhow::Result<f64> {
        let value: u64 = fields
            .get(n - 3)
            .context("short /proc/self/stat")?
            .parse()?;
        Ok(value as f64 / tick)
    };
    Ok((field(14)? + field(15)?, field(16)? + field(17)?))
}

/// Peak resident set of this process since it started or since [`reset_peak_rss`], in KiB.
pub fn peak_rss_kib() -> anyhow::Result<u64> {
    let status = fs::read_to_string("/proc/self/status")?;
    kib(&status, "VmHWM:").context("no VmHWM in /proc/self/status")
}

/// Resets this process's VmHWM to its current RSS (Linux `clear_refs` 5); false if refused.
pub fn reset_peak_rss() -> bool {
    fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn kib(status: &str, key: &str) -> Option<u64> {
    let value = status.lines().find_map(|l| l.strip_prefix(key))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Clock ticks per second (`getconf CLK_TCK`); 100, the Linux value, if getconf is missing.
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
