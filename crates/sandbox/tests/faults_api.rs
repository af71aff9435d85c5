//! Each fault kind as a raw HTTP client sees it, scripted (`nth`, `count`) and from the
//! scenario, for JSON services and STS.

mod sm_common;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sm_common::*;

const SCENARIO: &str = "[[secrets]]\nname = \"s\"\nvalue = \"v\"\n";

async fn set_faults(sb: &sandbox::Sandbox, rules: Value) {
    let (status, body) = control(sb, "PUT", "/_sandbox/faults", &rules.to_string()).await;
    assert_eq!(status, 200, "{body}");
}

async fn get(sb: &sandbox::Sandbox) -> JsonAnswer {
    sm(sb, "GetSecretValue", json!({"SecretId": "s"})).await
}

#[tokio::test]
async fn throttling_internal_and_unavailable_errors() {
    let sb = start(SCENARIO).await;
    for (kind, status, code) in [
        ("throttling", 400, "ThrottlingException"),
        ("internal", 500, "InternalFailure"),
        ("unavailable", 503, "ServiceUnavailable"),
    ] {
        set_faults(
            &sb,
            json!([{"service": "secretsmanager", "operation": "GetSecretValue", "kind": kind}]),
        )
        .await;
        let a = get(&sb).await;
        assert_error(&a, status, code);
        if kind == "throttling" {
            assert_eq!(a.body["message"], "Rate exceeded");
        }
        // Other operations are not hit.
        assert_eq!(sm(&sb, "ListSecrets", json!({})).await.status, 200);
    }
    let (status, _) = control(&sb, "DELETE", "/_sandbox/faults", "").await;
    assert_eq!(status, 200);
    assert_eq!(get(&sb).await.status, 200);
}

#[tokio::test]
async fn dropped_connection_is_a_client_side_connection_error() {
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"operation": "GetSecretValue", "kind": "drop", "count": 1}]),
    )
    .await;
    let result = reqwest::Client::new()
        .post(sb.endpoint())
        .header("x-amz-target", "secretsmanager.GetSecretValue")
        .header("content-type", "application/x-amz-json-1.1")
        .body(r#"{"SecretId":"s"}"#)
        .send()
        .await;
    let err = result.expect_err("connection closed without an answer");
    assert!(!err.is_status(), "{err}");
    // `count = 1`: the next call is answered.
    assert_eq!(get(&sb).await.status, 200);
    let (_, calls) = control(&sb, "GET", "/_sandbox/calls?operation=GetSecretValue", "").await;
    let errors: Vec<_> = calls["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["error"].clone())
        .collect();
    assert_eq!(errors, vec![json!("DroppedConnection"), Value::Null]);
}

#[tokio::test]
async fn latency_delays_then_answers() {
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"operation": "GetSecretValue", "kind": "latency", "latency_ms": 150}]),
    )
    .await;
    let t = Instant::now();
    let a = get(&sb).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["SecretString"], "v");
    assert!(
        t.elapsed() >= Duration::from_millis(150),
        "{:?}",
        t.elapsed()
    );
}

#[tokio::test]
async fn scripted_nth_call_fails() {
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"service": "secretsmanager", "operation": "GetSecretValue", "kind": "throttling", "nth": [2, 4]}]),
    )
    .await;
    let mut statuses = vec![];
    for _ in 0..5 {
        statuses.push(get(&sb).await.status);
        // Calls of other operations do not count.
        sm(&sb, "ListSecrets", json!({})).await;
    }
    assert_eq!(statuses, vec![200, 400, 200, 400, 200]);
}

#[tokio::test]
async fn sts_faults_answer_in_xml() {
    let sb = start(SCENARIO).await;
    set_faults(
        &sb,
        json!([{"service": "sts", "kind": "unavailable", "count": 1}]),
    )
    .await;
    let (status, xml) = sts(&sb, None, &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 503);
    assert_eq!(xml_field(&xml, "Code").unwrap(), "ServiceUnavailable");
    let (status, _) = sts(&sb, None, &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn faults_from_the_scenario_and_probability() {
    const SEEDED: &str = r#"
seed = 3
[[secrets]]
name = "s"
value = "v"
[[faults]]
operation = "GetSecretValue"
kind = "internal"
probability = 0.5
"#;
    async fn statuses(sb: &sandbox::Sandbox) -> Vec<u16> {
        let mut out = Vec::new();
        for _ in 0..60 {
            out.push(get(sb).await.status);
        }
        out
    }
    let sb = start(SEEDED).await;
    let first = statuses(&sb).await;
    // Only the rule's two answers.
    assert!(first.iter().all(|s| [200, 500].contains(s)), "{first:?}");
    // Seeded: a second sandbox from the same scenario fails exactly the same calls.
    assert_eq!(statuses(&start(SEEDED).await).await, first);
    // And the rule's probability is honoured: a bound, as the exact count is whatever
    // the seed draws (60 draws at 0.5: 10 to 50 is over five standard deviations wide).
    let failed = first.iter().filter(|s| **s == 500).count();
    assert!((10..50).contains(&failed), "{failed} of 60");
    let (_, rules) = control(&sb, "GET", "/_sandbox/faults", "").await;
    assert_eq!(rules[0]["probability"], 0.5);
}

#[tokio::test]
async fn invalid_fault_rules_are_refused() {
    let sb = start(SCENARIO).await;
    for body in [
        "not json",
        r#"[{"kind": "explode"}]"#,
        r#"[{"kind": "drop", "service": "s3"}]"#,
        r#"{"kind": "drop"}"#,
    ] {
        let (status, out) = control(&sb, "PUT", "/_sandbox/faults", body).await;
        assert_eq!(status, 400, "{body}");
        assert!(out["error"].is_string(), "{out}");
    }
    assert_eq!(get(&sb).await.status, 200);
}
