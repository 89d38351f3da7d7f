//! The gRPC API the other services use.

use livecast_proto::v1;
use livecast_proto::v1::catalogue_client::CatalogueClient;

use crate::helpers::spawn_app;

#[tokio::test]
async fn ingest_can_check_a_key_and_record_segments_over_grpc() {
    let app = spawn_app().await;
    let created = app.create("Over gRPC").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let mut client = CatalogueClient::connect(app.grpc_address.clone())
        .await
        .unwrap();

    let checked = client
        .check_stream_key(v1::CheckStreamKeyRequest { stream_key: key })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(checked.stream.unwrap().id, id);
    let refused = client
        .check_stream_key(v1::CheckStreamKeyRequest {
            stream_key: "lck_wrong".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    for seq in [0u64, 1, 1, 2] {
        client
            .record_segment(v1::RecordSegmentRequest {
                segment: Some(v1::Segment {
                    stream_id: id.clone(),
                    rendition: "720p".into(),
                    seq,
                    duration_ms: 2000,
                    discontinuity: false,
                    program_date_time_ms: 1_700_000_000_000 + seq as i64 * 2000,
                    size_bytes: 1000,
                }),
            })
            .await
            .unwrap();
    }
    let listed = client
        .list_segments(v1::ListSegmentsRequest {
            stream_id: id.clone(),
            rendition: "720p".into(),
            from_seq: 1,
            limit: 10,
        })
        .await
        .unwrap()
        .into_inner();
    let seqs: Vec<u64> = listed.segments.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, vec![1, 2]);

    let illegal = client
        .change_status(v1::ChangeStatusRequest {
            id: id.clone(),
            status: v1::StreamStatus::Archived as i32 + 100,
        })
        .await
        .unwrap_err();
    assert_eq!(illegal.code(), tonic::Code::InvalidArgument);
    let live = client
        .change_status(v1::ChangeStatusRequest {
            id: id.clone(),
            status: v1::StreamStatus::StreamActive as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(live.status, v1::StreamStatus::StreamActive as i32);
    let backwards = client
        .change_status(v1::ChangeStatusRequest {
            id,
            status: v1::StreamStatus::Created as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(backwards.code(), tonic::Code::FailedPrecondition);
    let bad_id = client
        .get_stream(v1::GetStreamRequest { id: "../x".into() })
        .await
        .unwrap_err();
    assert_eq!(bad_id.code(), tonic::Code::InvalidArgument);
}
