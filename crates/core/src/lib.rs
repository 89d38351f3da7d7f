//! Domain core shared by every Livecast crate: ids that are safe to put in paths and blob keys,
//! the stream lifecycle state machine, the records the metadata store keeps, and the one error
//! type whose kinds map to both HTTP statuses and gRPC codes.
#![forbid(unsafe_code)]

pub mod blob_keys;
pub mod error;
pub mod ids;
pub mod lifecycle;
pub mod readiness;
pub mod records;
pub mod secret;
pub mod time;

pub use error::{Error, ErrorKind, GrpcCode, Retry};
pub use ids::{EventId, RegionName, RenditionName, StreamId};
pub use lifecycle::StreamStatus;
pub use readiness::ReadinessCheck;
pub use records::{RenditionRecord, SegmentRecord, StreamRecord};
pub use secret::Secret;
