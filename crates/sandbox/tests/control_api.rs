//! The control API over real HTTP: state, call log, scenario replacement, clock, rules,
//! and 400s for bad requests.

mod sm_common;

use serde_json::json;
use sm_common::*;

const SCENARIO: &str = r#"
speed = 0.0
start = 1700000000
[[secrets]]
name = "first"
value = "first-value"
"#;

#[tokio::test]
async fn state_holds_secrets_without_values() {
    let sb = start(SCENARIO).await;
    let (status, state) = control(&sb, "GET", "/_sandbox/state", "").await;
    assert_eq!(status, 200);
    assert_eq!(state["region"], "eu-west-1");
    assert_eq!(state["account"], "123456789012");
    assert_eq!(state["now"], 1_700_000_000.0);
    assert_eq!(state["secrets"][0]["name"], "first");
    assert!(!state.to_string().contains("first-value"));
}

#[tokio::test]
async fn call_log_records_and_filters() {
    let sb = start(SCENARIO).await;
    sm(&sb, "GetSecretValue", json!({"SecretId": "first"})).await;
    sm(&sb, "GetSecretValue", json!({"SecretId": "missing"})).await;
    sm(&sb, "ListSecrets", json!({})).await;
    let (status, out) = control(&sb, "GET", "/_sandbox/calls?operation=GetSecretValue", "").await;
    assert_eq!(status, 200);
    let calls = out["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["subject"]["SecretId"], "first");
    assert_eq!(calls[0]["error"], serde_json::Value::Null);
    assert_eq!(calls[1]["error"], "ResourceNotFoundException");
    let (_, all) = control(&sb, "GET", "/_sandbox/calls?service=secretsmanager", "").await;
    assert_eq!(all["calls"].as_array().unwrap().len(), 3);
    let (status, _) = control(&sb, "DELETE", "/_sandbox/calls", "").await;
    assert_eq!(status, 200);
    let (_, none) = control(&sb, "GET", "/_sandbox/calls", "").await;
    assert_eq!(none["calls"], json!([]));
}

#[tokio::test]
async fn scenario_replaces_the_world() {
    let sb = start(SCENARIO).await;
    let (status, out) = control(
        &sb,
        "POST",
        "/_sandbox/scenario",
        "account = \"999999999999\"\n[[secrets]]\nname = \"second\"\nvalue = \"x\"\n",
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["secrets"], 1);
    let gone = sm(&sb, "DescribeSecret", json!({"SecretId": "first"})).await;
    assert_error(&gone, 400, "ResourceNotFoundException");
    let d = sm_ok(&sb, "DescribeSecret", json!({"SecretId": "second"})).await;
    assert!(d["ARN"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:eu-west-1:999999999999:secret:second-"));

    for bad in ["", "speed = \"fast\"", "[[secrets]]\nname = \"a\"\n"] {
        let (status, out) = control(&sb, "POST", "/_sandbox/scenario", bad).await;
        assert_eq!(status, 400, "{bad:?}");
        assert!(out["error"].as_str().unwrap().starts_with("scenario") || bad.is_empty());
    }
    // A refused scenario leaves the world as it was.
    sm_ok(&sb, "DescribeSecret", json!({"SecretId": "second"})).await;
}

#[tokio::test]
async fn clock_speed_and_advance() {
    let sb = start(SCENARIO).await;
    let (status, c) = control(&sb, "GET", "/_sandbox/clock", "").await;
    assert_eq!(status, 200);
    assert_eq!(c["speed"], 0.0);
    let (status, c) = control(
        &sb,
        "POST",
        "/_sandbox/clock/advance",
        r#"{"seconds": 3600}"#,
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["now"], 1_700_003_600.0);
    let (status, c) = control(&sb, "PUT", "/_sandbox/clock", r#"{"speed": 60}"#).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["speed"], 60.0);
    // Writes are stamped with virtual time.
    control(&sb, "PUT", "/_sandbox/clock", r#"{"speed": 0}"#).await;
    let (_, c) = control(&sb, "GET", "/_sandbox/clock", "").await;
    let now = c["now"].as_f64().unwrap();
    assert!(now >= 1_700_003_600.0);
    let out = sm_ok(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "first", "SecretString": "n"}),
    )
    .await;
    let v = sm_ok(
        &sb,
        "GetSecretValue",
        json!({"SecretId": "first", "VersionId": out["VersionId"]}),
    )
    .await;
    assert_eq!(v["CreatedDate"].as_f64().unwrap(), now);

    for (method, path, body) in [
        ("PUT", "/_sandbox/clock", r#"{"speed": -1}"#),
        ("PUT", "/_sandbox/clock", r#"{"pace": 1}"#),
        ("POST", "/_sandbox/clock/advance", "[]"),
        ("POST", "/_sandbox/clock/advance", r#"{"seconds": -5}"#),
    ] {
        let (status, out) = control(&sb, method, path, body).await;
        assert_eq!(status, 400, "{method} {path} {body}");
        assert!(out["error"].is_string());
    }
}

#[tokio::test]
async fn health_rules_and_timing_are_validated() {
    let sb = start(SCENARIO).await;
    let (status, out) = control(
        &sb,
        "PUT",
        "/_sandbox/health-rules",
        r#"[{"service": "api", "secret": "production/api_rds_password", "value": "new", "effect": "fail_to_start"}]"#,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rules"], 1);
    let (status, _) = control(
        &sb,
        "PUT",
        "/_sandbox/health-rules",
        r#"[{"effect": "explode"}]"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, out) = control(
        &sb,
        "PUT",
        "/_sandbox/timing",
        r#"{"timing": {"pending": 1}}"#,
    )
    .await;
    assert_eq!(status, 200, "{out}");
    let (status, _) = control(
        &sb,
        "PUT",
        "/_sandbox/timing",
        r#"{"cluster": "c", "timing": {"pending": 1}}"#,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_endpoints_and_methods() {
    let sb = start(SCENARIO).await;
    let (status, out) = control(&sb, "GET", "/_sandbox/nothing", "").await;
    assert_eq!(status, 404);
    assert!(out["error"].is_string());
    let (status, _) = control(&sb, "DELETE", "/_sandbox/state", "").await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn in_process_methods() {
    let sb = start(SCENARIO).await;
    let world = sb.world();
    {
        let mut w = world.lock().unwrap();
        w.advance_clock(10.0).unwrap();
        assert_eq!(w.clock.now(), 1_700_000_010.0);
        assert!(w.set_speed(f64::NAN).is_err());
        w.set_faults(vec![serde_json::from_value(
            json!({"operation": "ListSecrets", "kind": "throttling"}),
        )
        .unwrap()])
            .unwrap();
    }
    assert_error(
        &sm(&sb, "ListSecrets", json!({})).await,
        400,
        "ThrottlingException",
    );
    world.lock().unwrap().clear_faults();
    assert_eq!(sm(&sb, "ListSecrets", json!({})).await.status, 200);
}

#[tokio::test]
async fn alarms_and_hook_rules_are_set_and_checked() {
    let sb = start(SCENARIO).await;
    let (status, out) = control(&sb, "PUT", "/_sandbox/alarms", r#"{"web-5xx": "ALARM"}"#).await;
    assert_eq!(status, 200, "{out}");
    let (_, out) = control(&sb, "GET", "/_sandbox/alarms", "").await;
    assert_eq!(out, json!({"web-5xx": "ALARM"}));
    let (status, out) = control(&sb, "PUT", "/_sandbox/alarms", r#"{"web-5xx": "RED"}"#).await;
    assert_eq!(status, 400);
    assert!(out["error"].as_str().unwrap().contains("RED"), "{out}");
    let rules =
        r#"[{"service": "web", "stage": "POST_SCALE_UP", "result": "fail", "after_seconds": 30}]"#;
    let (status, out) = control(&sb, "PUT", "/_sandbox/hook-rules", rules).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["rules"], 1);
    let (status, _) = control(
        &sb,
        "PUT",
        "/_sandbox/hook-rules",
        r#"[{"result": "maybe"}]"#,
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = control(&sb, "DELETE", "/_sandbox/alarms", "").await;
    assert_eq!(status, 405);
}
