//! Who may publish: the catalogue decides, in process or over gRPC.

use livecast_core::{Error, StreamId, StreamStatus};
use livecast_proto::convert::{from_status, status_from_wire};
use livecast_proto::v1;
use livecast_proto::v1::catalogue_client::CatalogueClient;
use tonic::transport::Channel;

/// A stream whose key was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedStream {
    /// The stream the key belongs to.
    pub id: StreamId,
    /// Its display name.
    pub name: String,
    /// Its lifecycle state when the key was checked.
    pub status: StreamStatus,
}

/// Checks stream keys.
#[async_trait::async_trait]
pub trait StreamDirectory: Send + Sync + 'static {
    /// The stream `key` belongs to, or PermissionDenied for a wrong, revoked or finished key.
    async fn authorize(&self, key: &str) -> Result<AuthorizedStream, Error>;
}

/// The catalogue's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcDirectory {
    client: CatalogueClient<Channel>,
}

impl GrpcDirectory {
    /// A directory that asks the catalogue at `endpoint` (`http://catalogue:50051`); connects
    /// lazily, so a catalogue that is down makes publishes fail, not start-up.
    pub fn new(endpoint: &str) -> anyhow::Result<Self> {
        let channel = Channel::from_shared(endpoint.to_string())?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        Ok(GrpcDirectory {
            client: CatalogueClient::new(channel),
        })
    }
}

#[async_trait::async_trait]
impl StreamDirectory for GrpcDirectory {
    async fn authorize(&self, key: &str) -> Result<AuthorizedStream, Error> {
        let response = self
            .client
            .clone()
            .check_stream_key(v1::CheckStreamKeyRequest {
                stream_key: key.to_string(),
            })
            .await
            .map_err(|status| from_status(&status))?;
        let stream = response
            .into_inner()
            .stream
            .ok_or_else(|| Error::internal("catalogue answered without a stream"))?;
        Ok(AuthorizedStream {
            id: StreamId::parse(stream.id)?,
            name: stream.name,
            status: status_from_wire(stream.status)?,
        })
    }
}
