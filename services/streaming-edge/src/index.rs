//! The segment index: per stream, what the playlists are generated from. Kept in memory, fed by
//! `livecast.segments` and `livecast.stream-events`, and filled from the catalogue the first
//! time a viewer asks for a stream this edge has not loaded.
//!
//! Events for any stream are applied as they come, loaded or not; the first request for a
//! stream then loads it from the [`PlaybackDirectory`] once (concurrent requests wait for the
//! same load) and merges. Since the edge subscribes before it serves, every segment is either
//! in the catalogue's answer or in an event applied afterwards: nothing falls in between.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard};

use livecast_core::{Error, ErrorKind, RenditionName, SegmentRecord, StreamId, StreamStatus};
use livecast_proto::convert::status_from_wire;
use livecast_proto::v1;
use moka::future::Cache;
use moka::policy::EvictionPolicy;
use tokio::sync::{OnceCell, watch};

use crate::directory::PlaybackDirectory;
use crate::metrics;
use crate::parts::{Part, PartAt};
use crate::respond::Representation;
use crate::timeline::{RenditionInfo, Segment, StreamTimeline};

/// Segments asked of the directory per page.
pub const LOAD_PAGE: u32 = 1_000;

/// One stream in the index.
#[derive(Debug)]
pub struct IndexedStream {
    id: StreamId,
    loaded: OnceCell<()>,
    timeline: RwLock<StreamTimeline>,
    /// Bumped by every write, inside the write lock: a reader holding the read lock sees the
    /// revision of exactly the timeline it reads.
    revision: AtomicU64,
    /// Playlists rendered at a revision, served until it changes.
    rendered: Mutex<RenderedPlaylists>,
    /// The revision, sent after each write has released the lock: every request blocked on the
    /// next segment (blocking playlist reload) wakes on one send.
    changes: watch::Sender<u64>,
}

impl IndexedStream {
    fn new(id: StreamId) -> Self {
        IndexedStream {
            id,
            loaded: OnceCell::new(),
            timeline: RwLock::new(StreamTimeline::default()),
            revision: AtomicU64::new(0),
            rendered: Mutex::new(RenderedPlaylists::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// A stream known to be hidden or taken down: nothing to load.
    fn gone(id: StreamId, status: StreamStatus) -> Self {
        IndexedStream {
            id,
            loaded: OnceCell::new_with(Some(())),
            timeline: RwLock::new(StreamTimeline::gone(status)),
            revision: AtomicU64::new(0),
            rendered: Mutex::new(RenderedPlaylists::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// A stream whose status an event told, to be loaded on first use.
    fn with_status(id: StreamId, status: StreamStatus) -> Self {
        let stream = IndexedStream::new(id);
        stream.update(|timeline| timeline.apply_status(status, 0));
        stream
    }

    /// The stream's id.
    pub fn id(&self) -> &StreamId {
        &self.id
    }

    /// What is indexed; hold the guard only to render, never across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, StreamTimeline> {
        // Every write completes its merge or makes none, so a poisoned lock holds a
        // consistent timeline.
        self.timeline.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the timeline, then wakes whoever waits for a change.
    fn update<R>(&self, change: impl FnOnce(&mut StreamTimeline) -> R) -> R {
        let (changed, revision) = {
            let mut timeline = self
                .timeline
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let revision = self.revision.fetch_add(1, Ordering::Release) + 1;
            (change(&mut timeline), revision)
        };
        self.changes.send_replace(revision);
        changed
    }

    /// Wakes on every change of the timeline from now on.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The playlist `which` names as `render` makes it from the timeline, rendered once per
    /// change of the timeline and then served from memory: a thousand viewers polling a live
    /// playlist cost one rendering per new segment. `inspect` looks at the same timeline the
    /// playlist is of (what it lists, for a blocking reload).
    pub fn playlist<T>(
        &self,
        which: &PlaylistKey,
        render: impl FnOnce(&StreamTimeline) -> Result<Representation, Error>,
        inspect: impl FnOnce(&StreamTimeline) -> T,
    ) -> Result<(Representation, T), Error> {
        let timeline = self.read();
        let revision = self.revision.load(Ordering::Acquire);
        let rendered = || self.rendered.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, playlist)) = rendered().get(which)
            && *at == revision
        {
            return Ok((playlist.clone(), inspect(&timeline)));
        }
        let playlist = render(&timeline)?;
        rendered().insert(which.clone(), (revision, playlist.clone()));
        Ok((playlist, inspect(&timeline)))
    }
}

/// Which playlist of a stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PlaylistKey {
    /// The master playlist.
    Master,
    /// A rendition's media playlist, whole.
    Media(RenditionName),
    /// A rendition's media playlist as a delta update (`_HLS_skip=YES`).
    Delta(RenditionName),
}

/// Rendered playlists with the revision they were rendered at.
type RenderedPlaylists = HashMap<PlaylistKey, (u64, Representation)>;

/// The in-memory index of every stream this edge serves, bounded by a stream count (least
/// recently used first out).
#[derive(Clone)]
pub struct SegmentIndex {
    streams: Cache<StreamId, Arc<IndexedStream>>,
    directory: Arc<dyn PlaybackDirectory>,
}

impl std::fmt::Debug for SegmentIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentIndex")
            .field("streams", &self.streams.entry_count())
            .finish()
    }
}

impl SegmentIndex {
    /// An empty index holding at most about `max_streams` streams, loading unseen ones from
    /// `directory`.
    pub fn new(directory: Arc<dyn PlaybackDirectory>, max_streams: u64) -> Self {
        let streams = Cache::builder()
            .max_capacity(max_streams)
            // A new live stream must always get in; TinyLFU could refuse it.
            .eviction_policy(EvictionPolicy::lru())
            .build();
        SegmentIndex { streams, directory }
    }

    async fn entry(&self, id: &StreamId) -> Arc<IndexedStream> {
        self.streams
            .get_with_by_ref(id, async { Arc::new(IndexedStream::new(id.clone())) })
            .await
    }

    /// The stream, loaded from the directory on first use. NotFound when neither the catalogue
    /// nor any event knows it.
    pub async fn stream(&self, id: &StreamId) -> Result<Arc<IndexedStream>, Error> {
        let entry = self.entry(id).await;
        match entry.loaded.get_or_try_init(|| self.load(&entry)).await {
            Ok(()) => Ok(entry),
            Err(error) => {
                if error.kind == ErrorKind::NotFound && entry.read().is_empty() {
                    // Do not keep a slot for a stream nobody knows (a typo, a probe).
                    self.streams.invalidate(id).await;
                }
                Err(error)
            }
        }
    }

    async fn load(&self, entry: &IndexedStream) -> Result<(), Error> {
        let outcome = self.load_from_directory(entry).await;
        metrics::index_load(match &outcome {
            Ok(()) => "ok",
            Err(error) if error.kind == ErrorKind::NotFound => "not_found",
            Err(_) => "failed",
        });
        // A failure is logged once, by the request that answers it.
        outcome
    }

    async fn load_from_directory(&self, entry: &IndexedStream) -> Result<(), Error> {
        let id = &entry.id;
        let stream = self.directory.stream(id).await?;
        if matches!(
            stream.status,
            StreamStatus::Archived | StreamStatus::Inactive
        ) {
            entry.update(|timeline| timeline.merge_loaded(stream.status, &[], &[]));
            return Ok(());
        }
        let renditions = self.directory.renditions(id).await?;
        let mut names: BTreeSet<RenditionName> =
            renditions.iter().map(|r| r.name.clone()).collect();
        names.extend(entry.read().rendition_names());
        let mut segments = Vec::new();
        for name in &names {
            self.load_segments(id, name, &mut segments).await?;
        }
        entry.update(|timeline| timeline.merge_loaded(stream.status, &renditions, &segments));
        tracing::debug!(stream_id = %id, renditions = names.len(), segments = segments.len(), "stream loaded");
        Ok(())
    }

    async fn load_segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        into: &mut Vec<SegmentRecord>,
    ) -> Result<(), Error> {
        let mut from_seq = 0;
        loop {
            let page = self
                .directory
                .segments(id, rendition, from_seq, LOAD_PAGE)
                .await?;
            let full = page.len() >= LOAD_PAGE as usize;
            let next = page.last().map(|s| s.seq.saturating_add(1));
            into.extend(page);
            match next {
                // A directory that does not advance would loop forever: stop instead.
                Some(next) if full && next > from_seq => from_seq = next,
                _ => return Ok(()),
            }
        }
    }

    /// Applies one `SegmentReady`; idempotent on (stream, rendition, seq).
    pub async fn apply_segment(&self, ready: &v1::SegmentReady) -> Result<(), Error> {
        let id = StreamId::parse(ready.stream_id.clone())?;
        let info = ready
            .rendition
            .as_ref()
            .ok_or_else(|| Error::invalid("SegmentReady without rendition"))?;
        let rendition = RenditionName::parse(info.name.clone())?;
        let segment = Segment {
            seq: ready.seq,
            duration_ms: ready.duration_ms,
            discontinuity: ready.discontinuity,
            program_date_time_ms: ready.program_date_time_ms,
            size_bytes: ready.size_bytes,
        };
        // A gap names its rendition and says nothing else of it.
        let described = (!segment.is_gap()).then(|| RenditionInfo::from(info));
        let entry = self.entry(&id).await;
        entry.update(|stream| {
            stream.expect_ladder(ready.ladder_size);
            stream.segment_parts_done(&rendition, ready.seq, ready.part_count);
            stream.apply_segment(rendition, described, segment);
        });
        Ok(())
    }

    /// Applies one `PartReady`; idempotent on (stream, rendition, seq, part).
    pub async fn apply_part(&self, ready: &v1::PartReady) -> Result<(), Error> {
        let id = StreamId::parse(ready.stream_id.clone())?;
        let info = ready
            .rendition
            .as_ref()
            .ok_or_else(|| Error::invalid("PartReady without rendition"))?;
        let rendition = RenditionName::parse(info.name.clone())?;
        let at = PartAt {
            seq: ready.seq,
            index: ready.part,
            program_date_time_ms: ready.program_date_time_ms,
            discontinuity: ready.discontinuity,
            target_ms: ready.part_target_ms,
        };
        let part = Part {
            duration_ms: ready.duration_ms,
            independent: ready.independent,
            last: ready.last,
        };
        let entry = self.entry(&id).await;
        entry.update(|stream| {
            stream.apply_part(rendition, Some(RenditionInfo::from(info)), at, part)
        });
        Ok(())
    }

    /// Applies one lifecycle event: STREAM_COMPLETE turns the playlists into VOD, ARCHIVED and
    /// INACTIVE make the stream disappear (404).
    pub async fn apply_stream_event(&self, event: &v1::StreamEvent) -> Result<(), Error> {
        let id = StreamId::parse(event.stream_id.clone())?;
        let status = status_from_wire(event.kind)?;
        match status {
            StreamStatus::Archived | StreamStatus::Inactive => {
                // Drop the segments now; a restore reloads them from the catalogue.
                let gone = Arc::new(IndexedStream::gone(id.clone(), status));
                self.streams.insert(id, gone).await;
            }
            _ => {
                let entry = self.entry(&id).await;
                let restored = entry.read().is_gone();
                if restored {
                    // Back from ARCHIVED: its segments come again from the catalogue.
                    let fresh = Arc::new(IndexedStream::with_status(id.clone(), status));
                    self.streams.insert(id, fresh).await;
                } else {
                    entry.update(|timeline| timeline.apply_status(status, event.segments));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::PlaybackStream;
    use livecast_core::RenditionRecord;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A catalogue that knows one stream with 2500 segments of one rendition.
    #[derive(Default)]
    struct Directory {
        stream_calls: AtomicUsize,
        pages: AtomicUsize,
    }

    fn stream_id() -> StreamId {
        StreamId::parse("s1").unwrap()
    }

    fn rendition() -> RenditionName {
        RenditionName::parse("360p").unwrap()
    }

    #[async_trait::async_trait]
    impl PlaybackDirectory for Directory {
        async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
            self.stream_calls.fetch_add(1, Ordering::SeqCst);
            tokio::task::yield_now().await;
            if *id != stream_id() {
                return Err(Error::not_found(format!("stream {id} not found")));
            }
            Ok(PlaybackStream {
                id: id.clone(),
                status: StreamStatus::StreamActive,
                home_region: "local".into(),
            })
        }

        async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
            Ok(vec![RenditionRecord {
                stream_id: id.clone(),
                name: rendition(),
                width: 640,
                height: 360,
                bandwidth: 1,
                average_bandwidth: 1,
                codecs: "avc1.64001e".into(),
                frame_rate_milli: 30_000,
                audio_only: false,
            }])
        }

        async fn segments(
            &self,
            id: &StreamId,
            rendition: &RenditionName,
            from_seq: u64,
            limit: u32,
        ) -> Result<Vec<SegmentRecord>, Error> {
            self.pages.fetch_add(1, Ordering::SeqCst);
            Ok((from_seq..2_500.min(from_seq + u64::from(limit)))
                .map(|seq| SegmentRecord {
                    stream_id: id.clone(),
                    rendition: rendition.clone(),
                    seq,
                    duration_ms: 2_000,
                    discontinuity: false,
                    program_date_time: 0,
                    size_bytes: 1,
                })
                .collect())
        }
    }

    #[tokio::test]
    async fn concurrent_first_requests_load_once_in_pages_and_merge_events() {
        let directory = Arc::new(Directory::default());
        let index = SegmentIndex::new(directory.clone(), 10);
        let ready = v1::SegmentReady {
            stream_id: "s1".into(),
            rendition: Some(v1::RenditionInfo {
                name: "360p".into(),
                ..Default::default()
            }),
            seq: 2_500,
            duration_ms: 2_000,
            ..Default::default()
        };
        index.apply_segment(&ready).await.unwrap();
        index.apply_segment(&ready).await.unwrap();
        let id = stream_id();
        let loads = (0..10).map(|_| index.stream(&id));
        for loaded in futures::future::join_all(loads).await {
            let entry = loaded.unwrap();
            let timeline = entry.read();
            let rendition = timeline.rendition(&rendition()).unwrap();
            assert_eq!(rendition.all().len(), 2_501);
        }
        assert_eq!(directory.stream_calls.load(Ordering::SeqCst), 1);
        assert_eq!(directory.pages.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unknown_streams_are_not_found_and_archived_ones_are_gone() {
        let directory = Arc::new(Directory::default());
        let index = SegmentIndex::new(directory.clone(), 10);
        let unknown = StreamId::parse("nope").unwrap();
        let error = index.stream(&unknown).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound);
        let archived = v1::StreamEvent {
            stream_id: "s1".into(),
            kind: v1::StreamStatus::Archived as i32,
            ..Default::default()
        };
        index.apply_stream_event(&archived).await.unwrap();
        assert!(index.stream(&stream_id()).await.unwrap().read().is_gone());
        assert_eq!(directory.stream_calls.load(Ordering::SeqCst), 1);
        let restored = v1::StreamEvent {
            kind: v1::StreamStatus::StreamComplete as i32,
            ..archived
        };
        index.apply_stream_event(&restored).await.unwrap();
        let entry = index.stream(&stream_id()).await.unwrap();
        assert!(!entry.read().is_gone());
        assert_eq!(directory.stream_calls.load(Ordering::SeqCst), 2);
    }
}
