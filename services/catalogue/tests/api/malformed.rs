//! Randomised malformed requests never produce a 5xx.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

use crate::helpers::{ADMIN_TOKEN, spawn_app};

fn method() -> impl Strategy<Value = reqwest::Method> {
    prop_oneof![
        Just(reqwest::Method::GET),
        Just(reqwest::Method::POST),
        Just(reqwest::Method::PUT),
        Just(reqwest::Method::DELETE),
        Just(reqwest::Method::PATCH),
    ]
}

fn path(existing: String) -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just(existing),
        "[a-zA-Z0-9._~%-]{0,80}",
        Just("..%2F..%2Fetc".to_string()),
        Just("%00".to_string()),
    ];
    let query = "[a-z_]{1,12}=[ -~]{0,30}".prop_map(|q| q.replace([' ', '#'], "+"));
    (
        segment,
        prop_oneof![Just(""), Just("/status"), Just("/stream-key:rotate")],
        query,
    )
        .prop_map(|(segment, tail, query)| format!("/v1/videos/{segment}{tail}?{query}"))
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        r#"\{"(name|status|description|thumbnail_url|scheduled_start|region)": ("[ -~]{0,40}"|[0-9]{1,20}|null|true|\[\]|\{\})\}"#
            .prop_map(String::into_bytes),
    ]
}

#[tokio::test]
async fn a_thousand_malformed_requests_produce_no_server_error() {
    let app = spawn_app().await;
    let existing = app.create("Target").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut runner = TestRunner::new(Config {
        cases: 1000,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (method(), path(existing), body(), any::<bool>());
    let mut cases = Vec::new();
    for _ in 0..1000 {
        cases.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    for (method, path, body, admin) in cases {
        let mut request = app
            .client
            .request(method.clone(), app.url(&path))
            .header("content-type", "application/json")
            .body(body.clone());
        if admin {
            request = request.bearer_auth(ADMIN_TOKEN);
        }
        let response = request.send().await.unwrap();
        assert!(
            !response.status().is_server_error(),
            "{method} {path} {:?} -> {}",
            String::from_utf8_lossy(&body),
            response.status()
        );
    }
}
