//! The contracts of Livecast: the catalogue gRPC service and every Kafka payload, generated from
//! `proto/livecast/v1` at build time, plus conversions to the domain core.
#![forbid(unsafe_code)]

/// Generated code for package `livecast.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("livecast.v1");
}

pub mod convert;

/// Kafka topic names.
pub mod topics {
    /// Lifecycle events (`StreamEvent`).
    pub const STREAM_EVENTS: &str = "livecast.stream-events";
    /// Source chunks durable in the blob store (`SourceChunk`).
    pub const CHUNKS: &str = "livecast.chunks";
    /// CMAF segments durable in the blob store (`SegmentReady`).
    pub const SEGMENTS: &str = "livecast.segments";
    /// Partial segments of segments still being made (`PartReady`, Low-Latency HLS).
    pub const PARTS: &str = "livecast.parts";
    /// Encode workers saying they are alive (`WorkerHeartbeat`).
    pub const WORKERS: &str = "livecast.workers";
    /// Messages a consumer gave up on after its retry budget (`DeadLetter`).
    pub const DEAD_LETTERS: &str = "livecast.dead-letters";
}
