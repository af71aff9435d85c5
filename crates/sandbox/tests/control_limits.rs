//! Every number the control API takes is range-checked: NaN-like, huge and negative
//! values answer 400 with a one-line message naming the range, and afterwards the clock
//! still works (`now` is a number, a deployment still takes virtual time).

mod sm_common;

use serde_json::{json, Value};
use sm_common::*;

const T0: f64 = 1_700_000_000.0;

const SCENARIO: &str = r#"
speed = 0.0
start = 1700000000
[[secrets]]
name = "db"
value = "v1"
arn_suffix = "AbCdEf"
[[clusters]]
clusterName = "c"
[[task_definitions]]
family = "web"
[[task_definitions.containerDefinitions]]
name = "app"
image = "app:1"
essential = true
secrets = [{ name = "DB", valueFrom = "/aws/reference/secretsmanager/db" }]
[[services]]
cluster = "c"
serviceName = "web"
taskDefinition = "web"
desiredCount = 2
"#;

async fn ecs(sb: &sandbox::Sandbox, op: &str, body: Value) -> Value {
    let a = raw_json(
        sb,
        &format!("AmazonEC2ContainerServiceV20141113.{op}"),
        Some("AKIDSANDBOX"),
        &body.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{op}: {}", a.body);
    a.body
}

/// Each request answers 400 with a one-line error containing `want`.
async fn refused(sb: &sandbox::Sandbox, method: &str, path: &str, bodies: &[&str], want: &str) {
    for body in bodies {
        let (status, out) = control(sb, method, path, body).await;
        assert_eq!(status, 400, "{method} {path} {body}: {out}");
        let e = out["error"].as_str().expect("error message");
        assert!(e.contains(want), "{method} {path} {body}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
}

async fn now(sb: &sandbox::Sandbox) -> f64 {
    let (status, c) = control(sb, "GET", "/_sandbox/clock", "").await;
    assert_eq!(status, 200);
    let (_, state) = control(sb, "GET", "/_sandbox/state", "").await;
    assert_eq!(state["now"], c["now"]);
    c["now"].as_f64().expect("now is a number")
}

async fn advance(sb: &sandbox::Sandbox, seconds: f64) {
    let body = json!({ "seconds": seconds }).to_string();
    let (status, out) = control(sb, "POST", "/_sandbox/clock/advance", &body).await;
    assert_eq!(status, 200, "{out}");
}

/// The clock reads `expected` and a forced deployment of `web` takes virtual time: still
/// in progress a second after it starts, completed ten minutes later.
async fn clock_and_deployments_work(sb: &sandbox::Sandbox, expected: f64) {
    assert_eq!(now(sb).await, expected);
    let (_, c) = control(sb, "GET", "/_sandbox/clock", "").await;
    assert_eq!(c["speed"], 0.0);
    let out = ecs(
        sb,
        "UpdateService",
        json!({"cluster": "c", "service": "web", "forceNewDeployment": true}),
    )
    .await;
    let dep = &out["service"]["deployments"][0];
    assert_eq!(dep["createdAt"].as_f64(), Some(expected), "{dep}");
    advance(sb, 1.0).await;
    let d = ecs(
        sb,
        "DescribeServices",
        json!({"cluster": "c", "services": ["web"]}),
    )
    .await;
    assert_eq!(
        d["services"][0]["deployments"][0]["rolloutState"],
        "IN_PROGRESS"
    );
    advance(sb, 600.0).await;
    let d = ecs(
        sb,
        "DescribeServices",
        json!({"cluster": "c", "services": ["web"]}),
    )
    .await;
    let deps = d["services"][0]["deployments"].as_array().unwrap();
    assert_eq!(deps.len(), 1, "{d}");
    assert_eq!(deps[0]["rolloutState"], "COMPLETED");
    assert_eq!(now(sb).await, expected + 601.0);
}

#[tokio::test]
async fn clock_speed_out_of_range_is_refused_and_the_clock_survives() {
    let sb = start(SCENARIO).await;
    refused(
        &sb,
        "PUT",
        "/_sandbox/clock",
        &[
            r#"{"speed": 1e308}"#,
            r#"{"speed": -1}"#,
            r#"{"speed": 1000001}"#,
        ],
        "speed must be a number from 0 to 1000000",
    )
    .await;
    // Not numbers at all (JSON has no NaN; 1e400 overflows).
    refused(
        &sb,
        "PUT",
        "/_sandbox/clock",
        &[
            r#"{"speed": "NaN"}"#,
            r#"{"speed": 1e400}"#,
            r#"{"speed": null}"#,
        ],
        "",
    )
    .await;
    // The issue's sequence: a sane speed after a huge one works.
    let (status, c) = control(&sb, "PUT", "/_sandbox/clock", r#"{"speed": 1000000}"#).await;
    assert_eq!(status, 200, "{c}");
    assert!(c["now"].as_f64().is_some_and(f64::is_finite), "{c}");
    control(&sb, "PUT", "/_sandbox/clock", r#"{"speed": 0}"#).await;
    let t = now(&sb).await;
    assert!(t >= T0);
    clock_and_deployments_work(&sb, t).await;
}

#[tokio::test]
async fn advance_out_of_range_is_refused_and_the_clock_survives() {
    let sb = start(SCENARIO).await;
    refused(
        &sb,
        "POST",
        "/_sandbox/clock/advance",
        &[
            r#"{"seconds": 1e308}"#,
            r#"{"seconds": -5}"#,
            r#"{"seconds": 31622401}"#,
        ],
        "seconds must be a number from 0 to 31622400",
    )
    .await;
    refused(
        &sb,
        "POST",
        "/_sandbox/clock/advance",
        &[r#"{"seconds": "Infinity"}"#, r#"{"seconds": 1e400}"#],
        "",
    )
    .await;
    clock_and_deployments_work(&sb, T0).await;
}

#[tokio::test]
async fn advance_past_the_year_3000_is_refused() {
    let sb = start(SCENARIO).await;
    // 31 622 400 s at a time gets there in about 1000 steps: check the last step refuses.
    let world = sb.world();
    {
        let mut w = world.lock().unwrap();
        w.clock
            .advance(sandbox::limits::EPOCH_SECONDS.max - T0 - 10.0);
        assert!(w.advance_clock(11.0).is_err());
        assert!(w.advance_clock(10.0).is_ok());
    }
    let (status, c) = control(&sb, "GET", "/_sandbox/clock", "").await;
    assert_eq!(status, 200);
    assert_eq!(c["now"], sandbox::limits::EPOCH_SECONDS.max);
}

#[tokio::test]
async fn timing_out_of_range_is_refused_and_deployments_still_take_time() {
    let sb = start(SCENARIO).await;
    for (body, key) in [
        (r#"{"timing": {"pending": -1}}"#, "timing.pending"),
        (r#"{"timing": {"draining": 1e308}}"#, "timing.draining"),
        (
            r#"{"cluster": "c", "service": "web", "timing": {"health_check": 86401}}"#,
            "timing.health_check",
        ),
        (
            r#"{"cluster": "c", "service": "web", "timing": {"provisioning": -0.5}}"#,
            "timing.provisioning",
        ),
    ] {
        refused(
            &sb,
            "PUT",
            "/_sandbox/timing",
            &[body],
            &format!("{key} must be a number from 0 to 86400"),
        )
        .await;
    }
    clock_and_deployments_work(&sb, T0).await;
}

#[tokio::test]
async fn rule_numbers_out_of_range_are_refused() {
    let sb = start(SCENARIO).await;
    refused(
        &sb,
        "PUT",
        "/_sandbox/health-rules",
        &[
            r#"[{"effect": "app_rejects_value", "probability": 2}]"#,
            r#"[{"effect": "fail_health_check"}, {"effect": "secret_unavailable", "probability": -0.1}]"#,
            r#"[{"effect": "fail_to_start", "probability": 1e308}]"#,
        ],
        "probability must be a number from 0 to 1",
    )
    .await;
    refused(
        &sb,
        "PUT",
        "/_sandbox/hook-rules",
        &[
            r#"[{"result": "fail", "after_seconds": -1}]"#,
            r#"[{"result": "succeed", "after_seconds": 1e308}]"#,
        ],
        "after_seconds must be a number from 0 to 1209600",
    )
    .await;
    refused(
        &sb,
        "PUT",
        "/_sandbox/faults",
        &[r#"[{"kind": "latency", "latency_ms": 1000000000000}]"#],
        "latency_ms must be a number from 0 to 3600000",
    )
    .await;
    // A refused rule list leaves none in place: the deployment succeeds.
    clock_and_deployments_work(&sb, T0).await;
}

#[tokio::test]
async fn scenario_numbers_out_of_range_are_refused_naming_the_key() {
    let sb = start(SCENARIO).await;
    for (extra, want) in [
        ("speed = 1e308", "speed must be a number from 0 to 1000000"),
        ("speed = nan", "speed must be a number"),
        ("speed = -inf", "speed must be a number"),
        ("start = 1e300", "start must be a number from 0 to"),
        ("[timing]\npending = -1", "timing.pending must be a number"),
        (
            "[[health_rules]]\neffect = \"fail_health_check\"\nprobability = inf",
            "health_rules[0].probability",
        ),
        (
            "[[hook_rules]]\nresult = \"fail\"\nafter_seconds = nan",
            "hook_rules[0].after_seconds",
        ),
        ("[sts]\nmin_session_seconds = 0", "sts.min_session_seconds"),
        (
            "[[sts.roles]]\narn = \"arn:aws:iam::1:role/r\"\nmax_mfa_age_seconds = 129601",
            "sts.roles[0].max_mfa_age_seconds",
        ),
    ] {
        // A top-level key replaces SCENARIO's own line, before its tables.
        let text = if extra.starts_with('[') {
            format!("{SCENARIO}\n{extra}\n")
        } else {
            let key = extra.split(' ').next().unwrap();
            let rest: Vec<&str> = SCENARIO
                .lines()
                .filter(|l| !l.starts_with(&format!("{key} = ")))
                .collect();
            format!("{extra}\n{}\n", rest.join("\n"))
        };
        let (status, out) = control(&sb, "POST", "/_sandbox/scenario", &text).await;
        assert_eq!(status, 400, "{extra}: {out}");
        let e = out["error"].as_str().unwrap();
        assert!(e.contains(want), "{extra}: {e}");
        assert!(!e.contains('\n'), "{e}");
    }
    // The world is the one started: its clock and service still work.
    clock_and_deployments_work(&sb, T0).await;
}
