//! Helpers of `viewer-load`: the little of HLS a player needs (master variants, one media
//! playlist), latency summaries, and what Linux tells about a process's CPU time and resident
//! memory and about the machine's CPU. Included by the binary with `#[path]`.

use std::collections::BTreeSet;
use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const CLOCK_TICKS: f64 = 100.0;

/// The variant URIs of a master playlist, in order (the line after each `#EXT-X-STREAM-INF`).
pub fn variant_uris(master: &str) -> Vec<String> {
    let mut uris = Vec::new();
    let mut expecting = false;
    for line in master.lines().map(str::trim) {
        if line.starts_with("#EXT-X-STREAM-INF") {
            expecting = true;
        } else if expecting && !line.is_empty() && !line.starts_with('#') {
            uris.push(line.to_owned());
            expecting = false;
        }
    }
    uris
}

/// One listed media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed {
    /// Media sequence number (`EXT-X-MEDIA-SEQUENCE` plus its position).
    pub seq: u64,
    /// `EXTINF`, in seconds.
    pub duration: f64,
    /// As written, relative to the playlist.
    pub uri: String,
    /// `EXT-X-GAP`: not to be loaded; a player takes another rendition for its time.
    pub gap: bool,
}

/// What a player reads from a media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// `EXT-X-TARGETDURATION`, in seconds (2 when absent or unreadable).
    pub target_duration: f64,
    /// `EXT-X-MAP` URI, if any.
    pub map_uri: Option<String>,
    pub segments: Vec<Listed>,
    /// `EXT-X-ENDLIST` seen: the stream is over.
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> Self {
        let mut playlist = MediaPlaylist {
            target_duration: 2.0,
            ..MediaPlaylist::default()
        };
        let (mut seq, mut duration, mut gap) = (0u64, 0.0, false);
        for line in text.lines().map(str::trim) {
            if let Some(value) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                if let Ok(secs) = value.trim().parse::<f64>()
                    && secs > 0.0
                {
                    playlist.target_duration = secs;
                }
            } else if let Some(value) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
                seq = value.trim().parse().unwrap_or(0);
            } else if let Some(value) = line.strip_prefix("#EXT-X-MAP:") {
                playlist.map_uri = attribute(value, "URI");
            } else if let Some(value) = line.strip_prefix("#EXTINF:") {
                let number = value.split(',').next().unwrap_or("");
                duration = number.trim().parse().unwrap_or(0.0);
            } else if line == "#EXT-X-ENDLIST" {
                playlist.ended = true;
            } else if line == "#EXT-X-GAP" {
                gap = true;
            } else if !line.is_empty() && !line.starts_with('#') {
                playlist.segments.push(Listed {
                    seq,
                    duration,
                    uri: line.to_owned(),
                    gap: std::mem::take(&mut gap),
                });
                seq += 1;
            }
        }
        playlist
    }
}

/// A quoted attribute of an attribute list (`URI="init.mp4",BYTERANGE=...`).
fn attribute(list: &str, name: &str) -> Option<String> {
    let at = list.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &list[at..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// Percentile `q` (0..=1) of sorted microseconds, in milliseconds (nearest rank).
pub fn percentile_ms(sorted_us: &[u32], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let at = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    f64::from(sorted_us[at]) / 1e3
}

/// A process and what `/proc/{pid}/stat` says of it.
struct Stat {
    ppid: u32,
    /// utime + stime, in clock ticks.
    ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or parentheses itself.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // After the name: state(0) ppid(1) ... utime(11) stime(12).
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        ticks: fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?,
    })
}

/// `pids` and their direct children (nginx's master and its workers), as alive now.
pub fn with_children(pids: &[u32]) -> BTreeSet<u32> {
    let mut all: BTreeSet<u32> = pids.iter().copied().collect();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
                continue;
            };
            if stat(pid).is_some_and(|s| pids.contains(&s.ppid)) {
                all.insert(pid);
            }
        }
    }
    all
}

/// CPU seconds (user + system) a process has used so far (0 when it is gone).
pub fn cpu_seconds(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |s| s.ticks as f64 / CLOCK_TICKS)
}

/// CPU seconds this process has used so far.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id())
}

/// A `kB` field of `/proc/{pid}/status` (`VmRSS`, `VmHWM`), in KiB (0 when absent).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status.lines().find_map(|line| {
                let value = line.strip_prefix(field)?.strip_prefix(':')?;
                value.trim().trim_end_matches("kB").trim().parse().ok()
            })
        })
        .unwrap_or(0)
}

/// Busy and total jiffies of the whole machine (first line of `/proc/stat`).
pub fn machine_jiffies() -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let values: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().take(8).sum();
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}
