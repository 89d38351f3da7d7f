//! The encode worker against the ffmpeg command line: the same 60 s 720p30 source (a) cut into
//! 2 s FLV chunks and fed to `EncodeWorker::handle` one after another, as one stream's partition
//! owner does, and (b) read whole by one ffmpeg process encoding the same ladder with the same
//! x264 settings. Wall time, CPU seconds and peak RSS of each, alternating, on this machine.

#[path = "../transcode_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus, SubscribeOptions};
use livecast_core::blob_keys::{self, SourceExt};
use livecast_core::{EventId, RegionName, RenditionName, StreamId};
use livecast_encode_worker::{ChunkOutcome, EncodeWorker, WorkerSettings};
use livecast_proto::{topics, v1};
use prost::Message;
use support::{CHUNK_SECONDS, Chunk, FPS, Measure, SOURCE_SECONDS};

/// Runs of each side, alternating: worker, ffmpeg, worker, ffmpeg.
const RUNS: usize = 2;

/// A video rendition the worker produced, with its rung's target bitrate.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendition {
    name: String,
    width: u32,
    height: u32,
    bitrate: u32,
}

/// What a worker run measured and produced.
struct WorkerRun {
    measure: Measure,
    /// Time of each `handle` call.
    per_chunk: Vec<Duration>,
    /// Video renditions, largest first.
    renditions: Vec<Rendition>,
    /// RSS of the process before and after the run.
    rss_kib: (u64, u64),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // As the worker's own binary does.
    livecast_encode_worker::return_freed_buffers_to_the_system();
    let tick = support::clock_ticks();
    let cache = std::env::temp_dir().join("livecast-transcode-bench-v1");
    let (source, chunks) = support::prepare_source(&cache)?;
    // tmpfs when there is one, for both sides' outputs: the CPU of encoding, not of fsync.
    let shm = Path::new("/dev/shm");
    let scratch = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let settings = WorkerSettings::default();
    println!(
        "source: {} ({SOURCE_SECONDS} s 1280x720 {FPS} fps H.264 + AAC in FLV), {} chunks of {CHUNK_SECONDS} s",
        source.display(),
        chunks.len()
    );
    println!(
        "x264 preset {}, default ladder, AAC copied; outputs on {}; {} cores",
        settings.preset,
        scratch.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // Other work on the machine skews both sides; this shows whether it was idle at the start.
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let mut results = Vec::new();
    let mut rungs: Vec<Rendition> = Vec::new();
    for run in 1..=RUNS {
        let WorkerRun {
            measure: worker,
            per_chunk,
            renditions: produced,
            rss_kib: rss,
        } = run_worker(&chunks, &scratch, &settings, tick).await?;
        if rungs.is_empty() {
            rungs = produced;
        } else {
            ensure!(rungs == produced, "another ladder in run {run}");
        }
        let cli = run_ffmpeg(&source, &scratch, &rungs, &settings, tick, chunks.len())?;
        println!("\nRun {run} (worker first, then ffmpeg):\n");
        print_table(&worker, &cli);
        println!(
            "\nworker time per {CHUNK_SECONDS} s chunk ({} chunks): p50 {:.3} s, max {:.3} s",
            per_chunk.len(),
            quantile(&per_chunk, 0.5).as_secs_f64(),
            quantile(&per_chunk, 1.0).as_secs_f64()
        );
        println!(
            "worker process RSS: {} MiB before the run, {} MiB after it (stream ended)",
            rss.0 / 1024,
            rss.1 / 1024
        );
        results.push((worker, cli));
    }
    let ladder: Vec<String> = rungs
        .iter()
        .map(|r| {
            format!(
                "{} {}x{} {} kb/s",
                r.name,
                r.width,
                r.height,
                r.bitrate / 1000
            )
        })
        .collect();
    println!(
        "\nladder of the 720p source: {}, audio only",
        ladder.join(", ")
    );

    let best =
        |side: fn(&(Measure, Measure)) -> Measure| results.iter().map(side).min_by_key(|m| m.wall);
    let (Some(worker), Some(cli)) = (best(|r| r.0), best(|r| r.1)) else {
        bail!("no runs");
    };
    println!("\nBest of {RUNS} (each side's run with the lowest wall time):\n");
    print_table(&worker, &cli);
    let speed = f64::from(SOURCE_SECONDS) / worker.wall.as_secs_f64();
    let cpu_ratio = worker.cpu_s / cli.cpu_s;
    // Memory is judged on the worst run: the process carries what an earlier run left.
    let rss_ratio = results
        .iter()
        .map(|(w, c)| w.peak_rss_kib as f64 / c.peak_rss_kib.max(1) as f64)
        .fold(0.0, f64::max);
    println!(
        "\ntarget: worker CPU within 10% of ffmpeg's: {} ({:+.1}%); worker above 1.5x real time: {} ({speed:.2}x); worker peak RSS within 1.5x of ffmpeg's in every run: {} ({rss_ratio:.2}x)",
        verdict(cpu_ratio <= 1.10),
        (cpu_ratio - 1.0) * 100.0,
        verdict(speed > 1.5),
        verdict(rss_ratio <= 1.5)
    );
    Ok(())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn print_table(worker: &Measure, cli: &Measure) {
    let real = f64::from(SOURCE_SECONDS);
    let mib = |m: &Measure| m.peak_rss_kib as f64 / 1024.0;
    println!("| | wall s | x real time | CPU s | peak RSS MiB |");
    println!("|---|---|---|---|---|");
    for (name, m) in [("worker", worker), ("ffmpeg CLI", cli)] {
        let wall = m.wall.as_secs_f64();
        println!(
            "| {name} | {wall:.2} | {:.2} | {:.2} | {:.0} |",
            real / wall,
            m.cpu_s,
            mib(m)
        );
    }
    let (ww, cw) = (worker.wall.as_secs_f64(), cli.wall.as_secs_f64());
    println!(
        "| worker / ffmpeg | {:.2} | {:.2} | {:.2} | {:.2} |",
        ww / cw,
        cw / ww,
        worker.cpu_s / cli.cpu_s,
        mib(worker) / mib(cli)
    );
}

fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut values = samples.to_vec();
    values.sort();
    let index = (values.len().saturating_sub(1) as f64 * q).round() as usize;
    values.get(index).copied().unwrap_or_default()
}

/// A rendition's picture size (none for audio only) and the seqs announced for it.
type Announced = (Option<(u32, u32)>, Vec<u64>);

/// (a): every chunk through `EncodeWorker::handle`, in order, as fast as it goes.
async fn run_worker(
    chunks: &[Chunk],
    scratch: &Path,
    settings: &WorkerSettings,
    tick: f64,
) -> anyhow::Result<WorkerRun> {
    let dir = tempfile::tempdir_in(scratch)?;
    let blob: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path()).await?);
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    for topic in [topics::CHUNKS, topics::SEGMENTS] {
        bus.ensure_topic(topic, settings.topic_partitions).await?;
    }
    let options = SubscribeOptions::earliest("transcode-bench");
    let mut announced = bus.subscribe(topics::SEGMENTS, options).await?;
    let stream = StreamId::generate();
    let epoch = 1;
    let mut events = Vec::with_capacity(chunks.len());
    for (seq, chunk) in (0u64..).zip(chunks) {
        let key = blob_keys::source_chunk(&stream, epoch, seq, SourceExt::Flv);
        blob.put(&key, chunk.bytes.clone()).await?;
        let bits = chunk.bytes.len() as u64 * 8;
        events.push(v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: stream.to_string(),
            epoch,
            seq,
            blob_key: key,
            pts_ms: chunk.pts_ms,
            duration_ms: chunk.duration_ms,
            discontinuity: false,
            container: SourceExt::Flv.as_str().to_string(),
            wall_clock_ms: chunk.pts_ms,
            size_bytes: bits / 8,
            end_of_stream: false,
            input_bitrate: u32::try_from(bits * 1000 / u64::from(chunk.duration_ms.max(1)))?,
            realtime_ratio_milli: 1000,
            ..Default::default()
        });
    }
    let worker = EncodeWorker::new(
        blob.clone(),
        bus.clone(),
        RegionName::parse("bench")?,
        settings.ladder(),
        settings.transcode_options(),
    )?;

    // This run's own peak: nothing else heavy happens in this process (ffmpeg is a child).
    let rss_before = livecast_bench::rss_kib();
    if !support::reset_peak_rss() {
        println!("(cannot reset VmHWM: the worker's peak RSS is the process's peak so far)");
    }
    let cpu = support::process_cpu(tick)?.0;
    let started = Instant::now();
    let mut per_chunk = Vec::with_capacity(events.len());
    for event in &events {
        let began = Instant::now();
        let outcome = worker.handle(event).await?;
        ensure!(
            outcome == ChunkOutcome::Encoded,
            "chunk {}: {outcome:?}",
            event.seq
        );
        per_chunk.push(began.elapsed());
    }
    let measure = Measure {
        wall: started.elapsed(),
        cpu_s: support::process_cpu(tick)?.0 - cpu,
        peak_rss_kib: support::peak_rss_kib()?,
    };
    let end = v1::SourceChunk {
        event_id: EventId::generate().to_string(),
        stream_id: stream.to_string(),
        epoch,
        seq: events.len() as u64,
        end_of_stream: true,
        ..Default::default()
    };
    worker.handle(&end).await?;

    // No passing on a no-op: every rendition announced and stored for every chunk.
    let mut seen: BTreeMap<String, Announced> = BTreeMap::new();
    let wait = Duration::from_millis(200);
    while let Ok(message) = tokio::time::timeout(wait, announced.next()).await {
        let ready = v1::SegmentReady::decode(message?.payload.as_ref())?;
        let info = ready.rendition.context("SegmentReady without rendition")?;
        let size = (!info.audio_only).then_some((info.width, info.height));
        let entry = seen.entry(info.name.clone()).or_insert((size, Vec::new()));
        entry.1.push(ready.seq);
        let name = RenditionName::parse(info.name)?;
        let key = blob_keys::media_segment(&stream, &name, ready.seq);
        let stored = blob.head(&key).await?.is_some_and(|m| m.size > 0);
        ensure!(stored, "{key} was announced but not stored");
    }
    ensure!(seen.contains_key("audio"), "no audio-only rendition");
    let mut renditions = Vec::new();
    for (name, (size, mut seqs)) in seen {
        seqs.sort_unstable();
        seqs.dedup();
        let (got, want) = (seqs.len(), chunks.len());
        ensure!(got == want, "{name}: {got} segments for {want} chunks");
        if let Some((width, height)) = size {
            let rung = settings.ladder.iter().find(|r| r.name == name);
            let bitrate = rung
                .context("a rendition outside the ladder")?
                .video_bitrate;
            renditions.push(Rendition {
                name,
                width,
                height,
                bitrate,
            });
        }
    }
    renditions.sort_by_key(|r| std::cmp::Reverse(r.height));
    Ok(WorkerRun {
        measure,
        per_chunk,
        renditions,
        rss_kib: (rss_before, livecast_bench::rss_kib()),
    })
}

/// (b): one ffmpeg process, the whole source, the worker's ladder and x264 settings.
fn run_ffmpeg(
    source: &Path,
    scratch: &Path,
    rungs: &[Rendition],
    settings: &WorkerSettings,
    tick: f64,
    segments: usize,
) -> anyhow::Result<Measure> {
    let dir = tempfile::tempdir_in(scratch)?;
    // The worker starts a fresh encoder per chunk: an IDR every 2 s, and with low latency
    // (the default) one more opening the third 467 ms part of each chunk (frame 28), with x264
    // lookahead off.
    let gop = (FPS * CHUNK_SECONDS).to_string();
    let mut params = format!("scenecut=0:open-gop=0:bframes=0:keyint={gop}:min-keyint={gop}");
    let mut keyframes = format!("expr:eq(mod(n,{gop}),0)");
    if settings.low_latency {
        params.push_str(":rc-lookahead=0:sync-lookahead=0:mbtree=0");
        keyframes = format!("expr:eq(mod(n,{gop}),0)+eq(mod(n,{gop}),28)");
    }
    let mut graph = format!("[0:v]split={}", rungs.len());
    let mut chains = String::new();
    let mut outputs: Vec<String> = Vec::new();
    for (i, rung) in rungs.iter().enumerate() {
        graph.push_str(&format!("[s{i}]"));
        let mut label = format!("[s{i}]");
        // The worker hands x264 the decoded picture when the size already fits, else a
        // bilinear scale.
        if (rung.width, rung.height) != (1280, 720) {
            label = format!("[v{i}]");
            let (w, h) = (rung.width, rung.height);
            chains.push_str(&format!(";[s{i}]scale={w}:{h}:flags=bilinear{label}"));
        }
        let (rate, buffer) = (rung.bitrate.to_string(), (2 * rung.bitrate).to_string());
        #[rustfmt::skip]
        let video = [
            "-map", &label, "-map", "0:a", "-fps_mode", "passthrough",
            "-c:v", "libx264", "-preset", &settings.preset, "-profile:v", "high",
            "-b:v", &rate, "-maxrate", &rate, "-bufsize", &buffer,
            "-bf", "0", "-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0",
            "-x264-params", &params, "-force_key_frames", &keyframes, "-c:a", "copy",
        ];
        outputs.extend(video.map(String::from));
        outputs.extend(hls_output(dir.path(), &rung.name)?);
    }
    outputs.extend(["-map", "0:a", "-c:a", "copy"].map(String::from));
    outputs.extend(hls_output(dir.path(), "audio")?);
    graph.push_str(&chains);

    let mut command = Command::new("ffmpeg");
    command
        .args([
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-loglevel",
            "error",
            "-y",
        ])
        .arg("-i")
        .arg(source)
        .args(["-filter_complex", &graph])
        .args(&outputs);
    let (measure, log) = support::run_child(&mut command, tick)?;
    ensure!(log.trim().is_empty(), "ffmpeg complained: {log}");
    for name in rungs.iter().map(|r| r.name.as_str()).chain(["audio"]) {
        let written = std::fs::read_dir(dir.path().join(name))?
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "m4s"))
            .count();
        // Audio alone is cut on AAC frames and may end with one short extra segment.
        ensure!(
            written >= segments,
            "ffmpeg wrote {written} {name} segments"
        );
    }
    Ok(measure)
}

/// Output options of one rendition as fMP4 HLS, like the worker's CMAF segments.
fn hls_output(dir: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    let out = dir.join(name);
    std::fs::create_dir_all(&out)?;
    let segment = out.join("%d.m4s").display().to_string();
    let playlist = out.join("index.m3u8").display().to_string();
    #[rustfmt::skip]
    let args = [
        "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", &segment, &playlist,
    ];
    Ok(args.map(String::from).to_vec())
}
