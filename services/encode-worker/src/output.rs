//! What the worker makes, made durable and announced: segments on `livecast.segments` (and
//! copied to the backup region), parts on `livecast.parts`.

use std::sync::Arc;

use bytes::Bytes;
use livecast_blob::BlobStore;
use livecast_bus::EventBus;
use livecast_core::{Error, EventId, RegionName, RenditionName, StreamId, blob_keys};
use livecast_media::{Content, EncodedPart, EncodedRendition};
use livecast_proto::{topics, v1};
use prost::Message;

use crate::metrics;

/// Where segments and parts go.
#[derive(Clone)]
pub(crate) struct Output {
    pub blob: Arc<dyn BlobStore>,
    pub bus: Arc<dyn EventBus>,
    pub region: RegionName,
    /// The backup region's blob store, which gets a copy of every segment.
    pub backup: Option<Arc<dyn BlobStore>>,
}

/// What a new broadcaster session changed of the stream's format.
#[derive(Debug, Default)]
pub(crate) struct FormatChange {
    /// Some rendition differs, appears or goes: players need a discontinuity.
    pub changed: bool,
    /// Renditions the stream had that the new source does not reach.
    pub absent: Vec<String>,
}

/// Who makes a chunk's parts and whether it announced the chunk whole: the object under
/// `hls/{stream}/parts/{seq}`, the worker's id on its first line and `announced` on the second
/// once the segments are out. The owner of the durable chunk reads it to know whether the
/// chunk was made live (by whichever worker) before it commits the chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartsClaim {
    pub worker: String,
    pub announced: bool,
}

impl PartsClaim {
    fn encode(&self) -> Bytes {
        let mut text = format!("{}\n", self.worker);
        if self.announced {
            text.push_str("announced\n");
        }
        Bytes::from(text)
    }

    fn decode(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut lines = text.lines();
        PartsClaim {
            worker: lines.next().unwrap_or_default().to_string(),
            announced: lines.next() == Some("announced"),
        }
    }
}

/// The segment of one rendition of one chunk, and how it came to be.
struct SegmentOf<'a> {
    chunk: &'a v1::SourceChunk,
    rendition: &'a EncodedRendition,
    ladder_size: u32,
    /// Why a stand-in stands in (for slate).
    reason: &'a str,
    /// How many of its parts were announced before (0: made whole at once).
    part_count: u32,
}

impl Output {
    /// Claims the making of segment `seq`'s parts for `worker`: false when another worker
    /// claimed them first (it followed the chunk before this one took the stream over).
    pub async fn claim_parts(
        &self,
        stream: &StreamId,
        seq: u64,
        worker: &str,
    ) -> Result<bool, Error> {
        let key = blob_keys::parts_claim(stream, seq);
        let claim = PartsClaim {
            worker: worker.to_string(),
            announced: false,
        };
        Ok(self.blob.put_if_absent(&key, claim.encode()).await?)
    }

    /// Takes the claim on segment `seq` over for `worker`, whoever held it (a standby taking
    /// over, or the owner of the durable chunk making it from the store).
    pub async fn take_claim(&self, stream: &StreamId, seq: u64, worker: &str) -> Result<(), Error> {
        let claim = PartsClaim {
            worker: worker.to_string(),
            announced: false,
        };
        self.put_claim(stream, seq, &claim).await
    }

    /// Records that `worker` announced segment `seq` whole.
    pub async fn mark_announced(
        &self,
        stream: &StreamId,
        seq: u64,
        worker: &str,
    ) -> Result<(), Error> {
        let claim = PartsClaim {
            worker: worker.to_string(),
            announced: true,
        };
        self.put_claim(stream, seq, &claim).await
    }

    /// The claim on segment `seq`, if any worker made or makes it live.
    pub async fn claim(&self, stream: &StreamId, seq: u64) -> Result<Option<PartsClaim>, Error> {
        match self.blob.get(&blob_keys::parts_claim(stream, seq)).await {
            Ok(bytes) => Ok(Some(PartsClaim::decode(&bytes))),
            Err(livecast_blob::BlobError::NotFound { .. }) => Ok(None),
            Err(error) => Err(error.into()),
        }
    }

    async fn put_claim(
        &self,
        stream: &StreamId,
        seq: u64,
        claim: &PartsClaim,
    ) -> Result<(), Error> {
        let key = blob_keys::parts_claim(stream, seq);
        Ok(self.blob.put(&key, claim.encode()).await?)
    }

    /// Writes and announces every rendition of `chunk`, lowest first: a player that is behind
    /// gets something to play soonest. Each rendition comes with how many of its parts were
    /// announced before (0: made whole at once); `reason` says why a stand-in stands in.
    pub async fn segments(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
        mut renditions: Vec<(EncodedRendition, u32)>,
        reason: &str,
    ) -> Result<(), Error> {
        renditions.sort_by_key(|(r, _)| (!r.audio_only, r.bandwidth));
        let ladder_size = renditions.len() as u32;
        for (rendition, part_count) in &renditions {
            let segment = SegmentOf {
                chunk,
                rendition,
                ladder_size,
                reason,
                part_count: *part_count,
            };
            self.segment(stream, segment).await?;
        }
        Ok(())
    }

    /// Writes a rendition's media segment (and init segment, unless its first part did),
    /// then announces the segment.
    async fn segment(&self, stream: &StreamId, segment: SegmentOf<'_>) -> Result<(), Error> {
        let SegmentOf {
            chunk, rendition, ..
        } = segment;
        let name = RenditionName::parse(rendition.name.clone())?;
        let init_key = blob_keys::init_segment(stream, &name);
        let segment_key = blob_keys::media_segment(stream, &name, chunk.seq);
        if segment.part_count == 0 {
            self.blob
                .put(&init_key, rendition.init_segment.clone())
                .await?;
        }
        self.blob
            .put(&segment_key, rendition.media_segment.clone())
            .await?;
        let ready = v1::SegmentReady {
            event_id: EventId::generate().to_string(),
            stream_id: stream.to_string(),
            rendition: Some(rendition_info(rendition)),
            seq: chunk.seq,
            duration_ms: rendition.duration_ms,
            discontinuity: chunk.discontinuity,
            blob_key: segment_key,
            init_blob_key: init_key,
            program_date_time_ms: chunk.wall_clock_ms,
            size_bytes: rendition.media_segment.len() as u64,
            region: self.region.to_string(),
            ladder_size: segment.ladder_size,
            content: segment_content(rendition.content) as i32,
            content_reason: match rendition.content {
                Content::Source => String::new(),
                Content::StillPicture => "the source's video stalled; its audio goes on".into(),
                Content::Slate => segment.reason.to_string(),
            },
            part_count: segment.part_count,
        };
        self.bus
            .publish(
                topics::SEGMENTS,
                stream.as_str(),
                Bytes::from(ready.encode_to_vec()),
            )
            .await?;
        metrics::segment(rendition.content);
        if let Some(backup) = &self.backup {
            replicate(
                backup.clone(),
                [
                    (ready.init_blob_key, rendition.init_segment.clone()),
                    (ready.blob_key, rendition.media_segment.clone()),
                ],
            );
        }
        Ok(())
    }

    /// How a new broadcaster session changed the stream's format: whether one of the
    /// `renditions` of its first chunk has an init segment other than the one stored (or none),
    /// and which rungs it did not make (`not_made`) the stream had before. Only a change calls
    /// for a discontinuity: a broadcaster back with the same settings continues the same
    /// renditions.
    pub async fn format_change(
        &self,
        stream: &StreamId,
        renditions: &[EncodedRendition],
        not_made: &[String],
    ) -> Result<FormatChange, Error> {
        let mut change = FormatChange::default();
        for rendition in renditions {
            let name = RenditionName::parse(rendition.name.clone())?;
            match self.blob.get(&blob_keys::init_segment(stream, &name)).await {
                Ok(init) if init == rendition.init_segment => {}
                Ok(_) | Err(livecast_blob::BlobError::NotFound { .. }) => change.changed = true,
                Err(error) => return Err(error.into()),
            }
        }
        for rendition in not_made {
            let name = RenditionName::parse(rendition.clone())?;
            let init = blob_keys::init_segment(stream, &name);
            if self.blob.head(&init).await?.is_some() {
                change.changed = true;
                change.absent.push(rendition.clone());
            }
        }
        Ok(change)
    }

    /// Announces the rungs `shed` left out of `chunk` (the worker was short of CPU) as gaps: no
    /// bytes, so that playlists list them with `EXT-X-GAP` and players take another rendition.
    /// A gap names its rendition and says nothing else of it.
    pub async fn gaps(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
        shed: &[String],
    ) -> Result<(), Error> {
        for rendition in shed {
            let name = RenditionName::parse(rendition.clone())?;
            let gap = v1::SegmentReady {
                event_id: EventId::generate().to_string(),
                stream_id: stream.to_string(),
                rendition: Some(v1::RenditionInfo {
                    name: rendition.clone(),
                    ..Default::default()
                }),
                seq: chunk.seq,
                duration_ms: chunk.duration_ms,
                discontinuity: chunk.discontinuity,
                blob_key: blob_keys::media_segment(stream, &name, chunk.seq),
                init_blob_key: blob_keys::init_segment(stream, &name),
                program_date_time_ms: chunk.wall_clock_ms,
                size_bytes: 0,
                region: self.region.to_string(),
                ladder_size: 0,
                content: v1::SegmentContent::Gap as i32,
                content_reason: "the worker was short of CPU: the lower rungs were kept live"
                    .into(),
                part_count: 0,
            };
            let payload = Bytes::from(gap.encode_to_vec());
            self.bus
                .publish(topics::SEGMENTS, stream.as_str(), payload)
                .await?;
            metrics::gap();
        }
        Ok(())
    }

    /// Writes one part (and, before a rendition's first part of a chunk, its init segment),
    /// then announces it. `chunk_start` is where the chunk starts on the stream timeline and
    /// when its first frame arrived, both in milliseconds.
    pub async fn part(
        &self,
        stream: &StreamId,
        seq: u64,
        part: &EncodedPart,
        (pts_ms, wall_clock_ms): (i64, i64),
    ) -> Result<(), Error> {
        let name = RenditionName::parse(part.name.clone())?;
        if part.index == 0 {
            let init_key = blob_keys::init_segment(stream, &name);
            self.blob.put(&init_key, part.init_segment.clone()).await?;
        }
        let key = blob_keys::media_part(stream, &name, seq, part.index);
        self.blob.put(&key, part.media.clone()).await?;
        let bits = part.media.len() as u64 * 8;
        let bandwidth =
            u32::try_from(bits * 1000 / u64::from(part.duration_ms.max(1))).unwrap_or(u32::MAX);
        let ready = v1::PartReady {
            event_id: EventId::generate().to_string(),
            stream_id: stream.to_string(),
            rendition: Some(v1::RenditionInfo {
                name: part.name.clone(),
                width: part.width,
                height: part.height,
                bandwidth,
                average_bandwidth: bandwidth,
                codecs: part.codecs.clone(),
                frame_rate_milli: part.frame_rate_milli,
                audio_only: part.audio_only,
            }),
            seq,
            part: part.index,
            duration_ms: part.duration_ms,
            independent: part.independent,
            blob_key: key,
            size_bytes: part.media.len() as u64,
            program_date_time_ms: wall_clock_ms + (part.start_ms - pts_ms),
            // Only the first chunk of an epoch follows a discontinuity, and it is never
            // followed live.
            discontinuity: false,
            part_target_ms: part.target_ms,
            region: self.region.to_string(),
            last: part.last,
        };
        self.bus
            .publish(
                topics::PARTS,
                stream.as_str(),
                Bytes::from(ready.encode_to_vec()),
            )
            .await?;
        metrics::part();
        tracing::debug!(stream_id = %stream, rendition = %part.name, seq, part = part.index,
            duration_ms = part.duration_ms, "part announced");
        Ok(())
    }
}

/// Copies objects to the backup region in the background: viewers there must not wait for
/// it, and a failure is counted and logged, not retried (the home region still has them).
fn replicate(backup: Arc<dyn BlobStore>, objects: [(String, Bytes); 2]) {
    tokio::spawn(async move {
        for (key, body) in objects {
            match backup.put(&key, body).await {
                Ok(()) => metrics::replicated("ok"),
                Err(error) => {
                    metrics::replicated("failed");
                    tracing::warn!(%key, %error, "segment not copied to the backup region");
                }
            }
        }
    });
}

/// What a rendition is, as encoded.
fn rendition_info(rendition: &EncodedRendition) -> v1::RenditionInfo {
    v1::RenditionInfo {
        name: rendition.name.clone(),
        width: rendition.width,
        height: rendition.height,
        bandwidth: rendition.bandwidth,
        average_bandwidth: rendition.bandwidth,
        codecs: rendition.codecs.clone(),
        frame_rate_milli: rendition.frame_rate_milli,
        audio_only: rendition.audio_only,
    }
}

fn segment_content(content: Content) -> v1::SegmentContent {
    match content {
        Content::Source => v1::SegmentContent::Source,
        Content::StillPicture => v1::SegmentContent::StillPicture,
        Content::Slate => v1::SegmentContent::Slate,
    }
}
