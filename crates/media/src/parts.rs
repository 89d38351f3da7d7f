//! Cutting each rendition of a chunk into partial segments (Low-Latency HLS) as its packets
//! come out of the encoders, and the whole segment as those parts laid end to end.
//!
//! Part boundaries are times on the stream timeline, the same for every rendition: from the
//! chunk start, every whole number of source frames that fits in 95 % of the part target,
//! each boundary half a frame early so that millisecond-rounded source timestamps land on the
//! right side of it. A part of a video rendition is cut once its encoder has put out a packet
//! past the part's end, whatever the encoder's delay; it carries the video of its time range
//! and the audio that came out before its end. The audio-only rendition is cut at the same
//! boundaries by its own packets. Each part is one `moof`+`mdat` made by its own muxer with the
//! same tracks as every other part of the chunk, so one init segment describes them all and
//! the segment is the parts' bytes concatenated; fragment sequence numbers count the parts.

use bytes::{Bytes, BytesMut};
use ffmpeg_next::{Packet, Rational, codec};

use crate::{
    AUDIO_RENDITION, Content, EncodedRendition, MediaError,
    boxes::boxes,
    codecs,
    encode_video::{RenditionEncoder, VIDEO_TIME_BASE},
    mux::{self, Track},
    timeline::rescale,
};

const MILLIS: Rational = Rational(1, 1000);
/// Share of the part target that a part's source frames may fill: the rest absorbs timestamp
/// rounding in video and whole AAC frames in audio.
const FILL_PERCENT: i64 = 95;
/// What the advertised part target adds to the cutting interval for video: timestamp
/// rounding. Audio-only parts, cut in whole AAC frames, may also last one frame longer.
const TARGET_MARGIN_MS: i64 = 25;
/// Samples in one AAC-LC frame.
const AAC_FRAME_SAMPLES: i64 = 1024;

/// One partial segment of one rendition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedPart {
    /// The rendition, as in [`EncodedRendition::name`].
    pub name: String,
    /// Picture size; 0 x 0 for the audio-only rendition.
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// True for the audio-only rendition.
    pub audio_only: bool,
    /// Its place in the segment, from 0.
    pub index: u32,
    /// The rendition's init segment (the same for every part and segment of the chunk).
    pub init_segment: Bytes,
    /// `moof` + `mdat`.
    pub media: Bytes,
    /// Where the part starts on the stream timeline, in milliseconds.
    pub start_ms: i64,
    /// How long its main track lasts, in milliseconds.
    pub duration_ms: u32,
    /// Whether it starts with a sync sample (a player may start there).
    pub independent: bool,
    /// Whether it is the segment's last part.
    pub last: bool,
    /// The longest any part of the chunk lasts (`PART-TARGET`), in milliseconds.
    pub target_ms: u32,
    /// RFC 6381 CODECS value.
    pub codecs: String,
    /// Frames per second times 1000; 0 for audio only.
    pub frame_rate_milli: u32,
}

/// The chunk's audio as it stands: packets on the stream timeline, and how to mux them.
pub(crate) struct AudioSoFar<'a> {
    pub packets: &'a [Packet],
    /// Known once the chunk's audio handling is decided; `None` before.
    pub track: Option<(codec::Parameters, Rational)>,
}

/// Where one rendition's cutting stands.
#[derive(Default)]
struct Cut {
    /// Boundary after which the next part ends.
    interval: i64,
    video_taken: usize,
    audio_taken: usize,
    fragments: Vec<Bytes>,
    init: Option<Bytes>,
    codecs: Option<String>,
}

impl Cut {
    fn parts(&self) -> u32 {
        self.fragments.len() as u32
    }
}

/// Cuts the renditions of one chunk into parts.
pub(crate) struct PartCutter {
    /// Chunk start, in [`VIDEO_TIME_BASE`].
    origin: i64,
    target_ms: u32,
    /// Fixed by the first cut: ticks between boundaries, and how early each one sits.
    grid: Option<(i64, i64)>,
    /// The source has a video stream: boundaries wait for its frame rate.
    expect_video: bool,
    /// The source has an audio stream: no part is cut before the chunk's audio is described,
    /// so every part has the same tracks.
    expect_audio: bool,
    audio_track: Option<(codec::Parameters, Rational)>,
    video: Vec<Cut>,
    audio: Cut,
    /// Longest wanted between keyframes (0: only the chunk's own), and once the grid is
    /// fixed, every how many parts one is forced, and the last part that got one.
    keyframe_interval_ms: u32,
    keyframe_parts: i64,
    keyed_interval: i64,
    /// Where the chunk is expected to end (the next segment's keyframe), in
    /// [`VIDEO_TIME_BASE`]: no part starting within a part of it gets a keyframe of its own.
    expected_end: Option<i64>,
}

impl PartCutter {
    /// A cutter for a chunk starting at `origin` (in [`VIDEO_TIME_BASE`]), aiming at parts of
    /// at most `target_ms`, for a source with a video and/or an audio stream.
    pub fn new(origin: i64, target_ms: u32, (expect_video, expect_audio): (bool, bool)) -> Self {
        PartCutter {
            origin,
            target_ms: target_ms.max(100),
            grid: None,
            expect_video,
            expect_audio,
            audio_track: None,
            video: Vec::new(),
            audio: Cut::default(),
            keyframe_interval_ms: 0,
            keyframe_parts: 0,
            keyed_interval: 0,
            expected_end: None,
        }
    }

    /// Forces a keyframe at the start of a part at least every `interval_ms` (0: only the
    /// chunk's own first frame), so a player joining at the live edge starts close to it
    /// rather than up to a whole segment back.
    /// `expected_ms` is how long the chunk is expected to last: the next segment's own
    /// keyframe follows it, so no keyframe is forced just before.
    pub fn with_keyframes_every(mut self, interval_ms: u32, expected_ms: Option<u32>) -> Self {
        self.keyframe_interval_ms = interval_ms;
        self.expected_end =
            expected_ms.map(|ms| self.origin + rescale(i64::from(ms), MILLIS, VIDEO_TIME_BASE));
        self
    }

    /// Whether the frame at `pts` (source rate `rate`) must be a keyframe: the first frame of
    /// a part that starts a keyframe interval, other than the chunk's first part.
    pub fn wants_keyframe(&mut self, pts: i64, rate: Rational) -> bool {
        if self.keyframe_interval_ms == 0 {
            return false;
        }
        if self.grid.is_none() {
            self.fix_grid(Some(rate));
        }
        let (span, early) = self.grid.expect("fixed above");
        let interval = (pts - self.origin + early).div_euclid(span);
        let before_the_end = self.expected_end.is_none_or(|end| pts + span <= end);
        let due = interval > self.keyed_interval
            && interval % self.keyframe_parts.max(1) == 0
            && before_the_end;
        if due {
            self.keyed_interval = interval;
        }
        due
    }

    /// Whether the chunk's audio track is still to be described (see [`AudioSoFar::track`]).
    pub fn wants_audio_track(&self) -> bool {
        self.expect_audio && self.audio_track.is_none()
    }

    /// The advertised part target once the grid is fixed.
    fn advertised_target_ms(&self, audio_only: bool) -> u32 {
        let span = self.grid.map_or(0, |(span, _)| span);
        let audio_frame_ms = match (&self.audio_track, audio_only) {
            // One AAC frame in the track's time base (1 / sample rate), rounded up.
            (Some((_, time_base)), true) => {
                let frame = rescale(AAC_FRAME_SAMPLES, *time_base, MILLIS);
                frame + 2
            }
            _ => 0,
        };
        (rescale(span, VIDEO_TIME_BASE, MILLIS) + TARGET_MARGIN_MS.max(audio_frame_ms)) as u32
    }

    /// Fixes the boundaries from the source frame rate (or, without video, from the target).
    fn fix_grid(&mut self, rate: Option<Rational>) {
        let fill = i64::from(self.target_ms) * FILL_PERCENT / 100;
        let per_second = i64::from(VIDEO_TIME_BASE.denominator());
        let (span, early) = match rate.filter(|r| r.numerator() > 0 && r.denominator() > 0) {
            Some(rate) => {
                let frame = (per_second as f64 / f64::from(rate)).round() as i64;
                let frames = (fill * per_second / 1000 / frame.max(1)).max(1);
                (frames * frame, frame / 2)
            }
            None => (fill * per_second / 1000, 0),
        };
        self.grid = Some((span, early));
        let wanted = i64::from(self.keyframe_interval_ms) * per_second / 1000;
        self.keyframe_parts = ((wanted as f64 / span as f64).round() as i64).max(1);
    }

    /// The end of the part cut in `interval`, in [`VIDEO_TIME_BASE`].
    fn end_of(&self, interval: i64) -> i64 {
        let (span, early) = self.grid.expect("grid fixed before cutting");
        self.origin + (interval + 1) * span - early
    }

    /// Cuts every part whose end has come out of the encoders, or, when `last`, everything
    /// left. `rate` is the source frame rate once a frame was decoded.
    pub fn cut(
        &mut self,
        encoders: &mut [RenditionEncoder],
        audio: &AudioSoFar,
        rate: Option<Rational>,
        last: bool,
        emit: &mut dyn FnMut(EncodedPart) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        if self.audio_track.is_none() {
            self.audio_track = audio.track.clone();
        }
        if self.expect_audio && self.audio_track.is_none() && !last {
            return Ok(());
        }
        if self.grid.is_none() {
            // With a video stream, the grid follows its frame rate, known at its first frame.
            if rate.is_none() && self.expect_video && !last {
                return Ok(());
            }
            self.fix_grid(rate);
        }
        while self.video.len() < encoders.len() {
            self.video.push(Cut::default());
        }
        for (index, encoder) in encoders.iter_mut().enumerate() {
            self.cut_video(index, encoder, audio.packets, last, emit)?;
        }
        self.cut_audio(audio.packets, last, emit)
    }

    fn cut_video(
        &mut self,
        index: usize,
        encoder: &mut RenditionEncoder,
        audio: &[Packet],
        last: bool,
        emit: &mut dyn FnMut(EncodedPart) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        loop {
            let cut = &self.video[index];
            let pending = &encoder.packets[cut.video_taken..];
            if pending.is_empty() {
                return Ok(());
            }
            let end = self.end_of(cut.interval);
            let count = match pending.iter().position(|p| p.pts().unwrap_or(0) >= end) {
                Some(0) => {
                    self.video[index].interval += 1;
                    continue;
                }
                Some(count) => {
                    // The part's last frame lasts until the next part starts.
                    let next = pending[count].pts().unwrap_or(0);
                    let last_packet = &mut encoder.packets[cut.video_taken + count - 1];
                    let pts = last_packet.pts().unwrap_or(next);
                    last_packet.set_duration((next - pts).max(1));
                    count
                }
                None if last => pending.len(),
                None => return Ok(()),
            };
            let cut = &self.video[index];
            let closes = last && cut.video_taken + count == encoder.packets.len();
            let video = &encoder.packets[cut.video_taken..cut.video_taken + count];
            // The segment's last part takes whatever audio is left; the others theirs.
            let audio_count = self.audio_before(audio, cut.audio_taken, end, closes);
            let audio_slice = &audio[cut.audio_taken..cut.audio_taken + audio_count];
            let mut tracks = vec![Track {
                parameters: encoder.parameters(),
                time_base: VIDEO_TIME_BASE,
                packets: video,
            }];
            if let Some((parameters, time_base)) = &self.audio_track {
                tracks.push(Track {
                    parameters: parameters.clone(),
                    time_base: *time_base,
                    packets: audio_slice,
                });
            }
            let described = Described::video(encoder, video.first().is_some_and(Packet::is_key));
            let part = self.make_part(&tracks, described, &self.video[index], closes)?;
            let cut = &mut self.video[index];
            cut.video_taken += count;
            cut.audio_taken += audio_count;
            cut.interval += 1;
            record(cut, &part);
            emit(part)?;
        }
    }

    fn cut_audio(
        &mut self,
        audio: &[Packet],
        last: bool,
        emit: &mut dyn FnMut(EncodedPart) -> Result<(), MediaError>,
    ) -> Result<(), MediaError> {
        let Some((parameters, time_base)) = self.audio_track.clone() else {
            return Ok(());
        };
        loop {
            let taken = self.audio.audio_taken;
            if taken >= audio.len() {
                return Ok(());
            }
            let before = self.audio_before(audio, taken, self.end_of(self.audio.interval), false);
            // A packet at or past the end has come out: the part is complete.
            let complete = taken + before < audio.len();
            let count = match (complete, last) {
                (true, _) => before,
                (false, true) => audio.len() - taken,
                (false, false) => return Ok(()),
            };
            if count == 0 {
                self.audio.interval += 1;
                continue;
            }
            let tracks = [Track {
                parameters: parameters.clone(),
                time_base,
                packets: &audio[taken..taken + count],
            }];
            let described = Described {
                name: AUDIO_RENDITION,
                size: (0, 0),
                frame_rate_milli: 0,
                independent: true,
            };
            let closes = last && taken + count == audio.len();
            let part = self.make_part(&tracks, described, &self.audio, closes)?;
            self.audio.audio_taken += count;
            self.audio.interval += 1;
            record(&mut self.audio, &part);
            emit(part)?;
        }
    }

    /// How many audio packets from `taken` start before `end` (all of them when `rest`).
    fn audio_before(&self, audio: &[Packet], taken: usize, end: i64, rest: bool) -> usize {
        let Some((_, time_base)) = &self.audio_track else {
            return 0;
        };
        if rest {
            return audio.len() - taken;
        }
        let end = rescale(end, VIDEO_TIME_BASE, *time_base);
        audio[taken..]
            .iter()
            .take_while(|p| p.pts().unwrap_or(0) < end)
            .count()
    }

    fn make_part(
        &self,
        tracks: &[Track],
        described: Described,
        cut: &Cut,
        last: bool,
    ) -> Result<EncodedPart, MediaError> {
        let fragmented = mux::fragment(tracks)?;
        let mut media = BytesMut::from(&fragmented.media[..]);
        renumber(&mut media, cut.parts() + 1);
        let codecs = match &cut.codecs {
            Some(codecs) => codecs.clone(),
            None => codecs::from_init_segment(&fragmented.init).ok_or_else(|| {
                MediaError::Ffmpeg(format!("{}: no CODECS in the init segment", described.name))
            })?,
        };
        let main = &tracks[0];
        let (start, end) = span(main.packets);
        Ok(EncodedPart {
            name: described.name.to_string(),
            width: described.size.0,
            height: described.size.1,
            audio_only: described.size.0 == 0,
            index: cut.parts(),
            init_segment: cut.init.clone().unwrap_or(fragmented.init),
            media: media.freeze(),
            start_ms: rescale(start, main.time_base, MILLIS),
            duration_ms: millis(end - start, main.time_base),
            independent: described.independent,
            last,
            target_ms: self.advertised_target_ms(described.size.0 == 0),
            codecs,
            frame_rate_milli: described.frame_rate_milli,
        })
    }

    /// Every rendition's whole segment: its parts laid end to end. `audio` is every audio
    /// packet of the chunk.
    pub fn into_renditions(
        self,
        encoders: &[RenditionEncoder],
        audio: &[Packet],
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        let mut out = Vec::with_capacity(encoders.len() + 1);
        for (encoder, cut) in encoders.iter().zip(&self.video) {
            if cut.fragments.is_empty() {
                continue;
            }
            let described = Described::video(encoder, true);
            out.push(whole(described, cut, &encoder.packets, VIDEO_TIME_BASE));
        }
        if let Some((_, time_base)) = &self.audio_track
            && !self.audio.fragments.is_empty()
        {
            let described = Described {
                name: AUDIO_RENDITION,
                size: (0, 0),
                frame_rate_milli: 0,
                independent: true,
            };
            out.push(whole(described, &self.audio, audio, *time_base));
        }
        Ok(out)
    }
}

/// What a rendition is, for the parts and segments made of it.
struct Described<'a> {
    name: &'a str,
    size: (u32, u32),
    frame_rate_milli: u32,
    independent: bool,
}

impl<'a> Described<'a> {
    fn video(encoder: &'a RenditionEncoder, independent: bool) -> Self {
        let rendition = &encoder.rendition;
        Described {
            name: &rendition.name,
            size: (rendition.width, rendition.height),
            frame_rate_milli: (f64::from(encoder.frame_rate()) * 1000.0).round() as u32,
            independent,
        }
    }
}

/// Keeps what the rendition's next parts and its whole segment need of a part just made.
fn record(cut: &mut Cut, part: &EncodedPart) {
    cut.fragments.push(part.media.clone());
    cut.init.get_or_insert_with(|| part.init_segment.clone());
    cut.codecs.get_or_insert_with(|| part.codecs.clone());
}

/// The segment of one rendition from its parts; `packets` are its main track's packets.
fn whole(
    described: Described,
    cut: &Cut,
    packets: &[Packet],
    time_base: Rational,
) -> EncodedRendition {
    let media: Bytes = cut.fragments.concat().into();
    let (start, end) = span(packets);
    let duration_ms = millis(end - start, time_base);
    let bits = media.len() as u64 * 8;
    let bandwidth = u32::try_from(bits * 1000 / u64::from(duration_ms.max(1))).unwrap_or(u32::MAX);
    EncodedRendition {
        name: described.name.to_string(),
        width: described.size.0,
        height: described.size.1,
        audio_only: described.size.0 == 0,
        init_segment: cut.init.clone().unwrap_or_default(),
        media_segment: media,
        start_ms: rescale(start, time_base, MILLIS),
        duration_ms,
        codecs: cut.codecs.clone().unwrap_or_default(),
        bandwidth,
        frame_rate_milli: described.frame_rate_milli,
        content: Content::Source,
        parts: cut.parts(),
    }
}

/// First presentation time and end of the last packet, in the packets' time base.
pub(crate) fn span(packets: &[Packet]) -> (i64, i64) {
    let start = packets.iter().filter_map(Packet::pts).min().unwrap_or(0);
    let end = packets
        .iter()
        .filter_map(|p| p.pts().map(|pts| pts + p.duration().max(0)))
        .max()
        .unwrap_or(start);
    (start, end)
}

fn millis(ticks: i64, time_base: Rational) -> u32 {
    u32::try_from(rescale(ticks, time_base, MILLIS).max(0)).unwrap_or(u32::MAX)
}

/// Sets the sequence number in the `mfhd` of the fragment's `moof`.
fn renumber(media: &mut [u8], sequence: u32) {
    let Some(moof) = boxes(media).find(|b| &b.kind == b"moof") else {
        return;
    };
    let payload_at = moof.end - moof.payload.len();
    let Some(mfhd) = boxes(moof.payload).find(|b| &b.kind == b"mfhd") else {
        return;
    };
    // Header (8 bytes), version and flags (4), then the sequence number.
    let at = payload_at + mfhd.start + 12;
    if mfhd.end - mfhd.start >= 16 {
        media[at..at + 4].copy_from_slice(&sequence.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::make_box;

    #[test]
    fn fragments_are_numbered_by_their_place_in_the_segment() {
        let mut mfhd = vec![0, 0, 0, 0];
        mfhd.extend_from_slice(&1u32.to_be_bytes());
        let mut media = make_box(b"moof", &make_box(b"mfhd", &mfhd));
        media.extend(make_box(b"mdat", b"samples"));
        renumber(&mut media, 7);
        assert_eq!(&media[20..24], &7u32.to_be_bytes());
        assert_eq!(&media[24..], &make_box(b"mdat", b"samples")[..]);
    }
}
