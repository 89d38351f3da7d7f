//! What RTMP's names and values become in ingest, and ingest's answers in RTMP terms.

use bytes::Bytes;
use livecast_core::ErrorKind;
use livecast_core::blob_keys::SourceExt;
use rml_rtmp::sessions::StreamMetadata;

use crate::publish::MediaChunk;
use livecast_formats::flv::{FlvChunk, ScriptValue, on_metadata};

/// The publish status code and metric reason for a refusal from the gate.
pub(super) fn publish_refusal(kind: ErrorKind) -> (&'static str, &'static str) {
    match kind {
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated | ErrorKind::NotFound => {
            ("NetStream.Publish.Denied", "denied")
        }
        ErrorKind::Conflict | ErrorKind::AlreadyExists => ("NetStream.Publish.BadName", "conflict"),
        ErrorKind::InvalidArgument => ("NetStream.Publish.BadName", "bad_name"),
        ErrorKind::Unavailable => ("NetStream.Publish.Failed", "unavailable"),
        ErrorKind::PayloadTooLarge | ErrorKind::Internal => {
            ("NetStream.Publish.Failed", "internal")
        }
    }
}

/// `key?token=...` → `key`: query strings carry client options, not the name.
pub(super) fn without_query(name: &str) -> &str {
    name.split_once('?').map_or(name, |(name, _)| name)
}

/// The chunk handed to the publisher.
pub(super) fn media_chunk(chunk: FlvChunk) -> MediaChunk {
    MediaChunk {
        bytes: chunk.bytes,
        container: SourceExt::Flv,
        pts_ms: chunk.pts_ms,
        duration_ms: chunk.duration_ms,
    }
}

/// Rebuilds `onMetaData` from what the session parsed out of `@setDataFrame`.
pub(super) fn metadata_body(metadata: &StreamMetadata) -> Bytes {
    let number = |value: Option<u32>| value.map(|v| ScriptValue::Number(f64::from(v)));
    let properties = [
        ("width", number(metadata.video_width)),
        ("height", number(metadata.video_height)),
        ("videocodecid", number(metadata.video_codec_id)),
        ("videodatarate", number(metadata.video_bitrate_kbps)),
        (
            "framerate",
            metadata
                .video_frame_rate
                .map(|v| ScriptValue::Number(f64::from(v))),
        ),
        ("audiocodecid", number(metadata.audio_codec_id)),
        ("audiodatarate", number(metadata.audio_bitrate_kbps)),
        ("audiosamplerate", number(metadata.audio_sample_rate)),
        ("audiochannels", number(metadata.audio_channels)),
        ("stereo", metadata.audio_is_stereo.map(ScriptValue::Boolean)),
        ("encoder", metadata.encoder.clone().map(ScriptValue::String)),
    ];
    let present: Vec<_> = properties
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
        .collect();
    on_metadata(&present)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_lose_their_query() {
        assert_eq!(without_query("key?token=1"), "key");
        assert_eq!(without_query("key"), "key");
        assert_eq!(without_query("?x"), "");
    }

    #[test]
    fn gate_errors_map_to_publish_statuses() {
        assert_eq!(
            publish_refusal(ErrorKind::PermissionDenied),
            ("NetStream.Publish.Denied", "denied")
        );
        assert_eq!(publish_refusal(ErrorKind::Conflict).1, "conflict");
        assert_eq!(publish_refusal(ErrorKind::Unavailable).1, "unavailable");
    }

    #[test]
    fn metadata_keeps_what_the_session_parsed() {
        let mut metadata = StreamMetadata::new();
        metadata.video_width = Some(640);
        metadata.audio_is_stereo = Some(true);
        let expected = on_metadata(&[
            ("width", ScriptValue::Number(640.0)),
            ("stereo", ScriptValue::Boolean(true)),
        ]);
        assert_eq!(metadata_body(&metadata), expected);
    }
}
