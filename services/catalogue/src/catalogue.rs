//! The catalogue's logic as a plain type; the REST and gRPC servers and the event consumers are
//! thin adapters over it.

use std::sync::Arc;

use bytes::Bytes;
use livecast_bus::EventBus;
use livecast_core::time::now_millis;
use livecast_core::{
    Error, ErrorKind, EventId, RegionName, RenditionName, RenditionRecord, SegmentRecord, StreamId,
    StreamRecord, StreamStatus,
};
use livecast_metadata::{MetadataError, MetadataStore, StreamPage, StreamQuery};
use livecast_proto::{topics, v1};
use prost::Message;

use livecast_service::admin::constant_time_eq;

use crate::keys::{StreamKey, hash_secret};
use crate::metrics;

/// How often a read-modify-write is retried when another writer got there first.
const MAX_UPDATE_ATTEMPTS: usize = 8;

/// The name under which the catalogue records the events it has applied.
pub const EVENT_CONSUMER: &str = "catalogue";

/// What an admin gives to create a stream.
#[derive(Debug, Clone, Default)]
pub struct NewStream {
    /// Display name (required).
    pub name: String,
    /// Longer description.
    pub description: String,
    /// A thumbnail image URL.
    pub thumbnail_url: Option<String>,
    /// Planned start (ms since epoch).
    pub scheduled_start: Option<i64>,
    /// Region that ingests it; the catalogue's own region when absent.
    pub home_region: Option<RegionName>,
}

/// What an admin may change on a stream; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct StreamPatch {
    /// New display name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New thumbnail URL (`Some(None)` clears it).
    pub thumbnail_url: Option<Option<String>>,
    /// New planned start (`Some(None)` clears it).
    pub scheduled_start: Option<Option<i64>>,
}

/// The system of record for streams and their segments.
#[derive(Debug, Clone)]
pub struct Catalogue {
    store: Arc<dyn MetadataStore>,
    bus: Arc<dyn EventBus>,
    region: RegionName,
}

impl Catalogue {
    /// A catalogue over `store` that publishes lifecycle events on `bus`.
    pub fn new(store: Arc<dyn MetadataStore>, bus: Arc<dyn EventBus>, region: RegionName) -> Self {
        Catalogue { store, bus, region }
    }

    /// Creates a stream in CREATED (ready for a push) and returns it with its secret key.
    pub async fn create(&self, new: NewStream) -> Result<(StreamRecord, StreamKey), Error> {
        let name = validate_name(&new.name)?;
        let description = validate_description(&new.description)?;
        if let Some(url) = &new.thumbnail_url {
            validate_url(url)?;
        }
        let key = StreamKey::generate();
        let now = now_millis();
        let record = StreamRecord {
            id: StreamId::generate(),
            name,
            description,
            thumbnail_url: new.thumbnail_url,
            scheduled_start: new.scheduled_start,
            home_region: new.home_region.unwrap_or_else(|| self.region.clone()),
            status: StreamStatus::Created,
            stream_key_hash: key.hash(),
            created_at: now,
            updated_at: now,
            started_at: None,
            ended_at: None,
            version: 1,
        };
        self.store.create_stream(&record).await?;
        metrics::streams_created().inc();
        self.publish_status(&record, 0).await?;
        tracing::info!(stream_id = %record.id, "stream created");
        Ok((record, key))
    }

    /// One stream.
    pub async fn get(&self, id: &StreamId) -> Result<StreamRecord, Error> {
        self.store
            .get_stream(id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no stream with id {id}")))
    }

    /// A page of streams.
    pub async fn list(&self, query: &StreamQuery) -> Result<StreamPage, Error> {
        Ok(self.store.list_streams(query).await?)
    }

    /// Applies `patch` to the stream's metadata.
    pub async fn update(&self, id: &StreamId, patch: StreamPatch) -> Result<StreamRecord, Error> {
        let name = patch.name.as_deref().map(validate_name).transpose()?;
        let description = patch
            .description
            .as_deref()
            .map(validate_description)
            .transpose()?;
        if let Some(Some(url)) = &patch.thumbnail_url {
            validate_url(url)?;
        }
        self.modify(id, |record| {
            if let Some(name) = &name {
                record.name = name.clone();
            }
            if let Some(description) = &description {
                record.description = description.clone();
            }
            if let Some(url) = &patch.thumbnail_url {
                record.thumbnail_url = url.clone();
            }
            if let Some(start) = patch.scheduled_start {
                record.scheduled_start = start;
            }
            Ok(true)
        })
        .await
    }

    /// Issues a new stream key; the old one stops working at once.
    pub async fn rotate_key(&self, id: &StreamId) -> Result<(StreamRecord, StreamKey), Error> {
        let key = StreamKey::generate();
        let hash = key.hash();
        let record = self
            .modify(id, |record| {
                record.stream_key_hash = hash.clone();
                Ok(true)
            })
            .await?;
        tracing::info!(stream_id = %id, "stream key rotated");
        Ok((record, key))
    }

    /// Moves the stream to `to` if the lifecycle allows it, and publishes the change.
    pub async fn change_status(
        &self,
        id: &StreamId,
        to: StreamStatus,
    ) -> Result<StreamRecord, Error> {
        let at = now_millis();
        let record = self
            .modify(id, |record| {
                record.status = record.status.transition(to)?;
                stamp_times(record, to, at);
                Ok(true)
            })
            .await?;
        self.publish_status(&record, 0).await?;
        tracing::info!(stream_id = %id, status = %to, "stream status changed");
        Ok(record)
    }

    /// Removes a stream and its segment index. Its media is removed by the blob janitor, which
    /// acts on the INACTIVE event published here, so the cleanup is queued durably.
    pub async fn delete(&self, id: &StreamId) -> Result<(), Error> {
        let record = self.get(id).await?;
        if !self.store.delete_stream(id).await? {
            return Err(Error::not_found(format!("no stream with id {id}")));
        }
        let mut gone = record;
        gone.status = StreamStatus::Inactive;
        self.publish_status(&gone, 0).await?;
        tracing::info!(stream_id = %id, "stream deleted");
        Ok(())
    }

    /// The stream a broadcaster's key belongs to, if the key is current and the stream may
    /// receive a push. Unknown keys and streams that are over are refused alike.
    pub async fn check_stream_key(&self, key: &str) -> Result<StreamRecord, Error> {
        let refused = || Error::new(ErrorKind::PermissionDenied, "stream key is not valid");
        if key.is_empty() || key.len() > 256 {
            return Err(refused());
        }
        let hash = hash_secret(key);
        let record = self
            .store
            .stream_by_key_hash(&hash)
            .await?
            .ok_or_else(refused)?;
        if !constant_time_eq(record.stream_key_hash.as_bytes(), hash.as_bytes()) {
            return Err(refused());
        }
        match record.status {
            StreamStatus::Created | StreamStatus::StreamActive => Ok(record),
            other => Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("stream {} is {other} and cannot receive a push", record.id),
            )),
        }
    }

    /// Records a durable segment; Ok(false) when it was known already.
    pub async fn record_segment(&self, segment: &SegmentRecord) -> Result<bool, Error> {
        Ok(self.store.put_segment(segment).await?)
    }

    /// The segments of a rendition from `from_seq`, ascending.
    pub async fn list_segments(
        &self,
        stream: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        Ok(self
            .store
            .list_segments(stream, rendition, from_seq, limit.clamp(1, 10_000))
            .await?)
    }

    /// Records what a rendition is (upsert by stream and name).
    pub async fn put_rendition(&self, rendition: &RenditionRecord) -> Result<(), Error> {
        Ok(self.store.put_rendition(rendition).await?)
    }

    /// The renditions of a stream.
    pub async fn list_renditions(&self, stream: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        Ok(self.store.list_renditions(stream).await?)
    }

    /// Applies a lifecycle event from another service. Duplicates change nothing, and an event
    /// that is behind the stream's state never moves it backwards.
    pub async fn apply_stream_event(&self, event: &v1::StreamEvent) -> Result<(), Error> {
        let event_id = EventId::parse(event.event_id.clone())?;
        let stream_id = StreamId::parse(event.stream_id.clone())?;
        let to = livecast_proto::convert::status_from_wire(event.kind)?;
        let outcome = self
            .modify(&stream_id, |record| {
                let before = (record.status, record.started_at, record.ended_at);
                if lifecycle_rank(to) > lifecycle_rank(record.status) {
                    record.status = to;
                }
                // Times are facts too: the earliest start reported wins, whatever the order.
                stamp_times(record, to, event.at);
                if to == StreamStatus::StreamActive {
                    record.started_at = record.started_at.map(|t| t.min(event.at));
                }
                Ok((record.status, record.started_at, record.ended_at) != before)
            })
            .await;
        match outcome {
            Ok(_) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {
                tracing::debug!(stream_id = %stream_id, "event for a deleted stream ignored");
            }
            Err(e) => return Err(e),
        }
        self.store.record_event(EVENT_CONSUMER, &event_id).await?;
        Ok(())
    }

    /// Read-modify-write with optimistic concurrency. `change` returns whether it changed
    /// anything; unchanged records are not written.
    async fn modify(
        &self,
        id: &StreamId,
        mut change: impl FnMut(&mut StreamRecord) -> Result<bool, Error>,
    ) -> Result<StreamRecord, Error> {
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut record = self.get(id).await?;
            let expected = record.version;
            if !change(&mut record)? {
                return Ok(record);
            }
            record.version = expected + 1;
            record.updated_at = now_millis();
            match self.store.update_stream(&record, expected).await {
                Ok(()) => return Ok(record),
                Err(MetadataError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::unavailable(format!(
            "stream {id} is being changed by others; try again"
        )))
    }

    async fn publish_status(&self, record: &StreamRecord, epoch: u32) -> Result<(), Error> {
        let event = v1::StreamEvent {
            event_id: EventId::generate().to_string(),
            stream_id: record.id.to_string(),
            kind: v1::StreamStatus::from(record.status) as i32,
            at: record.updated_at,
            region: self.region.to_string(),
            name: record.name.clone(),
            epoch,
            // Only ingest knows how long the recording is.
            segments: 0,
        };
        self.bus
            .publish(
                topics::STREAM_EVENTS,
                record.id.as_str(),
                Bytes::from(event.encode_to_vec()),
            )
            .await
            .map_err(Error::from)
    }
}

/// The order in which a broadcast's states happen, used to drop events that are behind.
fn lifecycle_rank(status: StreamStatus) -> u8 {
    match status {
        StreamStatus::Pending => 0,
        StreamStatus::Created => 1,
        StreamStatus::StreamActive => 2,
        StreamStatus::StreamComplete => 3,
        StreamStatus::Archived => 4,
        StreamStatus::Inactive => 5,
    }
}

fn stamp_times(record: &mut StreamRecord, to: StreamStatus, at: i64) {
    match to {
        StreamStatus::StreamActive => {
            record.started_at.get_or_insert(at);
        }
        StreamStatus::StreamComplete => {
            record.started_at.get_or_insert(at);
            record.ended_at.get_or_insert(at);
        }
        _ => {}
    }
}

/// Longest display name.
pub const MAX_NAME_LEN: usize = 200;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 5_000;

fn validate_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("name must not be empty"));
    }
    if name.chars().count() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "name is longer than {MAX_NAME_LEN} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("name must not contain control characters"));
    }
    Ok(name.to_string())
}

fn validate_description(description: &str) -> Result<String, Error> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    Ok(description.to_string())
}

fn validate_url(url: &str) -> Result<(), Error> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2_048
        && !url.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "thumbnail_url {url:?} must be an http or https URL without spaces"
        )))
    }
}
