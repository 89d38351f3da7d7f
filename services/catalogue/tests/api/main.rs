//! The catalogue through its real HTTP and gRPC servers.

mod events;
mod grpc;
mod helpers;
mod malformed;
mod videos;
