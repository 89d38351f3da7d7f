//! The gRPC API for the other services, a thin adapter over [`Catalogue`].

use livecast_core::{
    Error, RegionName, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord,
};
use livecast_metadata::{StreamQuery, StreamSort};
use livecast_proto::convert::{status_from_wire, to_status};
use livecast_proto::v1;
use livecast_proto::v1::catalogue_server::CatalogueServer;
use tonic::{Request, Response, Status};

use crate::catalogue::{Catalogue, NewStream};

/// Largest page a gRPC client may ask for.
const MAX_PAGE: u32 = 1_000;

/// The tonic service.
pub fn service(catalogue: Catalogue) -> CatalogueServer<GrpcCatalogue> {
    CatalogueServer::new(GrpcCatalogue { catalogue })
}

/// Implements `livecast.v1.Catalogue`.
#[derive(Debug)]
pub struct GrpcCatalogue {
    catalogue: Catalogue,
}

fn to_wire(record: &StreamRecord) -> v1::Stream {
    v1::Stream {
        id: record.id.to_string(),
        name: record.name.clone(),
        description: record.description.clone(),
        thumbnail_url: record.thumbnail_url.clone().unwrap_or_default(),
        status: v1::StreamStatus::from(record.status) as i32,
        home_region: record.home_region.to_string(),
        created_at: record.created_at,
        scheduled_start: record.scheduled_start.unwrap_or(0),
        started_at: record.started_at.unwrap_or(0),
        ended_at: record.ended_at.unwrap_or(0),
    }
}

fn segment_to_wire(segment: &SegmentRecord) -> v1::Segment {
    v1::Segment {
        stream_id: segment.stream_id.to_string(),
        rendition: segment.rendition.to_string(),
        seq: segment.seq,
        duration_ms: segment.duration_ms,
        discontinuity: segment.discontinuity,
        program_date_time_ms: segment.program_date_time,
        size_bytes: segment.size_bytes,
    }
}

fn rendition_to_wire(rendition: &RenditionRecord) -> v1::RenditionInfo {
    v1::RenditionInfo {
        name: rendition.name.to_string(),
        width: rendition.width,
        height: rendition.height,
        bandwidth: rendition.bandwidth,
        average_bandwidth: rendition.average_bandwidth,
        codecs: rendition.codecs.clone(),
        frame_rate_milli: rendition.frame_rate_milli,
        audio_only: rendition.audio_only,
    }
}

fn segment_from_wire(segment: v1::Segment) -> Result<SegmentRecord, Error> {
    Ok(SegmentRecord {
        stream_id: StreamId::parse(segment.stream_id)?,
        rendition: RenditionName::parse(segment.rendition)?,
        seq: segment.seq,
        duration_ms: segment.duration_ms,
        discontinuity: segment.discontinuity,
        program_date_time: segment.program_date_time_ms,
        size_bytes: segment.size_bytes,
    })
}

fn non_zero(value: i64) -> Option<i64> {
    (value != 0).then_some(value)
}

#[tonic::async_trait]
impl v1::catalogue_server::Catalogue for GrpcCatalogue {
    async fn create_stream(
        &self,
        request: Request<v1::CreateStreamRequest>,
    ) -> Result<Response<v1::CreateStreamResponse>, Status> {
        let request = request.into_inner();
        let home_region = (!request.home_region.is_empty())
            .then(|| RegionName::parse(request.home_region))
            .transpose()
            .map_err(to_status)?;
        let new = NewStream {
            name: request.name,
            description: request.description,
            thumbnail_url: (!request.thumbnail_url.is_empty()).then_some(request.thumbnail_url),
            scheduled_start: non_zero(request.scheduled_start),
            home_region,
        };
        let (record, key) = self.catalogue.create(new).await.map_err(to_status)?;
        Ok(Response::new(v1::CreateStreamResponse {
            stream: Some(to_wire(&record)),
            stream_key: key.expose().to_string(),
        }))
    }

    async fn get_stream(
        &self,
        request: Request<v1::GetStreamRequest>,
    ) -> Result<Response<v1::Stream>, Status> {
        let id = StreamId::parse(request.into_inner().id).map_err(to_status)?;
        let record = self.catalogue.get(&id).await.map_err(to_status)?;
        Ok(Response::new(to_wire(&record)))
    }

    async fn list_streams(
        &self,
        request: Request<v1::ListStreamsRequest>,
    ) -> Result<Response<v1::ListStreamsResponse>, Status> {
        let request = request.into_inner();
        let statuses = request
            .status
            .iter()
            .map(|s| status_from_wire(*s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(to_status)?;
        let query = StreamQuery {
            statuses,
            name_contains: None,
            start_from: None,
            start_to: None,
            sort: StreamSort::StartTimeDesc,
            page_token: (!request.page_token.is_empty()).then_some(request.page_token),
            limit: request.limit.clamp(1, MAX_PAGE),
        };
        let page = self.catalogue.list(&query).await.map_err(to_status)?;
        Ok(Response::new(v1::ListStreamsResponse {
            streams: page.items.iter().map(to_wire).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn check_stream_key(
        &self,
        request: Request<v1::CheckStreamKeyRequest>,
    ) -> Result<Response<v1::CheckStreamKeyResponse>, Status> {
        let key = request.into_inner().stream_key;
        let record = self
            .catalogue
            .check_stream_key(&key)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::CheckStreamKeyResponse {
            stream: Some(to_wire(&record)),
        }))
    }

    async fn record_segment(
        &self,
        request: Request<v1::RecordSegmentRequest>,
    ) -> Result<Response<v1::RecordSegmentResponse>, Status> {
        let segment = request
            .into_inner()
            .segment
            .ok_or_else(|| Status::invalid_argument("segment is required"))?;
        let segment = segment_from_wire(segment).map_err(to_status)?;
        let created = self
            .catalogue
            .record_segment(&segment)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::RecordSegmentResponse { created }))
    }

    async fn list_segments(
        &self,
        request: Request<v1::ListSegmentsRequest>,
    ) -> Result<Response<v1::ListSegmentsResponse>, Status> {
        let request = request.into_inner();
        let stream = StreamId::parse(request.stream_id).map_err(to_status)?;
        let rendition = RenditionName::parse(request.rendition).map_err(to_status)?;
        let segments = self
            .catalogue
            .list_segments(&stream, &rendition, request.from_seq, request.limit)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ListSegmentsResponse {
            segments: segments.iter().map(segment_to_wire).collect(),
        }))
    }

    async fn list_renditions(
        &self,
        request: Request<v1::ListRenditionsRequest>,
    ) -> Result<Response<v1::ListRenditionsResponse>, Status> {
        let stream = StreamId::parse(request.into_inner().stream_id).map_err(to_status)?;
        let renditions = self
            .catalogue
            .list_renditions(&stream)
            .await
            .map_err(to_status)?;
        Ok(Response::new(v1::ListRenditionsResponse {
            renditions: renditions.iter().map(rendition_to_wire).collect(),
        }))
    }

    async fn change_status(
        &self,
        request: Request<v1::ChangeStatusRequest>,
    ) -> Result<Response<v1::Stream>, Status> {
        let request = request.into_inner();
        let id = StreamId::parse(request.id).map_err(to_status)?;
        let to = status_from_wire(request.status).map_err(to_status)?;
        let record = self
            .catalogue
            .change_status(&id, to)
            .await
            .map_err(to_status)?;
        Ok(Response::new(to_wire(&record)))
    }
}
