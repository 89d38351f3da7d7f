//! Simulated HLS viewers of one live stream, each following its playlists like a player: the
//! master playlist once, one rendition (round-robin over the variants), its `init.mp4` once,
//! then every segment from the live edge minus 3 on, re-polling the media playlist every half
//! target duration until the time is up. Viewers start staggered over the ramp. Prints latency
//! (to the last byte, and to the response head) per request kind, requests per second, errors,
//! and, with `--pid`, the server's CPU seconds and resident memory. Exits non-zero when any
//! request failed (non-2xx, connection error, timeout) or no segment was fetched at all.
//!
//! ```text
//! viewer-load [--viewers N] [--seconds S] [--ramp S] [--timeout S] [--pid PID]...
//!             [--label NAME] [--summary FILE] MASTER_URL
//! ```

#[path = "../viewer_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::Url;
use support::MediaPlaylist;
use tokio::time::{sleep, sleep_until};

const USAGE: &str = "usage: viewer-load [--viewers N] [--seconds S] [--ramp S] [--timeout S] \
                     [--pid PID]... [--label NAME] [--summary FILE] MASTER_URL";

/// How many failed requests are described on stderr (the rest are only counted).
const ERRORS_SHOWN: usize = 10;

/// How often the server's resident memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// Segments a player starts behind the newest listed one (hls.js and AVPlayer use 3).
const LIVE_EDGE_OFFSET: usize = 3;

struct Args {
    viewers: usize,
    seconds: f64,
    ramp: f64,
    timeout: f64,
    pids: Vec<u32>,
    label: String,
    summary: Option<PathBuf>,
    url: Url,
}

fn parse_args() -> anyhow::Result<Args> {
    let (mut viewers, mut seconds, mut ramp, mut timeout) = (100usize, 20.0f64, None, 10.0f64);
    let (mut pids, mut label, mut summary, mut url) = (Vec::new(), None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if arg.starts_with("--") => (flag.to_owned(), Some(value.into())),
            _ => (arg.clone(), None),
        };
        if !flag.starts_with("--") {
            ensure!(url.is_none(), "more than one URL given\n{USAGE}");
            url = Some(Url::parse(&arg).with_context(|| format!("URL {arg:?}"))?);
            continue;
        }
        let value: String = match inline {
            Some(value) => value,
            None => args
                .next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))?,
        };
        let bad = || format!("{flag} {value:?}");
        match flag.as_str() {
            "--viewers" => viewers = value.parse().with_context(bad)?,
            "--seconds" => seconds = value.parse().with_context(bad)?,
            "--ramp" => ramp = Some(value.parse().with_context(bad)?),
            "--timeout" => timeout = value.parse().with_context(bad)?,
            "--pid" => pids.push(value.parse().with_context(bad)?),
            "--label" => label = Some(value),
            "--summary" => summary = Some(PathBuf::from(value)),
            _ => bail!("unknown option {flag}\n{USAGE}"),
        }
    }
    let url = url.with_context(|| format!("no master playlist URL\n{USAGE}"))?;
    ensure!(viewers > 0, "--viewers must be at least 1");
    ensure!(
        seconds > 0.0 && timeout > 0.0,
        "--seconds and --timeout must be positive"
    );
    // Start over the first few seconds, at most a quarter of the run.
    let ramp = ramp.unwrap_or((seconds / 4.0).min(5.0)).clamp(0.0, seconds);
    Ok(Args {
        viewers,
        seconds,
        ramp,
        timeout,
        pids,
        label: label.unwrap_or_else(|| url.host_str().unwrap_or("server").to_owned()),
        summary,
        url,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Master,
    Playlist,
    Init,
    Segment,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Master, Kind::Playlist, Kind::Init, Kind::Segment];

    fn name(self) -> &'static str {
        match self {
            Kind::Master => "master playlist",
            Kind::Playlist => "media playlist",
            Kind::Init => "init segment",
            Kind::Segment => "media segment",
        }
    }
}

/// What one kind of request measured.
#[derive(Default)]
struct KindStats {
    /// Request sent to last body byte, of successful requests, in microseconds.
    total_us: Vec<u32>,
    /// Request sent to response head, of successful requests, in microseconds.
    head_us: Vec<u32>,
    bytes: u64,
    errors: u64,
}

/// What one viewer (and, merged, all of them) measured.
#[derive(Default)]
struct Recorder {
    kinds: [KindStats; 4],
    /// Failures by kind and cause.
    errors: BTreeMap<String, u64>,
    /// Segments whose download took longer than their duration (a player would stall).
    late: u64,
    /// Segments that left the live window before this viewer asked for them.
    skipped: u64,
    /// Segments listed as gaps (`EXT-X-GAP`): a player takes another rendition for them.
    gaps: u64,
    /// Viewers that got a master playlist and started playing.
    playing: u64,
    /// Viewers that saw `EXT-X-ENDLIST` (the stream ended under them).
    saw_end: u64,
}

impl Recorder {
    fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.kinds.iter_mut().zip(other.kinds) {
            mine.total_us.extend(theirs.total_us);
            mine.head_us.extend(theirs.head_us);
            mine.bytes += theirs.bytes;
            mine.errors += theirs.errors;
        }
        for (cause, n) in other.errors {
            *self.errors.entry(cause).or_default() += n;
        }
        self.late += other.late;
        self.skipped += other.skipped;
        self.gaps += other.gaps;
        self.playing += other.playing;
        self.saw_end += other.saw_end;
    }

    fn error_count(&self) -> u64 {
        self.kinds.iter().map(|k| k.errors).sum()
    }
}

/// What every viewer shares.
struct Shared {
    client: reqwest::Client,
    master: Url,
    deadline: tokio::time::Instant,
    errors_shown: AtomicUsize,
}

impl Shared {
    /// One GET, measured and recorded; the body when it succeeded.
    async fn fetch(&self, url: &Url, kind: Kind, rec: &mut Recorder) -> Option<bytes::Bytes> {
        let sent = Instant::now();
        let outcome = async {
            let response = self.client.get(url.clone()).send().await;
            let response = response.map_err(|e| (cause(&e), e.to_string()))?;
            let head = sent.elapsed();
            let status = response.status();
            if !status.is_success() {
                let body = response.text().await.unwrap_or_default();
                return Err((format!("HTTP {}", status.as_u16()), body));
            }
            let body = response.bytes().await;
            let body = body.map_err(|e| (cause(&e), e.to_string()))?;
            Ok((head, body))
        }
        .await;
        let stats = &mut rec.kinds[kind as usize];
        match outcome {
            Ok((head, body)) => {
                stats.total_us.push(micros(sent.elapsed()));
                stats.head_us.push(micros(head));
                stats.bytes += body.len() as u64;
                Some(body)
            }
            Err((cause, detail)) => {
                stats.errors += 1;
                *rec.errors
                    .entry(format!("{}: {cause}", kind.name()))
                    .or_default() += 1;
                if self.errors_shown.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                    let detail: String = detail.chars().take(200).collect();
                    eprintln!(
                        "error after {:.0} ms: GET {url}: {cause}: {detail}",
                        sent.elapsed().as_secs_f64() * 1e3
                    );
                }
                None
            }
        }
    }

    fn time_is_up(&self) -> bool {
        tokio::time::Instant::now() >= self.deadline
    }
}

fn cause(error: &reqwest::Error) -> String {
    let cause = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection refused or failed"
    } else if error.is_body() || error.is_decode() {
        "body cut short"
    } else if error.is_request() {
        "request failed (connection closed?)"
    } else {
        "other"
    };
    cause.to_owned()
}

fn micros(elapsed: Duration) -> u32 {
    u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)
}

/// One viewer, from its start until the time is up.
async fn viewer(n: usize, shared: Arc<Shared>, start: tokio::time::Instant) -> Recorder {
    let mut rec = Recorder::default();
    sleep_until(start).await;
    // The master playlist, until it lists a variant.
    let media_url = loop {
        if shared.time_is_up() {
            return rec;
        }
        if let Some(body) = shared.fetch(&shared.master, Kind::Master, &mut rec).await {
            let variants = support::variant_uris(&String::from_utf8_lossy(&body));
            if !variants.is_empty() {
                match shared.master.join(&variants[n % variants.len()]) {
                    Ok(url) => break url,
                    Err(e) => {
                        *rec.errors
                            .entry(format!("master playlist: bad variant URI: {e}"))
                            .or_default() += 1;
                        rec.kinds[Kind::Master as usize].errors += 1;
                        return rec;
                    }
                }
            }
            *rec.errors
                .entry("master playlist: no variants".into())
                .or_default() += 1;
            rec.kinds[Kind::Master as usize].errors += 1;
        }
        sleep(Duration::from_secs(1)).await;
    };
    rec.playing += 1;

    let mut next_seq: Option<u64> = None;
    let mut init_done = false;
    let mut poll_every = Duration::from_secs(1);
    loop {
        let polled = tokio::time::Instant::now();
        if polled >= shared.deadline {
            break;
        }
        if let Some(body) = shared.fetch(&media_url, Kind::Playlist, &mut rec).await {
            let playlist = MediaPlaylist::parse(&String::from_utf8_lossy(&body));
            poll_every = Duration::from_secs_f64(playlist.target_duration / 2.0);
            if !init_done && let Some(map) = &playlist.map_uri {
                match media_url.join(map) {
                    Ok(url) => {
                        init_done = shared.fetch(&url, Kind::Init, &mut rec).await.is_some();
                    }
                    Err(_) => init_done = true,
                }
            }
            if let (Some(first), Some(last)) = (playlist.segments.first(), playlist.segments.last())
            {
                let from = match next_seq {
                    None => {
                        let at = playlist.segments.len().saturating_sub(LIVE_EDGE_OFFSET);
                        playlist.segments[at].seq
                    }
                    // The window slid past segments this viewer never got to.
                    Some(next) if next < first.seq => {
                        rec.skipped += first.seq - next;
                        first.seq
                    }
                    // The sequence went back a long way: a new stream; start over.
                    Some(next) if next > last.seq + 1 + playlist.segments.len() as u64 => first.seq,
                    Some(next) => next,
                };
                next_seq = Some(from);
                for segment in playlist.segments.iter().filter(|s| s.seq >= from) {
                    if shared.time_is_up() {
                        break;
                    }
                    // Not made (the worker was short of CPU): a player takes another rendition.
                    if segment.gap {
                        rec.gaps += 1;
                        next_seq = Some(segment.seq + 1);
                        continue;
                    }
                    let Ok(url) = media_url.join(&segment.uri) else {
                        continue;
                    };
                    let sent = Instant::now();
                    if shared.fetch(&url, Kind::Segment, &mut rec).await.is_some()
                        && segment.duration > 0.0
                        && sent.elapsed().as_secs_f64() > segment.duration
                    {
                        rec.late += 1;
                    }
                    // A failed segment is counted and passed over, not retried.
                    next_seq = Some(segment.seq + 1);
                }
            }
            if playlist.ended
                && next_seq.is_some_and(|n| n > playlist.segments.last().map_or(0, |s| s.seq))
            {
                rec.saw_end += 1;
                break;
            }
        }
        sleep_until((polled + poll_every).min(shared.deadline)).await;
    }
    rec
}

/// The server's processes and their CPU time and memory over the run.
struct ServerWatch {
    pids: Vec<u32>,
    start_cpu: BTreeMap<u32, f64>,
    start_rss_kib: u64,
    peak_rss_kib: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl ServerWatch {
    fn start(pids: Vec<u32>) -> Self {
        let tracked = support::with_children(&pids);
        let start_cpu = tracked
            .iter()
            .map(|&pid| (pid, support::cpu_seconds(pid)))
            .collect();
        let rss = move |pids: &[u32]| -> u64 {
            support::with_children(pids)
                .iter()
                .map(|&pid| support::status_kib(pid, "VmRSS"))
                .sum()
        };
        let start_rss_kib = rss(&pids);
        let peak_rss_kib = Arc::new(AtomicUsize::new(start_rss_kib as usize));
        let stop = Arc::new(AtomicBool::new(false));
        if !pids.is_empty() {
            let (pids, peak, stop) = (pids.clone(), peak_rss_kib.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(&pids) as usize, Ordering::Relaxed);
                    sleep(SAMPLE_EVERY).await;
                }
            });
        }
        ServerWatch {
            pids,
            start_cpu,
            start_rss_kib,
            peak_rss_kib,
            stop,
        }
    }

    /// Processes watched, CPU seconds used since the start, RSS at the start and its sampled
    /// peak, and the sum of the processes' lifetime high-water marks (all KiB).
    fn finish(self) -> (usize, f64, u64, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let mut tracked = support::with_children(&self.pids);
        tracked.extend(self.start_cpu.keys().copied());
        let cpu = tracked
            .iter()
            .map(|pid| support::cpu_seconds(*pid) - self.start_cpu.get(pid).copied().unwrap_or(0.0))
            .sum::<f64>()
            .max(0.0);
        let hwm = tracked
            .iter()
            .map(|&pid| support::status_kib(pid, "VmHWM"))
            .sum();
        (
            tracked.len(),
            cpu,
            self.start_rss_kib,
            self.peak_rss_kib.load(Ordering::Relaxed) as u64,
            hwm,
        )
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(args.timeout))
        .no_proxy()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        // Below the server's keep-alive timeout, so a reused connection is not one it is closing.
        .pool_idle_timeout(Duration::from_secs(4))
        .build()?;
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs_f64(args.seconds);
    let shared = Arc::new(Shared {
        client,
        master: args.url.clone(),
        deadline,
        errors_shown: AtomicUsize::new(0),
    });
    println!(
        "viewer-load {}: {} viewers for {} s (started over {} s), {}",
        args.label, args.viewers, args.seconds, args.ramp, args.url
    );

    let watch = ServerWatch::start(args.pids.clone());
    let (own_cpu_start, machine_start) = (support::own_cpu_seconds(), support::machine_jiffies());
    let began = Instant::now();
    let tasks: Vec<_> = (0..args.viewers)
        .map(|n| {
            let offset = args.ramp * n as f64 / args.viewers as f64;
            let at = start + Duration::from_secs_f64(offset);
            tokio::spawn(viewer(n, shared.clone(), at))
        })
        .collect();
    let mut all = Recorder::default();
    for task in tasks {
        all.merge(task.await.context("viewer task")?);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let own_cpu = support::own_cpu_seconds() - own_cpu_start;
    let machine_end = support::machine_jiffies();
    let (processes, cpu, start_rss, peak_rss, hwm) = watch.finish();

    // The table.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| request | count | req/s | p50 ms | p99 ms | max ms | head p50 ms | head p99 ms | MB | errors |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    let mut summary = format!(
        "label={}\nviewers={}\nseconds={}\n",
        args.label, args.viewers, args.seconds
    );
    let mut everything = KindStats::default();
    for kind in Kind::ALL {
        let stats = &mut all.kinds[kind as usize];
        stats.total_us.sort_unstable();
        stats.head_us.sort_unstable();
        row(&mut out, kind.name(), stats, elapsed);
        let key = match kind {
            Kind::Master => "master",
            Kind::Playlist => "playlist",
            Kind::Init => "init",
            Kind::Segment => "segment",
        };
        let _ = writeln!(
            summary,
            "{key}_count={}\n{key}_p50_ms={:.3}\n{key}_p99_ms={:.3}\n{key}_max_ms={:.3}",
            stats.total_us.len(),
            support::percentile_ms(&stats.total_us, 0.50),
            support::percentile_ms(&stats.total_us, 0.99),
            support::percentile_ms(&stats.total_us, 1.0),
        );
        everything.total_us.extend(&stats.total_us);
        everything.head_us.extend(&stats.head_us);
        everything.bytes += stats.bytes;
        everything.errors += stats.errors;
    }
    everything.total_us.sort_unstable();
    everything.head_us.sort_unstable();
    row(&mut out, "**all**", &everything, elapsed);
    print!("{out}");

    let requests = everything.total_us.len() as u64 + everything.errors;
    let errors = all.error_count();
    let (busy, total) = (
        machine_end.0.saturating_sub(machine_start.0),
        machine_end.1.saturating_sub(machine_start.1),
    );
    let machine_busy = if total > 0 {
        100.0 * busy as f64 / total as f64
    } else {
        0.0
    };
    println!(
        "{:.1} s; {:.0} req/s, {:.1} MB/s; viewers playing {} of {}; segments slower than their \
         duration {}, skipped (fell out of the window) {}, gaps passed over {}; saw ENDLIST {}",
        elapsed,
        requests as f64 / elapsed,
        everything.bytes as f64 / 1e6 / elapsed,
        all.playing,
        args.viewers,
        all.late,
        all.skipped,
        all.gaps,
        all.saw_end
    );
    if !args.pids.is_empty() {
        println!(
            "server ({processes} process(es) from pid {:?}): CPU {cpu:.1} s ({:.0} % of a core); \
             RSS {} MiB at start, peak {} MiB (sampled every {} ms), VmHWM {} MiB",
            args.pids,
            100.0 * cpu / elapsed,
            start_rss / 1024,
            peak_rss / 1024,
            SAMPLE_EVERY.as_millis(),
            hwm / 1024
        );
    }
    println!(
        "load tool CPU {own_cpu:.1} s ({:.0} % of a core); machine CPU busy {machine_busy:.0} % \
         over the run",
        100.0 * own_cpu / elapsed
    );
    if errors == 0 {
        println!("errors: 0");
    } else {
        println!("errors: {errors}");
        for (cause, n) in &all.errors {
            println!("  {n} {cause}");
        }
    }
    let _ = write!(
        summary,
        "requests={requests}\nreq_per_s={:.3}\nerrors={errors}\nlate={}\nskipped={}\n\
         server_cpu_s={cpu:.3}\nserver_rss_start_mib={:.1}\nserver_rss_peak_mib={:.1}\n\
         load_cpu_s={own_cpu:.3}\nmachine_busy_pct={machine_busy:.1}\nelapsed_s={elapsed:.3}\n",
        requests as f64 / elapsed,
        all.late,
        all.skipped,
        start_rss as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
    );
    if let Some(path) = &args.summary {
        std::fs::write(path, summary).with_context(|| format!("writing {}", path.display()))?;
    }
    ensure!(errors == 0, "{errors} request(s) failed");
    ensure!(
        !all.kinds[Kind::Segment as usize].total_us.is_empty(),
        "no media segment was fetched"
    );
    Ok(())
}

fn row(out: &mut String, name: &str, stats: &KindStats, elapsed: f64) {
    let ms = |v: &[u32], q| support::percentile_ms(v, q);
    let _ = writeln!(
        out,
        "| {name} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} | {} |",
        stats.total_us.len(),
        stats.total_us.len() as f64 / elapsed,
        ms(&stats.total_us, 0.50),
        ms(&stats.total_us, 0.99),
        ms(&stats.total_us, 1.0),
        ms(&stats.head_us, 0.50),
        ms(&stats.head_us, 0.99),
        stats.bytes as f64 / 1e6,
        stats.errors
    );
}
