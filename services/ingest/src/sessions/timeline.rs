//! A stream's one timeline across its broadcaster sessions. A session after the first (the
//! broadcaster back after a drop or a clean stop, on this instance or another, or a backup
//! input taking over) continues where the previous one, or the slate that bridged the absence,
//! ended, whatever timestamps its encoder starts from: players see one timeline, and nothing
//! calls for a discontinuity unless the media itself changed. Where the timeline stands is kept
//! in the blob store (`source/{id}/timeline`), written after every chunk and slate chunk, so that
//! any instance continues it.

use bytes::Bytes;
use livecast_core::{Error, StreamId, blob_keys};

use super::Inner;

/// Where a stream's timeline ends, and when it got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TimelineEnd {
    /// Where the last chunk ended on the stream timeline, in milliseconds.
    pub ms: i64,
    /// When that chunk was announced, milliseconds since the Unix epoch: the stream timeline
    /// keeps to the clock from there.
    pub at_ms: i64,
}

/// Where a stream's timeline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TimelineRecord {
    /// The sequence number of the next chunk.
    pub next_seq: u64,
    /// Where the last chunk ended.
    pub end: TimelineEnd,
    /// The last session's source format ([`crate::publish::ChunkSoFar::format`]), if known: a
    /// session that starts with the same one continues without a discontinuity.
    pub format: Option<u64>,
}

impl TimelineRecord {
    fn encode(self) -> Bytes {
        let mut line = format!("{} {} {}", self.next_seq, self.end.ms, self.end.at_ms);
        if let Some(format) = self.format {
            line.push_str(&format!(" {format:016x}"));
        }
        line.push('\n');
        Bytes::from(line)
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut fields = text.split_whitespace();
        let (next_seq, end_ms, end_at_ms) = (fields.next()?, fields.next()?, fields.next()?);
        let format = match fields.next() {
            Some(format) => Some(u64::from_str_radix(format, 16).ok()?),
            None => None,
        };
        Some(TimelineRecord {
            next_seq: next_seq.parse().ok()?,
            end: TimelineEnd {
                ms: end_ms.parse().ok()?,
                at_ms: end_at_ms.parse().ok()?,
            },
            format,
        })
    }
}

impl Inner {
    /// Where `id`'s timeline stands, if any instance recorded it.
    pub(super) async fn timeline(&self, id: &StreamId) -> Result<Option<TimelineRecord>, Error> {
        match self.blob.get(&blob_keys::source_timeline(id)).await {
            Ok(bytes) => Ok(TimelineRecord::decode(&bytes)),
            Err(livecast_blob::BlobError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    /// Records where `id`'s timeline stands. A failure is logged: the chunks are durable, and
    /// an instance the broadcaster comes back to would only start its timeline afresh.
    pub(super) async fn record_timeline(&self, id: &StreamId, record: TimelineRecord) {
        let key = blob_keys::source_timeline(id);
        if let Err(error) = self.blob.put(&key, record.encode()).await {
            tracing::warn!(stream_id = %id, %error, "timeline position not recorded");
        }
    }
}

/// Maps one session's timestamps onto the stream timeline: its first timestamp lands where the
/// timeline stands, every other keeps its distance to it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rebase {
    /// Where the session starts on the stream timeline; `None` for the stream's first session,
    /// which keeps its encoder's timestamps.
    start: Option<i64>,
    offset: Option<i64>,
}

impl Rebase {
    /// For a session that starts at `start` on the stream timeline.
    pub fn starting_at(start: Option<i64>) -> Self {
        Rebase {
            start,
            offset: None,
        }
    }

    /// `pts_ms` of the session on the stream timeline.
    pub fn map(&mut self, pts_ms: i64) -> i64 {
        let start = self.start;
        let offset = *self
            .offset
            .get_or_insert_with(|| start.map_or(0, |start| start - pts_ms));
        pts_ms + offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_continues_where_the_timeline_stands_whatever_its_encoder_starts_from() {
        let mut first = Rebase::starting_at(None);
        assert_eq!(
            first.map(1_000),
            1_000,
            "the first session keeps its timestamps"
        );
        let mut back = Rebase::starting_at(Some(9_000));
        assert_eq!(back.map(0), 9_000);
        assert_eq!(back.map(2_000), 11_000);
        let mut late = Rebase::starting_at(Some(9_000));
        assert_eq!(late.map(120_040), 9_000, "a stream of its own an hour in");
    }

    #[test]
    fn a_timeline_record_reads_back() {
        let mut record = TimelineRecord {
            next_seq: 42,
            end: TimelineEnd {
                ms: 84_000,
                at_ms: 1_796_700_000_000,
            },
            format: None,
        };
        assert_eq!(TimelineRecord::decode(&record.encode()), Some(record));
        record.format = Some(0xfeed_0000_0000_beef);
        assert_eq!(TimelineRecord::decode(&record.encode()), Some(record));
        assert_eq!(TimelineRecord::decode(b"garbage"), None);
    }
}
