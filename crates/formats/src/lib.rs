//! What broadcasters send Livecast, parsed without trusting it: FLV, the container RTMP media
//! travels in (tags, codec packet headers, and the chunker that cuts a publish into
//! self-contained source chunks), and the file names and media playlists of an HLS push.
//! [`hls_check`] validates media playlists against the Low-Latency HLS rules of RFC 8216bis.
//!
//! Pure functions over bytes and text, no I/O: the ingest service does the networking, and the
//! fuzz targets in `fuzz/` drive these parsers with arbitrary input.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod flv;
pub mod hls_check;
pub mod hls_push;
