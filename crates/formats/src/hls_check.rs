//! A validator of HLS media playlists against the Low-Latency HLS rules of RFC 8216bis
//! (draft-pantos-hls-rfc8216bis): partial segments, preload hints, rendition reports, delta
//! updates and blocking reloads. The streaming edge's tests and the benchmarks use it to assert
//! that what the edge serves is a playlist players accept.
//!
//! [`check_media`] lists every rule one playlist breaks, [`check_reload`] the rules between two
//! successive reloads, and [`check_blocking_answer`] those of an answer to a blocking reload.
//! Each [`Violation`] names its rule:
//!
//! | rule | what it asks |
//! |---|---|
//! | `syntax` | known tags carry well-formed values; every `#EXTINF` is followed by a URI |
//! | `extm3u` | the first line is `#EXTM3U` |
//! | `target-duration` | `#EXT-X-TARGETDURATION` is present |
//! | `segment-duration` | every `#EXTINF`, rounded to the nearest second, is at most the target duration |
//! | `part-inf` | `#EXT-X-PART-INF` is present exactly when parts are, with a `PART-TARGET` above zero |
//! | `part-duration` | no part lasts longer than `PART-TARGET` (1 ms slack) |
//! | `part-duration-floor` | parts last at least 85% of `PART-TARGET` (§4.4.4.9), except a parent's last part and `INDEPENDENT=YES` parts |
//! | `parts-sum` | the parts of a completed segment add up to its `#EXTINF` (1 ms slack per part) |
//! | `part-hold-back` | with parts, `PART-HOLD-BACK` is present and at least 3 × `PART-TARGET` (the RFC's SHOULD; its MUST is 2 ×) |
//! | `can-skip-until` | `CAN-SKIP-UNTIL` is at least 6 × the target duration |
//! | `skip-version` | `#EXT-X-SKIP` needs `#EXT-X-VERSION` 9 or more |
//! | `skip-placement` | `#EXT-X-SKIP` appears at most once, before any segment or part |
//! | `preload-hint` | a live playlist with parts has exactly one `TYPE=PART` preload hint |
//! | `preload-hint-with-endlist` | an ended playlist has no preload hint |
//! | `preload-hint-uri` | the hinted part is not one already listed (same URI, or an overlapping byte range) |
//! | `stale-parts` | no part starts more than 3 target durations before the end (§6.2.2 says such parts SHOULD be removed) |
//! | `rendition-report` | a live playlist with parts has rendition reports, each with `LAST-MSN` and `LAST-PART` |
//! | `independent-parts` | under `#EXT-X-INDEPENDENT-SEGMENTS`, each parent's first listed part is `INDEPENDENT=YES` |
//!
//! [`check_reload`] adds `reload-media-sequence`, `reload-live-edge`, `reload-segment-changed` and
//! `reload-ended`; [`check_blocking_answer`] adds `blocking-answer` and `blocking-support`.
//! Media sequence numbers count from `#EXT-X-MEDIA-SEQUENCE` plus any `SKIPPED-SEGMENTS`.

use std::fmt;

use parse::{Hint, Scan, no_header, no_target_duration, scan, starts_with_header};

/// Slack allowed when comparing durations written with rounded decimals: one millisecond.
const SLACK: f64 = 0.001;

/// One rule a playlist breaks, said plainly (for assertion messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule's short name (see the module documentation for the list).
    pub rule: &'static str,
    /// What breaks it, naming the segment, part or tag concerned.
    pub detail: String,
}

impl Violation {
    fn new(rule: &'static str, detail: impl Into<String>) -> Self {
        Self {
            rule,
            detail: detail.into(),
        }
    }

    fn within(self, which: &str) -> Self {
        Self {
            detail: format!("{which} playlist: {}", self.detail),
            ..self
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What a media playlist says, parsed leniently (unknown tags ignored).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// `#EXT-X-VERSION`, 1 when absent.
    pub version: u32,
    /// `#EXT-X-TARGETDURATION`, in seconds.
    pub target_duration: u64,
    /// `#EXT-X-MEDIA-SEQUENCE`, 0 when absent.
    pub media_sequence: u64,
    /// `PART-TARGET` of `#EXT-X-PART-INF`, in seconds.
    pub part_target: Option<f64>,
    /// Whether `#EXT-X-SERVER-CONTROL` says `CAN-BLOCK-RELOAD=YES`.
    pub can_block_reload: bool,
    /// `PART-HOLD-BACK` of `#EXT-X-SERVER-CONTROL`, in seconds.
    pub part_hold_back: Option<f64>,
    /// `CAN-SKIP-UNTIL` of `#EXT-X-SERVER-CONTROL`, in seconds.
    pub can_skip_until: Option<f64>,
    /// The completed segments listed, in order.
    pub segments: Vec<Segment>,
    /// Parts of the open parent segment, listed after the last `#EXTINF`.
    pub trailing_parts: Vec<Part>,
    /// URI of the `TYPE=PART` `#EXT-X-PRELOAD-HINT`.
    pub preload_hint: Option<String>,
    /// The `#EXT-X-RENDITION-REPORT` tags, in order.
    pub rendition_reports: Vec<RenditionReport>,
    /// Whether `#EXT-X-ENDLIST` is present.
    pub ended: bool,
    /// `SKIPPED-SEGMENTS` of `#EXT-X-SKIP` (a delta update), 0 when absent.
    pub skipped_segments: u64,
}

/// A completed media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Its media sequence number.
    pub msn: u64,
    /// Its `#EXTINF` duration, in seconds.
    pub duration: f64,
    /// Its URI line.
    pub uri: String,
    /// The parts listed before its `#EXTINF`.
    pub parts: Vec<Part>,
}

/// A partial segment (`#EXT-X-PART`).
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// `DURATION`, in seconds.
    pub duration: f64,
    /// `URI`.
    pub uri: String,
    /// Whether it says `INDEPENDENT=YES`.
    pub independent: bool,
    /// `BYTERANGE` as written (`length[@offset]`).
    pub byterange: Option<String>,
}

/// An `#EXT-X-RENDITION-REPORT` tag.
#[derive(Debug, Clone, PartialEq)]
pub struct RenditionReport {
    /// `URI` of the reported rendition's playlist.
    pub uri: String,
    /// `LAST-MSN`.
    pub last_msn: Option<u64>,
    /// `LAST-PART`.
    pub last_part: Option<u64>,
}

/// Reads a media playlist; an error for text that is not one (no `#EXTM3U`, no target
/// duration, or a malformed value in a tag this module knows).
pub fn parse_media(text: &str) -> Result<MediaPlaylist, Violation> {
    if !starts_with_header(text) {
        return Err(no_header());
    }
    let scan = scan(text)?;
    match scan.has_target_duration {
        true => Ok(scan.playlist),
        false => Err(no_target_duration()),
    }
}

/// Every rule `text` breaks on its own.
pub fn check_media(text: &str) -> Vec<Violation> {
    let scan = match scan(text) {
        Ok(scan) => scan,
        Err(violation) if starts_with_header(text) => return vec![violation],
        Err(violation) => return vec![no_header(), violation],
    };
    let mut found = Findings::default();
    check_durations(&scan, &mut found);
    check_parts(&scan, &mut found);
    check_server_control(&scan, &mut found);
    check_skip(&scan, &mut found);
    check_preload_hints(&scan, &mut found);
    check_stale_parts(&scan, &mut found);
    check_rendition_reports(&scan, &mut found);
    found.0
}

/// Rules between two successive reloads of the same playlist (`next` fetched after
/// `previous`): the media sequence number and the last (msn, part) never go backwards;
/// segments that stay listed keep their URI and duration; an ended playlist stays ended.
pub fn check_reload(previous: &str, next: &str) -> Vec<Violation> {
    let (before, after) = match (parse_media(previous), parse_media(next)) {
        (Ok(before), Ok(after)) => (before, after),
        (before, after) => {
            let before = before.err().map(|v| v.within("previous"));
            let after = after.err().map(|v| v.within("next"));
            return before.into_iter().chain(after).collect();
        }
    };
    let mut found = Findings::default();
    let (old_sequence, new_sequence) = (before.media_sequence, after.media_sequence);
    if new_sequence < old_sequence {
        let detail =
            format!("EXT-X-MEDIA-SEQUENCE went back from {old_sequence} to {new_sequence}");
        found.flag("reload-media-sequence", detail);
    }
    let (old_edge, new_edge) = (live_edge(&before), live_edge(&after));
    if new_edge < old_edge {
        let (old_edge, new_edge) = (describe_edge(old_edge), describe_edge(new_edge));
        let detail = format!("the live edge went back from {old_edge} to {new_edge}");
        found.flag("reload-live-edge", detail);
    }
    let first = before.segments.first().map_or(0, |s| s.msn);
    for segment in &after.segments {
        let offset = segment.msn.checked_sub(first);
        let index = offset.and_then(|i| usize::try_from(i).ok());
        let Some(earlier) = index.and_then(|i| before.segments.get(i)) else {
            continue;
        };
        if earlier.uri != segment.uri || (earlier.duration - segment.duration).abs() > SLACK {
            let (msn, was, was_s) = (segment.msn, &earlier.uri, earlier.duration);
            let (now, now_s) = (&segment.uri, segment.duration);
            let detail =
                format!("segment {msn} was {was} ({was_s} s) and is now {now} ({now_s} s)");
            found.flag("reload-segment-changed", detail);
        }
    }
    if before.ended && !after.ended {
        found.flag("reload-ended", "EXT-X-ENDLIST disappeared on reload");
    }
    found.0
}

/// Rules of an answer to a blocking reload `_HLS_msn=msn[&_HLS_part=part]` (§6.2.5.2): it
/// contains segment `msn` (or part `part` of `msn`, or a later one), unless the playlist has
/// ENDLIST; a part index past the final part of a completed `msn` stands for part 0 of the next
/// segment. The answer must also advertise `CAN-BLOCK-RELOAD=YES` (rule `blocking-support`).
pub fn check_blocking_answer(text: &str, msn: u64, part: Option<u64>) -> Vec<Violation> {
    let playlist = match parse_media(text) {
        Ok(playlist) => playlist,
        Err(violation) => return vec![violation],
    };
    let mut found = Findings::default();
    if !playlist.can_block_reload {
        let detail = "the answer's EXT-X-SERVER-CONTROL lacks CAN-BLOCK-RELOAD=YES";
        found.flag("blocking-support", detail);
    }
    let segment = playlist.segments.iter().find(|s| s.msn == msn);
    let parts_of_msn = segment.map(|s| s.parts.len());
    let next_segment = (msn.saturating_add(1), 0);
    let wanted = match (part, parts_of_msn) {
        (None, _) => (msn, u64::MAX),
        (Some(index), Some(count)) if count > 0 && index >= count as u64 => next_segment,
        (Some(index), _) => (msn, index),
    };
    let edge = live_edge(&playlist);
    if !playlist.ended && edge.is_none_or(|edge| edge < wanted) {
        let asked = match part {
            Some(part) => format!("part {part} of segment {msn}"),
            None => format!("segment {msn}"),
        };
        let detail = format!(
            "asked for {asked}, the answer ends at {}",
            describe_edge(edge)
        );
        found.flag("blocking-answer", detail);
    }
    found.0
}

/// The violations found so far.
#[derive(Default)]
struct Findings(Vec<Violation>);

impl Findings {
    fn flag(&mut self, rule: &'static str, detail: impl Into<String>) {
        self.0.push(Violation::new(rule, detail));
    }
}

/// The newest (msn, part index) listed; a completed segment ranks after all of its parts.
fn live_edge(playlist: &MediaPlaylist) -> Option<(u64, u64)> {
    match playlist.trailing_parts.len().checked_sub(1) {
        Some(last) => Some((open_msn(playlist), last as u64)),
        None => playlist.segments.last().map(|s| (s.msn, u64::MAX)),
    }
}

fn describe_edge(edge: Option<(u64, u64)>) -> String {
    match edge {
        None => "nothing (no segment or part listed)".into(),
        Some((msn, u64::MAX)) => format!("completed segment {msn}"),
        Some((msn, part)) => format!("part {part} of segment {msn}"),
    }
}

/// The media sequence number of the segment after the last completed one.
fn open_msn(playlist: &MediaPlaylist) -> u64 {
    let last = playlist.segments.last();
    last.map_or(first_msn(playlist), |s| s.msn.saturating_add(1))
}

/// The media sequence number of the first segment listed.
fn first_msn(playlist: &MediaPlaylist) -> u64 {
    playlist
        .media_sequence
        .saturating_add(playlist.skipped_segments)
}

/// Each parent segment listing parts: its msn and its parts, the open parent last.
fn parents(playlist: &MediaPlaylist) -> impl Iterator<Item = (u64, &[Part])> {
    let open = Some((open_msn(playlist), playlist.trailing_parts.as_slice()));
    let segments = playlist.segments.iter();
    let completed = segments.map(|s| (s.msn, s.parts.as_slice()));
    completed.chain(open).filter(|(_, parts)| !parts.is_empty())
}

fn has_parts(playlist: &MediaPlaylist) -> bool {
    parents(playlist).next().is_some()
}

fn check_durations(scan: &Scan, found: &mut Findings) {
    if !scan.has_header {
        found.0.push(no_header());
    }
    if !scan.has_target_duration {
        return found.0.push(no_target_duration());
    }
    let target = scan.playlist.target_duration;
    for segment in &scan.playlist.segments {
        let (msn, duration, rounded) = (segment.msn, segment.duration, segment.duration.round());
        if rounded > target as f64 {
            let detail =
                format!("segment {msn} lasts {duration} s, over target duration {target} s");
            found.flag("segment-duration", detail);
        }
    }
}

fn check_parts(scan: &Scan, found: &mut Findings) {
    let playlist = &scan.playlist;
    let with_parts = has_parts(playlist);
    match playlist.part_target {
        None if with_parts => found.flag("part-inf", "parts listed without #EXT-X-PART-INF"),
        Some(_) if !with_parts => found.flag("part-inf", "#EXT-X-PART-INF without #EXT-X-PART"),
        Some(target) if target <= 0.0 => found.flag("part-inf", "PART-TARGET is not above zero"),
        _ => {}
    }
    for segment in playlist.segments.iter().filter(|s| !s.parts.is_empty()) {
        let sum: f64 = segment.parts.iter().map(|p| p.duration).sum();
        let (msn, duration) = (segment.msn, segment.duration);
        if (sum - duration).abs() > SLACK * segment.parts.len() as f64 {
            let detail =
                format!("the parts of segment {msn} add up to {sum:.3} s, not {duration} s");
            found.flag("parts-sum", detail);
        }
    }
    let target = playlist.part_target.filter(|t| *t > 0.0);
    for (msn, parts) in parents(playlist).filter(|_| target.is_some()) {
        let target = target.unwrap_or_default();
        for (index, part) in parts.iter().enumerate() {
            let (uri, duration) = (&part.uri, part.duration);
            let at = format!("part {index} of segment {msn} ({uri})");
            if duration > target + SLACK {
                let detail = format!("{at} lasts {duration} s, over PART-TARGET {target} s");
                found.flag("part-duration", detail);
            }
            let last = index + 1 == parts.len();
            if !last && !part.independent && duration < 0.85 * target - SLACK {
                let detail =
                    format!("{at} lasts {duration} s, under 85% of PART-TARGET {target} s");
                found.flag("part-duration-floor", detail);
            }
        }
    }
    for (msn, parts) in parents(playlist).filter(|_| scan.independent_segments) {
        if parts.first().is_some_and(|first| !first.independent) {
            let detail = format!("the first part of segment {msn} lacks INDEPENDENT=YES");
            found.flag("independent-parts", detail);
        }
    }
}

fn check_server_control(scan: &Scan, found: &mut Findings) {
    let playlist = &scan.playlist;
    if has_parts(playlist) || playlist.part_target.is_some() {
        match (playlist.part_hold_back, playlist.part_target) {
            (None, _) => found.flag("part-hold-back", "parts without PART-HOLD-BACK"),
            (Some(hold), Some(target)) if hold < 3.0 * target - SLACK => {
                let detail = format!("PART-HOLD-BACK {hold} s < 3 × PART-TARGET {target} s");
                found.flag("part-hold-back", detail);
            }
            _ => {}
        }
    }
    let target = playlist.target_duration;
    if let Some(until) = playlist.can_skip_until
        && scan.has_target_duration
        && until < 6.0 * target as f64
    {
        let detail = format!("CAN-SKIP-UNTIL {until} s is under 6 × target duration {target} s");
        found.flag("can-skip-until", detail);
    }
}

fn check_skip(scan: &Scan, found: &mut Findings) {
    let (skips, version) = (scan.skip_tags, scan.playlist.version);
    if skips > 0 && version < 9 {
        let detail = format!("EXT-X-SKIP needs EXT-X-VERSION 9 or more, not {version}");
        found.flag("skip-version", detail);
    }
    if skips > 1 {
        found.flag("skip-placement", format!("{skips} EXT-X-SKIP tags"));
    }
    if scan.skip_after_media {
        found.flag("skip-placement", "EXT-X-SKIP after a segment or part");
    }
}

fn check_preload_hints(scan: &Scan, found: &mut Findings) {
    let (playlist, hints) = (&scan.playlist, scan.part_hints.len());
    if playlist.ended && scan.hint_count > 0 {
        let detail = "an ended playlist keeps an EXT-X-PRELOAD-HINT";
        found.flag("preload-hint-with-endlist", detail);
    } else if !playlist.ended && has_parts(playlist) && hints != 1 {
        let detail =
            format!("a live playlist with parts needs 1 TYPE=PART preload hint, not {hints}");
        found.flag("preload-hint", detail);
    }
    let listed = scan
        .part_hints
        .iter()
        .filter(|h| hint_is_listed(h, playlist));
    for hint in listed {
        let detail = format!("the preload hint {} names a part already listed", hint.uri);
        found.flag("preload-hint-uri", detail);
    }
}

/// Whether a hint points at a listed part: the same URI, and (for byte-range parts) a start
/// offset before the end of a listed range of that resource.
fn hint_is_listed(hint: &Hint, playlist: &MediaPlaylist) -> bool {
    let mut previous_end: Option<(&str, u64)> = None;
    for part in parents(playlist).flat_map(|(_, parts)| parts) {
        let range = part.byterange.as_deref().and_then(byterange);
        let follows = previous_end.filter(|(uri, _)| *uri == part.uri);
        let written = range.and_then(|(_, offset)| offset);
        let offset = written.or(follows.map(|(_, end)| end));
        let end = range.map(|(length, _)| offset.unwrap_or(0).saturating_add(length));
        previous_end = end.map(|end| (part.uri.as_str(), end));
        let starts_after =
            matches!((hint.byterange_start, end), (Some(start), Some(end)) if start >= end);
        if part.uri == hint.uri && !starts_after {
            return true;
        }
    }
    false
}

/// `length[@offset]`.
fn byterange(text: &str) -> Option<(u64, Option<u64>)> {
    let (length, offset) = match text.split_once('@') {
        Some((length, offset)) => (length, Some(offset.trim().parse().ok()?)),
        None => (text, None),
    };
    Some((length.trim().parse().ok()?, offset))
}

fn check_stale_parts(scan: &Scan, found: &mut Findings) {
    let playlist = &scan.playlist;
    let horizon = 3.0 * playlist.target_duration as f64;
    let mut end_from_end: f64 = playlist.trailing_parts.iter().map(|p| p.duration).sum();
    for segment in playlist.segments.iter().rev() {
        let oldest = end_from_end + segment.parts.iter().map(|p| p.duration).sum::<f64>();
        if scan.has_target_duration && !segment.parts.is_empty() && oldest > horizon + SLACK {
            let msn = segment.msn;
            let detail = format!("segment {msn} lists parts from {oldest:.3} s before the end");
            found.flag("stale-parts", detail);
        }
        end_from_end += segment.duration;
    }
}

fn check_rendition_reports(scan: &Scan, found: &mut Findings) {
    let playlist = &scan.playlist;
    let with_parts = has_parts(playlist);
    if with_parts && !playlist.ended && playlist.rendition_reports.is_empty() {
        found.flag("rendition-report", "no EXT-X-RENDITION-REPORT");
    }
    for report in &playlist.rendition_reports {
        let uri = &report.uri;
        if report.last_msn.is_none() {
            found.flag("rendition-report", format!("{uri} lacks LAST-MSN"));
        }
        if with_parts && report.last_part.is_none() {
            found.flag("rendition-report", format!("{uri} lacks LAST-PART"));
        }
    }
}

mod parse;
#[cfg(test)]
mod tests;
