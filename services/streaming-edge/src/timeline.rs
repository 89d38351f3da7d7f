//! What the edge knows about one stream: its lifecycle, its renditions and, per rendition, the
//! ordered segments. Pure data with idempotent merges; [`crate::index`] feeds it from events and
//! the catalogue, [`crate::playlist`] renders it.

use std::collections::{BTreeMap, BTreeSet};

use livecast_core::{RenditionName, RenditionRecord, SegmentRecord, StreamStatus};

use crate::parts::{Part, PartAt, Parts};

/// A rendition whose newest segment is this many behind the stream's newest is no longer being
/// made (the worker encodes at most a couple of chunks at once).
const STILL_BEING_MADE: u64 = 2;
use livecast_proto::v1;

/// What a rendition is, as encoded (the master playlist is built from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenditionInfo {
    /// Picture width in pixels (0 for audio-only).
    pub width: u32,
    /// Picture height in pixels (0 for audio-only).
    pub height: u32,
    /// Peak bits per second.
    pub bandwidth: u32,
    /// Average bits per second.
    pub average_bandwidth: u32,
    /// RFC 6381 codecs string.
    pub codecs: String,
    /// Frames per second times 1000 (0 for audio-only).
    pub frame_rate_milli: u32,
    /// Whether it carries audio only.
    pub audio_only: bool,
}

impl From<&v1::RenditionInfo> for RenditionInfo {
    fn from(info: &v1::RenditionInfo) -> Self {
        RenditionInfo {
            width: info.width,
            height: info.height,
            bandwidth: info.bandwidth,
            average_bandwidth: info.average_bandwidth,
            codecs: info.codecs.clone(),
            frame_rate_milli: info.frame_rate_milli,
            audio_only: info.audio_only,
        }
    }
}

impl From<&RenditionRecord> for RenditionInfo {
    fn from(record: &RenditionRecord) -> Self {
        RenditionInfo {
            width: record.width,
            height: record.height,
            bandwidth: record.bandwidth,
            average_bandwidth: record.average_bandwidth,
            codecs: record.codecs.clone(),
            frame_rate_milli: record.frame_rate_milli,
            audio_only: record.audio_only,
        }
    }
}

/// One media segment as a playlist lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Sequence number, continuous per rendition.
    pub seq: u64,
    /// Duration in milliseconds.
    pub duration_ms: u32,
    /// Whether a discontinuity precedes it.
    pub discontinuity: bool,
    /// Wall-clock time of its first frame, milliseconds since the Unix epoch.
    pub program_date_time_ms: i64,
    /// Size in bytes (used to estimate a bandwidth the encoder did not report); 0 for a gap.
    pub size_bytes: u64,
}

impl Segment {
    /// Whether the segment is a gap: not made (the worker, short of CPU, kept the lower rungs
    /// live), listed with `EXT-X-GAP` so that players take another rendition for its time. A
    /// gap is announced and recorded with no bytes.
    pub fn is_gap(&self) -> bool {
        self.size_bytes == 0
    }
}

impl From<&SegmentRecord> for Segment {
    fn from(record: &SegmentRecord) -> Self {
        Segment {
            seq: record.seq,
            duration_ms: record.duration_ms,
            discontinuity: record.discontinuity,
            program_date_time_ms: record.program_date_time,
            size_bytes: record.size_bytes,
        }
    }
}

/// The segments of one rendition, by sequence number.
#[derive(Debug, Clone, Default)]
pub struct RenditionTimeline {
    info: Option<RenditionInfo>,
    segments: BTreeMap<u64, Segment>,
    discontinuities: BTreeSet<u64>,
    max_duration_ms: u32,
    parts: Parts,
}

impl RenditionTimeline {
    /// The partial segments of its newest segments (Low-Latency HLS).
    pub fn parts(&self) -> &Parts {
        &self.parts
    }

    /// What the rendition is, once an event or the catalogue said so.
    pub fn info(&self) -> Option<&RenditionInfo> {
        self.info.as_ref()
    }

    /// The segment `seq`, if indexed.
    pub fn segment(&self, seq: u64) -> Option<&Segment> {
        self.segments.get(&seq)
    }

    /// Whether no segment is indexed yet.
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Every indexed segment, in order.
    pub fn all(&self) -> Vec<Segment> {
        self.segments.values().copied().collect()
    }

    /// The first segment, in order.
    pub fn first(&self) -> Option<&Segment> {
        self.segments.values().next()
    }

    /// The segment with the highest sequence number.
    pub fn newest(&self) -> Option<&Segment> {
        self.segments.values().next_back()
    }

    /// The segments a live playlist lists: the newest `window` segments, never across a hole.
    ///
    /// A hole among the newest `window` segments (a segment announced out of order) holds the
    /// window back before it, so the late segment can still be listed in place and the media
    /// sequence never goes backwards. A hole older than that is taken as lost and skipped.
    ///
    /// The newest segment, whole but with parts still on their way (its event overtook them),
    /// is not listed yet: until they come it is the segment being made, its parts so far listed
    /// and the next one hinted, so that a player never sees the parts it follows vanish.
    pub fn live_window(&self, window: usize) -> Vec<Segment> {
        let window = window.max(1);
        let held = self
            .segments
            .keys()
            .next_back()
            .copied()
            .filter(|seq| self.parts.awaiting(*seq));
        let mut tail: Vec<u64> = self
            .segments
            .keys()
            .rev()
            .filter(|seq| Some(**seq) != held)
            .take(window)
            .copied()
            .collect();
        tail.reverse();
        let Some(&newest) = tail.last() else {
            return Vec::new();
        };
        let frontier = tail
            .windows(2)
            .find(|pair| pair[1] != pair[0] + 1)
            .map_or(newest, |pair| pair[0]);
        let mut listed: Vec<Segment> = Vec::with_capacity(window);
        for segment in self.segments.range(..=frontier).rev().map(|(_, s)| *s) {
            if listed
                .last()
                .is_some_and(|next| segment.seq + 1 != next.seq)
            {
                break;
            }
            listed.push(segment);
            if listed.len() == window {
                break;
            }
        }
        listed.reverse();
        listed
    }

    /// Discontinuities before `seq` (what `EXT-X-DISCONTINUITY-SEQUENCE` counts).
    pub fn discontinuities_before(&self, seq: u64) -> u64 {
        self.discontinuities.range(..seq).count() as u64
    }

    /// The longest segment, rounded up to whole seconds (at least 1): `EXT-X-TARGETDURATION`.
    /// Taken over every indexed segment, so it never shrinks while a stream is live.
    pub fn target_duration_secs(&self) -> u64 {
        u64::from(self.max_duration_ms).div_ceil(1000).max(1)
    }

    /// The peak bits per second: as reported, or estimated from the indexed segments.
    pub fn bandwidth(&self) -> u32 {
        match &self.info {
            Some(info) if info.bandwidth > 0 => info.bandwidth,
            _ => self
                .segments
                .values()
                .filter(|s| s.duration_ms > 0)
                .map(|s| s.size_bytes.saturating_mul(8_000) / u64::from(s.duration_ms))
                .max()
                .map_or(1, |bps| u32::try_from(bps).unwrap_or(u32::MAX).max(1)),
        }
    }

    /// Adds a segment unless `seq` is known already (a redelivery keeps the first version, so
    /// a listed segment never changes). Returns whether it was new.
    fn insert(&mut self, segment: Segment) -> bool {
        if self.segments.contains_key(&segment.seq) {
            return false;
        }
        if segment.discontinuity {
            self.discontinuities.insert(segment.seq);
        }
        self.max_duration_ms = self.max_duration_ms.max(segment.duration_ms);
        self.segments.insert(segment.seq, segment);
        true
    }
}

/// Everything indexed about one stream.
#[derive(Debug, Clone, Default)]
pub struct StreamTimeline {
    status: Option<StreamStatus>,
    renditions: BTreeMap<RenditionName, RenditionTimeline>,
    /// The most renditions one chunk was encoded into (0 when unknown).
    ladder_size: usize,
    /// Segments every rendition has once the broadcast is over (0 when unknown).
    final_segments: u64,
}

/// Order used when the catalogue's answer and the events disagree: the catalogue may have been
/// read before an event this edge has already applied, so it may only move a stream forward.
fn rank(status: StreamStatus) -> u8 {
    match status {
        StreamStatus::Pending => 0,
        StreamStatus::Created => 1,
        StreamStatus::StreamActive => 2,
        StreamStatus::StreamComplete => 3,
        StreamStatus::Archived => 4,
        StreamStatus::Inactive => 5,
    }
}

impl StreamTimeline {
    /// A stream known only to be hidden or taken down.
    pub fn gone(status: StreamStatus) -> Self {
        StreamTimeline {
            status: Some(status),
            renditions: BTreeMap::new(),
            ladder_size: 0,
            final_segments: 0,
        }
    }

    /// The lifecycle state, once known.
    pub fn status(&self) -> Option<StreamStatus> {
        self.status
    }

    /// Whether viewers may no longer see the stream (ARCHIVED or INACTIVE).
    pub fn is_gone(&self) -> bool {
        matches!(
            self.status,
            Some(StreamStatus::Archived | StreamStatus::Inactive)
        )
    }

    /// Whether the broadcast is over and plays as VOD: over, and the renditions still being
    /// made have their last two segments. The worker may still be encoding the tail when ingest
    /// announces the end (a broadcaster that flushes a backlog at once); until it is done the
    /// playlists stay live rather than publish a cacheable VOD without its end. A rendition that
    /// stopped being made earlier (a broadcaster back at a lower resolution after a
    /// discontinuity, or a slate without a picture) is not waited for.
    pub fn is_complete(&self) -> bool {
        if self.status != Some(StreamStatus::StreamComplete) {
            return false;
        }
        let Some(last) = self.final_segments.checked_sub(1) else {
            return true;
        };
        let newest = |r: &RenditionTimeline| r.newest().map(|s| s.seq);
        let Some(newest_made) = self.renditions.values().filter_map(newest).max() else {
            return true;
        };
        let last_discontinuity = self
            .renditions
            .values()
            .filter_map(|r| r.discontinuities.last().copied())
            .max()
            .unwrap_or(0);
        newest_made >= last
            && self
                .renditions
                .values()
                .filter(|r| {
                    newest(r).is_some_and(|seq| {
                        seq >= last_discontinuity && seq + STILL_BEING_MADE >= newest_made
                    })
                })
                .all(|r| (last.saturating_sub(1)..=last).all(|seq| r.segment(seq).is_some()))
    }

    /// Where the recording ends: the segments every rendition has once the broadcast is over
    /// (the slate that waited for the broadcaster after its last chunk is not part of it);
    /// `None` while unknown.
    pub fn recording_end(&self) -> Option<u64> {
        (self.final_segments > 0).then_some(self.final_segments)
    }

    /// Whether nothing at all is known (no status, no rendition).
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.renditions.is_empty()
    }

    /// One rendition.
    pub fn rendition(&self, name: &RenditionName) -> Option<&RenditionTimeline> {
        self.renditions.get(name)
    }

    /// The names of every rendition with anything indexed.
    pub fn rendition_names(&self) -> Vec<RenditionName> {
        self.renditions.keys().cloned().collect()
    }

    /// Renditions that can be played: described and with at least one segment.
    pub fn playable(&self) -> impl Iterator<Item = (&RenditionName, &RenditionTimeline)> {
        self.renditions
            .iter()
            .filter(|(_, timeline)| timeline.info.is_some() && !timeline.is_empty())
    }

    /// Records that a chunk was encoded into `size` renditions.
    pub fn expect_ladder(&mut self, size: u32) {
        self.ladder_size = self.ladder_size.max(size as usize);
    }

    /// Whether every rendition of the ladder has a playable segment (always, when the ladder
    /// size is unknown).
    pub fn ladder_complete(&self) -> bool {
        self.playable().count() >= self.ladder_size
    }

    /// Applies a `SegmentReady`; idempotent on (rendition, seq). The latest description of a
    /// rendition wins (the encoder refines its measured bandwidth as it goes). Segments of a
    /// stream that is gone are ignored.
    pub fn apply_segment(
        &mut self,
        rendition: RenditionName,
        info: Option<RenditionInfo>,
        segment: Segment,
    ) -> bool {
        self.described(rendition, info)
            .is_some_and(|timeline| timeline.insert(segment))
    }

    /// Applies one partial segment of a segment being made; whether it was new.
    pub fn apply_part(
        &mut self,
        rendition: RenditionName,
        info: Option<RenditionInfo>,
        at: PartAt,
        part: Part,
    ) -> bool {
        // A part describes its rendition only until a segment does: a part's own bitrate swings
        // with its frame types, and the master playlist's BANDWIDTH must not.
        let Some(timeline) = self.described(rendition, None) else {
            return false;
        };
        if timeline.info.is_none() {
            timeline.info = info;
        }
        // A part of a whole segment counts only where its run waits for it (the segment's
        // event overtook it); otherwise the whole segment's run is settled.
        let waited_for = timeline
            .parts
            .run(at.seq)
            .is_some_and(|run| run.whole_in.is_some());
        (timeline.segment(at.seq).is_none() || waited_for) && timeline.parts.apply(at, part)
    }

    /// The timeline of `rendition`, with what `info` says of it; none once the stream is gone.
    fn described(
        &mut self,
        rendition: RenditionName,
        info: Option<RenditionInfo>,
    ) -> Option<&mut RenditionTimeline> {
        if self.is_gone() {
            return None;
        }
        let timeline = self.renditions.entry(rendition).or_default();
        if info.is_some() {
            timeline.info = info;
        }
        Some(timeline)
    }

    /// Segment `seq` of `rendition` came whole, announced before in `part_count` parts.
    pub fn segment_parts_done(&mut self, rendition: &RenditionName, seq: u64, part_count: u32) {
        if let Some(timeline) = self.renditions.get_mut(rendition) {
            timeline.parts.segment_done(seq, part_count);
        }
    }

    /// Applies a lifecycle event; events arrive in order per stream, so the latest wins.
    /// `final_segments` is what STREAM_COMPLETE says the recording will hold (0 when unknown).
    pub fn apply_status(&mut self, status: StreamStatus, final_segments: u64) {
        self.status = Some(status);
        self.final_segments = final_segments;
        if self.is_gone() {
            self.renditions.clear();
        }
    }

    /// Merges what the catalogue said. Segments and descriptions fill in what events did not
    /// bring; the status only moves the stream forward (see [`rank`]).
    pub fn merge_loaded(
        &mut self,
        status: StreamStatus,
        renditions: &[RenditionRecord],
        segments: &[SegmentRecord],
    ) {
        if self
            .status
            .is_none_or(|current| rank(status) > rank(current))
        {
            self.apply_status(status, self.final_segments);
        }
        if self.is_gone() {
            return;
        }
        for record in renditions {
            let timeline = self.renditions.entry(record.name.clone()).or_default();
            if timeline.info.is_none() {
                timeline.info = Some(RenditionInfo::from(record));
            }
        }
        for record in segments {
            self.renditions
                .entry(record.rendition.clone())
                .or_default()
                .insert(Segment::from(record));
        }
    }
}

#[cfg(test)]
mod tests;
