//! The catalogue's gRPC API as the edge's [`PlaybackDirectory`].

use std::time::Duration;

use livecast_core::{Error, ErrorKind, RenditionName, RenditionRecord, SegmentRecord, StreamId};
use livecast_proto::convert::{from_status, status_from_wire};
use livecast_proto::v1;
use livecast_proto::v1::catalogue_client::CatalogueClient;
use tonic::transport::Channel;

use crate::directory::{PlaybackDirectory, PlaybackStream};

/// How long connecting to the catalogue may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one call may take; a viewer is waiting.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Asks the catalogue over gRPC.
#[derive(Debug, Clone)]
pub struct GrpcPlaybackDirectory {
    client: CatalogueClient<Channel>,
    endpoint: String,
}

impl GrpcPlaybackDirectory {
    /// A directory that asks the catalogue at `endpoint` (`http://catalogue:50051`). It
    /// connects lazily: a catalogue that is down fails cold loads (503), not start-up.
    pub fn new(endpoint: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(endpoint.to_string())
            .map_err(|e| anyhow::anyhow!("invalid catalogue_endpoint {endpoint:?}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .connect_lazy();
        Ok(GrpcPlaybackDirectory {
            client: CatalogueClient::new(channel),
            endpoint: endpoint.to_owned(),
        })
    }

    /// The domain error a failed call means; an unreachable catalogue is named, so an
    /// operator knows where to look.
    fn error(&self, status: &tonic::Status) -> Error {
        let mut error = from_status(status);
        if error.kind == ErrorKind::Unavailable {
            error.message = format!(
                "catalogue at {} unavailable: {}",
                self.endpoint, error.message
            );
        }
        error
    }
}

#[async_trait::async_trait]
impl PlaybackDirectory for GrpcPlaybackDirectory {
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
        let stream = self
            .client
            .clone()
            .get_stream(v1::GetStreamRequest { id: id.to_string() })
            .await
            .map_err(|status| self.error(&status))?
            .into_inner();
        Ok(PlaybackStream {
            id: StreamId::parse(stream.id)?,
            status: status_from_wire(stream.status)?,
            home_region: stream.home_region,
        })
    }

    async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        let response = self
            .client
            .clone()
            .list_renditions(v1::ListRenditionsRequest {
                stream_id: id.to_string(),
            })
            .await
            .map_err(|status| self.error(&status))?
            .into_inner();
        response
            .renditions
            .into_iter()
            .map(|info| {
                Ok(RenditionRecord {
                    stream_id: id.clone(),
                    name: RenditionName::parse(info.name)?,
                    width: info.width,
                    height: info.height,
                    bandwidth: info.bandwidth,
                    average_bandwidth: info.average_bandwidth,
                    codecs: info.codecs,
                    frame_rate_milli: info.frame_rate_milli,
                    audio_only: info.audio_only,
                })
            })
            .collect()
    }

    async fn segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        let response = self
            .client
            .clone()
            .list_segments(v1::ListSegmentsRequest {
                stream_id: id.to_string(),
                rendition: rendition.to_string(),
                from_seq,
                limit,
            })
            .await
            .map_err(|status| self.error(&status))?
            .into_inner();
        response
            .segments
            .into_iter()
            .map(|segment| {
                Ok(SegmentRecord {
                    stream_id: StreamId::parse(segment.stream_id)?,
                    rendition: RenditionName::parse(segment.rendition)?,
                    seq: segment.seq,
                    duration_ms: segment.duration_ms,
                    discontinuity: segment.discontinuity,
                    program_date_time: segment.program_date_time_ms,
                    size_bytes: segment.size_bytes,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_endpoint_is_refused_at_start_up() {
        assert!(GrpcPlaybackDirectory::new("not a uri").is_err());
    }

    #[tokio::test]
    async fn an_unreachable_catalogue_is_unavailable_not_a_panic() {
        // Port 9 (discard) on loopback: nothing listens there in tests.
        let directory = GrpcPlaybackDirectory::new("http://127.0.0.1:9").unwrap();
        let error = directory
            .stream(&StreamId::parse("s1").unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::Unavailable, "{error}");
        assert!(error.message.contains("127.0.0.1:9"), "{error}");
    }
}
