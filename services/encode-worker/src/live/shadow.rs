//! What a standby knows of its primary's output, and where it may carry it on.
//!
//! A standby encodes the same chunks as its primary and holds its own parts and whole segments
//! until the primary says it published them. When it takes over, each rendition of each chunk
//! in flight continues at the first part the primary did not publish. A part may follow the
//! primary's only when it opens a group of pictures (it references nothing before it) or when
//! every part of its group the primary published is bit for bit the standby's own (same
//! digest): two encoders' parts are never mixed inside one group of pictures. A rendition that
//! cannot be continued that way publishes no more parts of that chunk; its segment is then
//! announced whole (as made in one piece), and parts resume with the next chunk.
//!
//! Pure bookkeeping: the caller does the publishing.

use std::collections::{BTreeMap, BTreeSet};

use livecast_media::{EncodedPart, EncodedRendition};
use livecast_proto::v1;
use sha2::{Digest, Sha256};

/// The digest a primary reports for a part: the first 8 bytes of its SHA-256.
pub(crate) fn part_digest(media: &[u8]) -> u64 {
    let hash = Sha256::digest(media);
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// How the rest of one rendition of one chunk goes once the standby took over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Splice {
    /// Not taken over: parts are held.
    Holding,
    /// Taken over; decided when the standby's own part `from` (the first the primary did not
    /// publish) is there.
    From(u32),
    /// Publishing every part from the splice point on.
    Continue,
    /// The primary's group of pictures cannot be continued: no more parts of this chunk.
    WholeOnly,
}

#[derive(Debug)]
struct Track {
    /// Digests of the parts the primary published, from part 0 on.
    primary: Vec<u64>,
    /// The standby's own parts so far: digest and whether each opens a group of pictures.
    own: Vec<(u64, bool)>,
    /// Own parts not (yet) known to be published by the primary.
    held: BTreeMap<u32, EncodedPart>,
    splice: Splice,
}

impl Track {
    fn new(splice: Splice) -> Self {
        Track {
            primary: Vec::new(),
            own: Vec::new(),
            held: BTreeMap::new(),
            splice,
        }
    }

    /// Whether the standby's part `from` may follow the primary's parts before it.
    fn may_continue_at(&self, from: u32) -> bool {
        let from = from as usize;
        if from == 0
            || self
                .own
                .get(from)
                .is_some_and(|(_, independent)| *independent)
        {
            return true;
        }
        // The group that part `from` belongs to began at the newest independent part before it.
        let group_start = self.own[..from]
            .iter()
            .rposition(|(_, independent)| *independent)
            .unwrap_or(0);
        (group_start..from)
            .all(|i| self.primary.get(i) == self.own.get(i).map(|(digest, _)| digest))
    }

    /// Settles a pending splice once the standby's own parts reach it; returns the held parts
    /// to publish now, in order.
    fn settle(&mut self) -> Vec<EncodedPart> {
        if let Splice::From(from) = self.splice {
            if (self.own.len() as u32) <= from {
                return Vec::new();
            }
            self.splice = if self.may_continue_at(from) {
                Splice::Continue
            } else {
                Splice::WholeOnly
            };
        }
        match self.splice {
            Splice::Continue => {
                let published = self.primary.len() as u32;
                let held = std::mem::take(&mut self.held);
                held.into_iter()
                    .filter(|(index, _)| *index >= published)
                    .map(|(_, part)| part)
                    .collect()
            }
            Splice::WholeOnly => {
                self.held.clear();
                Vec::new()
            }
            Splice::Holding | Splice::From(_) => Vec::new(),
        }
    }
}

/// One chunk as the standby made it, held until the primary announced it.
#[derive(Debug)]
pub(crate) struct HeldWhole {
    pub stored: v1::SourceChunk,
    pub renditions: Vec<EncodedRendition>,
}

/// A chunk's whole segments to announce, with how many parts of each rendition were announced
/// before (0: its segment is announced as made in one piece), and the top rungs left out of it.
#[derive(Debug)]
pub(crate) struct WholeToAnnounce {
    pub stored: v1::SourceChunk,
    pub renditions: Vec<(EncodedRendition, u32)>,
    pub shed: Vec<String>,
}

/// The standby's view of one stream.
#[derive(Debug, Default)]
pub(crate) struct Shadow {
    tracks: BTreeMap<(u64, String), Track>,
    /// Chunks whose segments the primary announced.
    announced: BTreeSet<u64>,
    held_wholes: BTreeMap<u64, HeldWhole>,
    /// Chunks the standby began following, whether or not it made anything of them yet.
    begun: BTreeSet<u64>,
    taken_over: bool,
}

impl Shadow {
    /// Whether this standby has taken over.
    pub fn taken_over(&self) -> bool {
        self.taken_over
    }

    /// The primary published part `index` of `rendition` of chunk `seq` with `digest`.
    pub fn primary_published(&mut self, seq: u64, rendition: &str, index: u32, digest: u64) {
        if self.announced.contains(&seq) {
            return;
        }
        let track = self.track(seq, rendition);
        if index as usize == track.primary.len() {
            track.primary.push(digest);
            track.held.remove(&index);
        }
    }

    /// The standby began following chunk `seq`.
    pub fn begin(&mut self, seq: u64) {
        if !self.announced.contains(&seq) {
            self.begun.insert(seq);
        }
    }

    /// The primary announced chunk `seq` whole: nothing of it is held any longer.
    pub fn primary_announced(&mut self, seq: u64) {
        self.announced.insert(seq);
        self.begun.remove(&seq);
        self.held_wholes.remove(&seq);
        self.tracks.retain(|(track_seq, _), _| *track_seq != seq);
        // Chunks long announced are no longer reported on.
        while self.announced.len() > 16 {
            self.announced.pop_first();
        }
    }

    /// The standby made `part` of chunk `seq`: the parts to publish now (none while holding).
    pub fn own_part(&mut self, seq: u64, part: EncodedPart) -> Vec<EncodedPart> {
        if self.announced.contains(&seq) {
            return Vec::new();
        }
        let track = self.track(seq, &part.name);
        if part.index as usize != track.own.len() {
            return Vec::new();
        }
        track.own.push((part_digest(&part.media), part.independent));
        if part.index as usize >= track.primary.len() {
            track.held.insert(part.index, part);
        }
        track.settle()
    }

    /// The standby finished chunk `stored` whole: what to announce now (nothing while holding,
    /// or when the primary announced it).
    pub fn own_whole(
        &mut self,
        stored: v1::SourceChunk,
        renditions: Vec<EncodedRendition>,
    ) -> Option<WholeToAnnounce> {
        if self.announced.contains(&stored.seq) {
            return None;
        }
        let seq = stored.seq;
        self.held_wholes
            .insert(seq, HeldWhole { stored, renditions });
        if self.taken_over {
            self.release_whole(seq)
        } else {
            None
        }
    }

    /// Takes over: every chunk in flight continues where the primary stopped. Returns the parts
    /// that can be published at once, in order, and the chunks that are whole already.
    pub fn take_over(&mut self) -> (Vec<(u64, EncodedPart)>, Vec<WholeToAnnounce>) {
        self.taken_over = true;
        let mut parts = Vec::new();
        for ((seq, _), track) in &mut self.tracks {
            if track.splice == Splice::Holding {
                track.splice = Splice::From(track.primary.len() as u32);
            }
            parts.extend(track.settle().into_iter().map(|part| (*seq, part)));
        }
        let whole_seqs: Vec<u64> = self.held_wholes.keys().copied().collect();
        let wholes = whole_seqs
            .into_iter()
            .filter_map(|seq| self.release_whole(seq))
            .collect();
        (parts, wholes)
    }

    /// The chunks in flight: begun or reported on, and not announced by the primary.
    pub fn in_flight(&self) -> BTreeSet<u64> {
        self.tracks
            .keys()
            .map(|(seq, _)| *seq)
            .chain(self.held_wholes.keys().copied())
            .chain(self.begun.iter().copied())
            .collect()
    }

    fn release_whole(&mut self, seq: u64) -> Option<WholeToAnnounce> {
        let held = self.held_wholes.remove(&seq)?;
        let renditions = held
            .renditions
            .into_iter()
            .map(|rendition| {
                let parts = match self.tracks.get(&(seq, rendition.name.clone())) {
                    Some(track) if track.splice == Splice::WholeOnly => 0,
                    _ => rendition.parts,
                };
                (rendition, parts)
            })
            .collect();
        self.tracks.retain(|(track_seq, _), _| *track_seq != seq);
        self.announced.insert(seq);
        self.begun.remove(&seq);
        Some(WholeToAnnounce {
            stored: held.stored,
            renditions,
            shed: Vec::new(),
        })
    }

    fn track(&mut self, seq: u64, rendition: &str) -> &mut Track {
        let splice = match self.taken_over {
            true => Splice::From(0),
            false => Splice::Holding,
        };
        self.tracks
            .entry((seq, rendition.to_string()))
            .or_insert_with(|| Track::new(splice))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn part(index: u32, independent: bool, bytes: &'static [u8]) -> EncodedPart {
        EncodedPart {
            name: "360p".into(),
            width: 640,
            height: 360,
            audio_only: false,
            index,
            init_segment: Bytes::new(),
            media: Bytes::from_static(bytes),
            start_ms: i64::from(index) * 500,
            duration_ms: 467,
            independent,
            last: index == 3,
            target_ms: 492,
            codecs: "avc1.64001e".into(),
            frame_rate_milli: 30_000,
        }
    }

    /// Parts 0..4 of one chunk, a keyframe opening parts 0 and 2.
    fn own_parts() -> Vec<EncodedPart> {
        vec![
            part(0, true, b"p0"),
            part(1, false, b"p1"),
            part(2, true, b"p2"),
            part(3, false, b"p3"),
        ]
    }

    fn indexes(parts: &[(u64, EncodedPart)]) -> Vec<u32> {
        parts.iter().map(|(_, part)| part.index).collect()
    }

    #[test]
    fn a_standby_holds_until_it_takes_over_then_publishes_what_the_primary_did_not() {
        let mut shadow = Shadow::default();
        for part in own_parts().into_iter().take(3) {
            assert!(
                shadow.own_part(7, part).is_empty(),
                "held while standing by"
            );
        }
        shadow.primary_published(7, "360p", 0, part_digest(b"p0"));
        shadow.primary_published(7, "360p", 1, part_digest(b"p1"));
        let (now, wholes) = shadow.take_over();
        assert_eq!(indexes(&now), vec![2], "from the first part not published");
        assert!(wholes.is_empty());
        let next = shadow.own_part(7, part(3, false, b"p3"));
        assert_eq!(next.iter().map(|p| p.index).collect::<Vec<_>>(), vec![3]);
        let whole = shadow
            .own_whole(
                v1::SourceChunk {
                    seq: 7,
                    ..Default::default()
                },
                Vec::new(),
            )
            .expect("announced by the standby now");
        assert_eq!(whole.stored.seq, 7);
    }

    #[test]
    fn a_bit_exact_standby_continues_inside_the_primarys_group_of_pictures() {
        let mut shadow = Shadow::default();
        shadow.own_part(7, part(0, true, b"p0"));
        shadow.primary_published(7, "360p", 0, part_digest(b"p0"));
        let (now, _) = shadow.take_over();
        assert!(now.is_empty(), "part 1 is not made yet");
        let next = shadow.own_part(7, part(1, false, b"p1"));
        assert_eq!(
            next.len(),
            1,
            "part 1 continues the primary's identical part 0"
        );
    }

    #[test]
    fn a_diverging_standby_never_mixes_groups_of_pictures_and_announces_the_segment_whole() {
        let mut shadow = Shadow::default();
        shadow.own_part(7, part(0, true, b"p0"));
        shadow.primary_published(7, "360p", 0, part_digest(b"other encoder's p0"));
        shadow.take_over();
        assert!(shadow.own_part(7, part(1, false, b"p1")).is_empty());
        assert!(
            shadow.own_part(7, part(2, true, b"p2")).is_empty(),
            "no more parts of this chunk"
        );
        let rendition = EncodedRendition {
            name: "360p".into(),
            width: 640,
            height: 360,
            audio_only: false,
            init_segment: Bytes::new(),
            media_segment: Bytes::new(),
            start_ms: 0,
            duration_ms: 2_000,
            codecs: String::new(),
            bandwidth: 1,
            frame_rate_milli: 30_000,
            content: livecast_media::Content::Source,
            parts: 4,
        };
        let stored = v1::SourceChunk {
            seq: 7,
            ..Default::default()
        };
        let whole = shadow
            .own_whole(stored, vec![rendition])
            .expect("announced");
        assert_eq!(
            whole.renditions[0].1, 0,
            "made whole: its parts are not listed"
        );
        // The next chunk is the standby's alone.
        assert_eq!(shadow.own_part(8, part(0, true, b"q0")).len(), 1);
    }

    #[test]
    fn a_diverging_standby_still_continues_at_a_keyframe() {
        let mut shadow = Shadow::default();
        for part in own_parts().into_iter().take(2) {
            shadow.own_part(7, part);
        }
        shadow.primary_published(7, "360p", 0, 1);
        shadow.primary_published(7, "360p", 1, 2);
        let (now, _) = shadow.take_over();
        assert!(now.is_empty());
        let next = shadow.own_part(7, part(2, true, b"p2"));
        assert_eq!(next.len(), 1, "part 2 opens its own group of pictures");
    }

    #[test]
    fn a_chunk_begun_before_anything_of_it_was_made_is_in_flight() {
        let mut shadow = Shadow::default();
        shadow.begin(8);
        assert_eq!(shadow.in_flight(), BTreeSet::from([8]));
        shadow.primary_announced(8);
        assert!(shadow.in_flight().is_empty());
    }

    #[test]
    fn what_the_primary_announced_is_never_announced_again() {
        let mut shadow = Shadow::default();
        for part in own_parts() {
            shadow.own_part(7, part);
        }
        let stored = v1::SourceChunk {
            seq: 7,
            ..Default::default()
        };
        assert!(shadow.own_whole(stored.clone(), Vec::new()).is_none());
        shadow.primary_announced(7);
        let (now, wholes) = shadow.take_over();
        assert!(now.is_empty() && wholes.is_empty());
        assert!(shadow.own_whole(stored, Vec::new()).is_none());
        assert!(shadow.in_flight().is_empty());
    }
}
