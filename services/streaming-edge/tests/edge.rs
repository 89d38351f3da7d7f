//! The streaming edge over real HTTP: an in-process bus, a local blob store, an in-memory
//! catalogue, media made by the ffmpeg command line, and ffmpeg as the player.
//! Set `TEST_LOG=1` to see the service's logs.

#[path = "edge/blocking.rs"]
mod blocking;
#[path = "edge/cold_start.rs"]
mod cold_start;
#[path = "edge/delta.rs"]
mod delta;
#[path = "edge/helpers.rs"]
mod helpers;
#[path = "edge/low_latency.rs"]
mod low_latency;
#[path = "edge/media.rs"]
mod media;
#[path = "edge/objects.rs"]
mod objects;
#[path = "edge/playback.rs"]
mod playback;
#[path = "edge/playlists.rs"]
mod playlists;
