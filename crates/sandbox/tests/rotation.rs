//! RotateSecret performs a rotation on the virtual clock, as a rotation function's four
//! steps do: the next value as a new version labelled `AWSPENDING`, then `AWSCURRENT`
//! moved to it and `LastRotatedDate` set; at once or on its schedule; held mid-way on
//! request. ListSecrets shows the fields a watcher needs without reading a value.

mod sm_common;

use serde_json::{json, Value};
use sm_common::*;

const LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:rotate";
const NAME: &str = "production/db_password";

/// A frozen clock (speed 0) so every time below is exact; one secret whose rotations
/// put `pw-{n}` and take 5 virtual seconds from AWSPENDING to AWSCURRENT.
fn scenario() -> String {
    format!(
        r#"
region = "eu-west-1"
account = "123456789012"
speed = 0.0
start = 1000000.0

[[secrets]]
name = "{NAME}"
value = "initial"
version_id = "00000000-0000-4000-8000-000000000001"
rotation_value = "pw-{{n}}"
rotation_seconds = 5.0

[[secrets]]
name = "production/other"
value = "x"
"#
    )
}

fn advance(sb: &sandbox::Sandbox, seconds: f64) {
    sb.world().lock().unwrap().advance_clock(seconds).unwrap();
}

fn now(sb: &sandbox::Sandbox) -> f64 {
    sb.snapshot()["now"].as_f64().unwrap()
}

async fn describe(sb: &sandbox::Sandbox) -> Value {
    sm_ok(sb, "DescribeSecret", json!({"SecretId": NAME})).await
}

async fn current_value(sb: &sandbox::Sandbox) -> String {
    sm_ok(sb, "GetSecretValue", json!({"SecretId": NAME})).await["SecretString"]
        .as_str()
        .unwrap()
        .to_string()
}

const V1: &str = "00000000-0000-4000-8000-000000000001";

#[tokio::test]
async fn an_immediate_rotation_is_pending_first_then_current() {
    let sb = start(&scenario()).await;
    let t0 = now(&sb);
    let out = sm_ok(
        &sb,
        "RotateSecret",
        json!({"SecretId": NAME, "RotationLambdaARN": LAMBDA}),
    )
    .await;
    let v2 = out["VersionId"].as_str().unwrap().to_string();
    // createSecret: the new version is AWSPENDING, AWSCURRENT has not moved.
    let d = describe(&sb).await;
    assert_eq!(
        d["VersionIdsToStages"],
        json!({V1: ["AWSCURRENT"], &v2: ["AWSPENDING"]})
    );
    assert_eq!(d["LastChangedDate"].as_f64(), Some(t0));
    assert!(d.get("LastRotatedDate").is_none(), "{d}");
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(current_value(&sb).await, "initial");
    // A second rotation while this one is under way is refused.
    let again = sm(&sb, "RotateSecret", json!({"SecretId": NAME})).await;
    assert_error(&again, 400, "InvalidRequestException");

    // One jump of the clock far past the finish: the move happened at its own time.
    advance(&sb, 60.0);
    let d = describe(&sb).await;
    assert_eq!(
        d["VersionIdsToStages"],
        json!({V1: ["AWSPREVIOUS"], &v2: ["AWSCURRENT"]})
    );
    assert_eq!(d["LastRotatedDate"].as_f64(), Some(t0 + 5.0));
    assert_eq!(d["LastChangedDate"].as_f64(), Some(t0 + 5.0));
    assert_eq!(current_value(&sb).await, "pw-1");
    // No schedule: nothing more happens.
    advance(&sb, 86400.0 * 60.0);
    let d = describe(&sb).await;
    assert_eq!(d["VersionIdsToStages"].as_object().unwrap().len(), 2, "{d}");
    assert!(d.get("NextRotationDate").is_none(), "{d}");
}

#[tokio::test]
async fn a_scheduled_rotation_starts_on_its_schedule_and_again_after() {
    let sb = start(&scenario()).await;
    let t0 = now(&sb);
    let out = sm_ok(
        &sb,
        "RotateSecret",
        json!({"SecretId": NAME, "RotationLambdaARN": LAMBDA,
               "RotationRules": {"ScheduleExpression": "rate(4 hours)"},
               "RotateImmediately": false}),
    )
    .await;
    assert!(out.get("VersionId").is_none(), "{out}");
    let d = describe(&sb).await;
    assert_eq!(d["NextRotationDate"].as_f64(), Some(t0 + 14400.0));
    assert_eq!(d["VersionIdsToStages"].as_object().unwrap().len(), 1);

    advance(&sb, 14400.0 + 5.0);
    let d = describe(&sb).await;
    assert_eq!(d["LastRotatedDate"].as_f64(), Some(t0 + 14405.0));
    assert_eq!(
        d["NextRotationDate"].as_f64(),
        Some(t0 + 2.0 * 14400.0 + 5.0)
    );
    assert_eq!(current_value(&sb).await, "pw-1");
    // Two more periods: two more rotations, each at its own time.
    advance(&sb, 2.0 * 14405.0);
    let d = describe(&sb).await;
    assert_eq!(d["LastRotatedDate"].as_f64(), Some(t0 + 3.0 * 14405.0));
    assert_eq!(current_value(&sb).await, "pw-3");
    let state = sb.snapshot();
    let s = state["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == NAME)
        .unwrap()
        .clone();
    assert_eq!(s["rotations"], 3);
    assert_eq!(s["versions"].as_array().unwrap().len(), 4);
    // Cancelled: no more rotations.
    sm_ok(&sb, "CancelRotateSecret", json!({"SecretId": NAME})).await;
    advance(&sb, 86400.0);
    assert_eq!(current_value(&sb).await, "pw-3");
}

#[tokio::test]
async fn a_held_rotation_stays_pending_until_released() {
    let sb = start(&scenario()).await;
    let hold = |held: bool| {
        let sb = &sb;
        async move {
            let resp = reqwest::Client::new()
                .put(format!("{}/_sandbox/rotation-holds", sb.endpoint()))
                .json(&json!({"secrets": [NAME], "held": held}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200);
        }
    };
    hold(true).await;
    let t0 = now(&sb);
    let v2 = sm_ok(
        &sb,
        "RotateSecret",
        json!({"SecretId": NAME, "RotationLambdaARN": LAMBDA}),
    )
    .await["VersionId"]
        .as_str()
        .unwrap()
        .to_string();
    advance(&sb, 600.0);
    let d = describe(&sb).await;
    assert_eq!(d["VersionIdsToStages"][&v2], json!(["AWSPENDING"]));
    assert_eq!(d["VersionIdsToStages"][V1], json!(["AWSCURRENT"]));
    assert_eq!(d["LastChangedDate"].as_f64(), Some(t0));
    assert_eq!(
        sb.snapshot()["secrets"][0]["rotating"]["held"],
        true,
        "the snapshot says it is held"
    );
    hold(false).await;
    let d = describe(&sb).await;
    assert_eq!(d["VersionIdsToStages"][&v2], json!(["AWSCURRENT"]));
    assert_eq!(d["LastRotatedDate"].as_f64(), Some(t0 + 600.0));
    // An unknown secret is refused, naming it.
    let resp = reqwest::Client::new()
        .put(format!("{}/_sandbox/rotation-holds", sb.endpoint()))
        .json(&json!({"secrets": ["nope"], "held": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert!(resp.text().await.unwrap().contains("nope"));
}

#[tokio::test]
async fn list_secrets_shows_rotation_fields_and_limits_filter_values() {
    let sb = start(&scenario()).await;
    let t0 = now(&sb);
    let v2 = sm_ok(
        &sb,
        "RotateSecret",
        json!({"SecretId": NAME, "RotationLambdaARN": LAMBDA}),
    )
    .await["VersionId"]
        .as_str()
        .unwrap()
        .to_string();
    let list = sm_ok(
        &sb,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": [NAME]}], "MaxResults": 100}),
    )
    .await;
    let entries = list["SecretList"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{list}");
    assert_eq!(
        entries[0]["SecretVersionsToStages"],
        json!({V1: ["AWSCURRENT"], &v2: ["AWSPENDING"]})
    );
    assert_eq!(entries[0]["LastChangedDate"].as_f64(), Some(t0));
    assert!(entries[0].get("LastRotatedDate").is_none());
    advance(&sb, 5.0);
    let list = sm_ok(&sb, "ListSecrets", json!({})).await;
    let e = list["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Name"] == NAME)
        .unwrap()
        .clone();
    assert_eq!(e["LastRotatedDate"].as_f64(), Some(t0 + 5.0));
    assert_eq!(e["SecretVersionsToStages"][&v2], json!(["AWSCURRENT"]));
    // AWS takes at most 10 values per filter.
    let names: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let too_many = sm(
        &sb,
        "ListSecrets",
        json!({"Filters": [{"Key": "name", "Values": names}]}),
    )
    .await;
    assert_error(&too_many, 400, "InvalidParameterException");
}
