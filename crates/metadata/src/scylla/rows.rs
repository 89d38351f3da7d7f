//! Rows of the Scylla tables and their mapping to and from records. Pure functions: a corrupt
//! row (bad id, unknown status, negative size) is a typed `Corrupt` error, never a panic.

use livecast_core::{
    RegionName, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord, StreamStatus,
};
use scylla::value::{CqlTimestamp, CqlValue, Row};
use scylla::{DeserializeRow, SerializeRow};

use crate::MetadataError;
use crate::error::{from_stored, to_stored};

/// A row of `streams`.
#[derive(Debug, Clone, PartialEq, Eq, SerializeRow, DeserializeRow)]
pub(crate) struct StreamRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub thumbnail_url: Option<String>,
    pub scheduled_start: Option<CqlTimestamp>,
    pub home_region: String,
    pub status: String,
    pub stream_key_hash: String,
    pub created_at: CqlTimestamp,
    pub updated_at: CqlTimestamp,
    pub started_at: Option<CqlTimestamp>,
    pub ended_at: Option<CqlTimestamp>,
    pub version: i64,
}

/// The values of the conditional update of `streams`: the row plus the version it expects.
#[derive(Debug, Clone, PartialEq, Eq, SerializeRow)]
pub(crate) struct StreamUpdateRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub thumbnail_url: Option<String>,
    pub scheduled_start: Option<CqlTimestamp>,
    pub home_region: String,
    pub status: String,
    pub stream_key_hash: String,
    pub created_at: CqlTimestamp,
    pub updated_at: CqlTimestamp,
    pub started_at: Option<CqlTimestamp>,
    pub ended_at: Option<CqlTimestamp>,
    pub version: i64,
    pub expected_version: i64,
}

/// A row of `segments`.
#[derive(Debug, Clone, PartialEq, Eq, SerializeRow, DeserializeRow)]
pub(crate) struct SegmentRow {
    pub stream_id: String,
    pub rendition: String,
    pub seq: i64,
    pub duration_ms: i64,
    pub discontinuity: bool,
    pub program_date_time: CqlTimestamp,
    pub size_bytes: i64,
}

/// A row of `renditions`.
#[derive(Debug, Clone, PartialEq, Eq, SerializeRow, DeserializeRow)]
pub(crate) struct RenditionRow {
    pub stream_id: String,
    pub name: String,
    pub width: i64,
    pub height: i64,
    pub bandwidth: i64,
    pub average_bandwidth: i64,
    pub codecs: String,
    pub frame_rate_milli: i64,
    pub audio_only: bool,
}

/// The row of a stream; `Invalid` if its version does not fit a `bigint`.
pub(crate) fn stream_to_row(stream: &StreamRecord) -> Result<StreamRow, MetadataError> {
    Ok(StreamRow {
        id: stream.id.as_str().to_owned(),
        name: stream.name.clone(),
        description: stream.description.clone(),
        thumbnail_url: stream.thumbnail_url.clone(),
        scheduled_start: stream.scheduled_start.map(CqlTimestamp),
        home_region: stream.home_region.as_str().to_owned(),
        status: stream.status.as_str().to_owned(),
        stream_key_hash: stream.stream_key_hash.clone(),
        created_at: CqlTimestamp(stream.created_at),
        updated_at: CqlTimestamp(stream.updated_at),
        started_at: stream.started_at.map(CqlTimestamp),
        ended_at: stream.ended_at.map(CqlTimestamp),
        version: to_stored("version", stream.version)?,
    })
}

/// The values of a conditional update from the new row and the expected version.
pub(crate) fn stream_update(
    row: StreamRow,
    expected_version: u64,
) -> Result<StreamUpdateRow, MetadataError> {
    Ok(StreamUpdateRow {
        id: row.id,
        name: row.name,
        description: row.description,
        thumbnail_url: row.thumbnail_url,
        scheduled_start: row.scheduled_start,
        home_region: row.home_region,
        status: row.status,
        stream_key_hash: row.stream_key_hash,
        created_at: row.created_at,
        updated_at: row.updated_at,
        started_at: row.started_at,
        ended_at: row.ended_at,
        version: row.version,
        expected_version: to_stored("expected_version", expected_version)?,
    })
}

fn corrupt(what: &'static str) -> impl Fn(livecast_core::Error) -> MetadataError {
    move |e| MetadataError::corrupt(what, e.message)
}

/// The stream a row holds.
pub(crate) fn row_to_stream(row: StreamRow) -> Result<StreamRecord, MetadataError> {
    Ok(StreamRecord {
        id: StreamId::parse(row.id).map_err(corrupt("stream"))?,
        name: row.name,
        description: row.description,
        thumbnail_url: row.thumbnail_url,
        scheduled_start: row.scheduled_start.map(|t| t.0),
        home_region: RegionName::parse(row.home_region).map_err(corrupt("stream"))?,
        status: row
            .status
            .parse::<StreamStatus>()
            .map_err(corrupt("stream"))?,
        stream_key_hash: row.stream_key_hash,
        created_at: row.created_at.0,
        updated_at: row.updated_at.0,
        started_at: row.started_at.map(|t| t.0),
        ended_at: row.ended_at.map(|t| t.0),
        version: from_stored("stream", "version", row.version)?,
    })
}

/// The row of a segment; `Invalid` if a number does not fit a `bigint`.
pub(crate) fn segment_to_row(segment: &SegmentRecord) -> Result<SegmentRow, MetadataError> {
    Ok(SegmentRow {
        stream_id: segment.stream_id.as_str().to_owned(),
        rendition: segment.rendition.as_str().to_owned(),
        seq: to_stored("seq", segment.seq)?,
        duration_ms: i64::from(segment.duration_ms),
        discontinuity: segment.discontinuity,
        program_date_time: CqlTimestamp(segment.program_date_time),
        size_bytes: to_stored("size_bytes", segment.size_bytes)?,
    })
}

/// The segment a row holds.
pub(crate) fn row_to_segment(row: SegmentRow) -> Result<SegmentRecord, MetadataError> {
    Ok(SegmentRecord {
        stream_id: StreamId::parse(row.stream_id).map_err(corrupt("segment"))?,
        rendition: RenditionName::parse(row.rendition).map_err(corrupt("segment"))?,
        seq: from_stored("segment", "seq", row.seq)?,
        duration_ms: from_stored("segment", "duration_ms", row.duration_ms)?,
        discontinuity: row.discontinuity,
        program_date_time: row.program_date_time.0,
        size_bytes: from_stored("segment", "size_bytes", row.size_bytes)?,
    })
}

/// The row of a rendition.
pub(crate) fn rendition_to_row(rendition: &RenditionRecord) -> RenditionRow {
    RenditionRow {
        stream_id: rendition.stream_id.as_str().to_owned(),
        name: rendition.name.as_str().to_owned(),
        width: i64::from(rendition.width),
        height: i64::from(rendition.height),
        bandwidth: i64::from(rendition.bandwidth),
        average_bandwidth: i64::from(rendition.average_bandwidth),
        codecs: rendition.codecs.clone(),
        frame_rate_milli: i64::from(rendition.frame_rate_milli),
        audio_only: rendition.audio_only,
    }
}

/// The rendition a row holds.
pub(crate) fn row_to_rendition(row: RenditionRow) -> Result<RenditionRecord, MetadataError> {
    let number = |field: &str, value: i64| from_stored::<u32>("rendition", field, value);
    Ok(RenditionRecord {
        stream_id: StreamId::parse(row.stream_id).map_err(corrupt("rendition"))?,
        name: RenditionName::parse(row.name).map_err(corrupt("rendition"))?,
        width: number("width", row.width)?,
        height: number("height", row.height)?,
        bandwidth: number("bandwidth", row.bandwidth)?,
        average_bandwidth: number("average_bandwidth", row.average_bandwidth)?,
        codecs: row.codecs,
        frame_rate_milli: number("frame_rate_milli", row.frame_rate_milli)?,
        audio_only: row.audio_only,
    })
}

/// What a lightweight transaction answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LwtOutcome {
    /// Whether the write happened.
    pub applied: bool,
    /// The stored `version` the server returned with a refused write, if any.
    pub version: Option<i64>,
}

/// Reads the `[applied]` column (and `version`, if present) of an LWT result row, given the
/// result's column names.
pub(crate) fn lwt_outcome(
    columns: &[String],
    row: Option<Row>,
) -> Result<LwtOutcome, MetadataError> {
    let row = row.ok_or_else(|| MetadataError::Other("scylla: LWT answered no row".into()))?;
    let value = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .and_then(|i| row.columns.get(i).cloned().flatten())
    };
    let applied = match value("[applied]") {
        Some(CqlValue::Boolean(applied)) => applied,
        other => {
            return Err(MetadataError::Other(format!(
                "scylla: LWT answered [applied] = {other:?}"
            )));
        }
    };
    let version = match value("version") {
        Some(CqlValue::BigInt(version)) => Some(version),
        _ => None,
    };
    Ok(LwtOutcome { applied, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> StreamRecord {
        StreamRecord {
            id: StreamId::parse("s1").unwrap(),
            name: "Launch".into(),
            description: "the launch".into(),
            thumbnail_url: Some("https://img/x.png".into()),
            scheduled_start: Some(1_000),
            home_region: RegionName::parse("eu-west").unwrap(),
            status: StreamStatus::StreamActive,
            stream_key_hash: "abc".into(),
            created_at: 10,
            updated_at: 20,
            started_at: Some(1_500),
            ended_at: None,
            version: 3,
        }
    }

    #[test]
    fn streams_round_trip_through_rows() {
        let record = stream();
        let row = stream_to_row(&record).unwrap();
        assert_eq!(row.status, "STREAM_ACTIVE");
        assert_eq!(row.started_at, Some(CqlTimestamp(1_500)));
        assert_eq!(row_to_stream(row.clone()).unwrap(), record);
        let update = stream_update(row, 2).unwrap();
        assert_eq!((update.version, update.expected_version), (3, 2));
    }

    #[test]
    fn corrupt_stream_rows_are_typed_errors() {
        let good = stream_to_row(&stream()).unwrap();
        let bad_rows = [
            StreamRow {
                status: "LIVE-ISH".into(),
                ..good.clone()
            },
            StreamRow {
                id: "../etc".into(),
                ..good.clone()
            },
            StreamRow {
                home_region: "".into(),
                ..good.clone()
            },
            StreamRow {
                version: -1,
                ..good
            },
        ];
        for row in bad_rows {
            let err = row_to_stream(row).unwrap_err();
            assert!(
                matches!(err, MetadataError::Corrupt { what: "stream", .. }),
                "{err}"
            );
        }
        let huge = StreamRecord {
            version: u64::MAX,
            ..stream()
        };
        assert!(matches!(
            stream_to_row(&huge),
            Err(MetadataError::Invalid(_))
        ));
    }

    #[test]
    fn segments_and_renditions_round_trip_and_reject_corruption() {
        let segment = SegmentRecord {
            stream_id: StreamId::parse("s1").unwrap(),
            rendition: RenditionName::parse("720p").unwrap(),
            seq: 42,
            duration_ms: 2_000,
            discontinuity: true,
            program_date_time: 1_700_000_000_000,
            size_bytes: 123_456,
        };
        let row = segment_to_row(&segment).unwrap();
        assert_eq!(row_to_segment(row.clone()).unwrap(), segment);
        for bad in [
            SegmentRow {
                size_bytes: -5,
                ..row.clone()
            },
            SegmentRow {
                duration_ms: i64::from(u32::MAX) + 1,
                ..row.clone()
            },
            SegmentRow {
                rendition: "a/b".into(),
                ..row
            },
        ] {
            let err = row_to_segment(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    MetadataError::Corrupt {
                        what: "segment",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let rendition = RenditionRecord {
            stream_id: StreamId::parse("s1").unwrap(),
            name: RenditionName::parse("audio").unwrap(),
            width: 0,
            height: 0,
            bandwidth: 128_000,
            average_bandwidth: 96_000,
            codecs: "mp4a.40.2".into(),
            frame_rate_milli: 0,
            audio_only: true,
        };
        let row = rendition_to_row(&rendition);
        assert_eq!(row_to_rendition(row.clone()).unwrap(), rendition);
        let err = row_to_rendition(RenditionRow { width: -1, ..row }).unwrap_err();
        assert!(matches!(
            err,
            MetadataError::Corrupt {
                what: "rendition",
                ..
            }
        ));
    }

    #[test]
    fn lwt_answers_are_read_by_column_name() {
        let columns = vec!["[applied]".to_owned(), "version".to_owned()];
        let refused = Row {
            columns: vec![Some(CqlValue::Boolean(false)), Some(CqlValue::BigInt(7))],
        };
        assert_eq!(
            lwt_outcome(&columns, Some(refused)).unwrap(),
            LwtOutcome {
                applied: false,
                version: Some(7)
            }
        );
        let applied = Row {
            columns: vec![Some(CqlValue::Boolean(true))],
        };
        assert_eq!(
            lwt_outcome(&columns[..1], Some(applied)).unwrap(),
            LwtOutcome {
                applied: true,
                version: None
            }
        );
        let missing = Row {
            columns: vec![Some(CqlValue::Boolean(false)), None],
        };
        assert_eq!(lwt_outcome(&columns, Some(missing)).unwrap().version, None);
        assert!(lwt_outcome(&columns, None).is_err());
        let garbage = Row {
            columns: vec![Some(CqlValue::Int(1))],
        };
        assert!(lwt_outcome(&columns, Some(garbage)).is_err());
    }
}
