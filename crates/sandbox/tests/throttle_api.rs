//! AWS's rate limits in the sandbox: a burst beyond a bucket is answered
//! `ThrottlingException` "Rate exceeded" as AWS answers it, counted per group, shown in the
//! call log; the Rust SDK and the aws CLI both take it for throttling (they retry it).
//! Buckets here refill once per thousand seconds, so no refill lands during a test.

mod sm_common;

use std::process::{Command, Stdio};

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use serde_json::{json, Value};
use sm_common::*;

const SCENARIO: &str = r#"
[[secrets]]
name = "s"
value = "v"

[[clusters]]
clusterName = "c"
"#;

async fn ecs_call(sb: &sandbox::Sandbox, op: &str, body: Value) -> JsonAnswer {
    let target = format!("AmazonEC2ContainerServiceV20141113.{op}");
    raw_json(sb, &target, None, &body.to_string()).await
}

/// The calls of `operation` in the sandbox's log, with their error codes.
async fn logged(sb: &sandbox::Sandbox, operation: &str) -> Vec<Option<String>> {
    let (status, body) = control(
        sb,
        "GET",
        &format!("/_sandbox/calls?operation={operation}"),
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["error"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_burst_beyond_the_bucket_is_throttled_as_aws_throttles() {
    let sb = start(SCENARIO).await;
    // Off by default: a burst of 150 DescribeServices passes (AWS's bucket holds 100).
    for _ in 0..150 {
        let a = ecs_call(
            &sb,
            "DescribeServices",
            json!({"cluster": "c", "services": ["x"]}),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let (status, report) = control(&sb, "GET", "/_sandbox/limits", "").await;
    assert_eq!(
        (status, &report["enabled"]),
        (200, &json!(false)),
        "{report}"
    );

    // AWS's rates, with a small service-read bucket.
    let spec =
        json!({"preset": "aws", "groups": {"ecs.service_read": {"burst": 3, "sustained": 0.001}}});
    let (status, report) = control(&sb, "PUT", "/_sandbox/limits", &spec.to_string()).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["groups"]["ecs.service_read"]["burst"], 3);
    // The published table: DescribeTaskDefinition's group, 50 burst, 20/s.
    assert_eq!(report["groups"]["ecs.task_definition_read"]["burst"], 50);
    assert_eq!(
        report["groups"]["ecs.task_definition_read"]["sustained"],
        20.0
    );
    assert_eq!(report["groups"]["secretsmanager.write"]["sustained"], 50.0);
    sb.world().lock().unwrap().clear_calls();

    // DescribeServices and ListServices share the bucket: 3 pass, the next two are refused.
    for op in ["DescribeServices", "ListServices", "DescribeServices"] {
        let a = ecs_call(&sb, op, json!({"cluster": "c", "services": ["x"]})).await;
        assert_eq!(a.status, 200, "{op}: {}", a.body);
    }
    for op in ["ListServices", "DescribeServices"] {
        let a = ecs_call(&sb, op, json!({"cluster": "c", "services": ["x"]})).await;
        assert_error(&a, 400, "ThrottlingException");
        assert_eq!(a.body["message"], "Rate exceeded");
    }
    // Another group keeps its own bucket.
    let a = ecs_call(&sb, "DescribeClusters", json!({"clusters": ["c"]})).await;
    assert_eq!(a.status, 200, "{}", a.body);

    let (_, report) = control(&sb, "GET", "/_sandbox/limits", "").await;
    assert_eq!(
        report["throttled"],
        json!({"ecs.service_read": 2}),
        "{report}"
    );
    assert_eq!(report["throttled_total"], 2);
    assert_eq!(
        logged(&sb, "DescribeServices").await,
        vec![None, None, Some("ThrottlingException".to_string())]
    );
    assert_eq!(
        logged(&sb, "ListServices").await,
        vec![None, Some("ThrottlingException".to_string())]
    );

    // Off again: the bucket is gone.
    let (status, report) = control(&sb, "DELETE", "/_sandbox/limits", "").await;
    assert_eq!((status, &report["enabled"]), (200, &json!(false)));
    let a = ecs_call(
        &sb,
        "DescribeServices",
        json!({"cluster": "c", "services": ["x"]}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);

    // A bad override is refused with its key, and changes nothing.
    let bad = json!({"groups": {"ecs.service_reed": {"burst": 1, "sustained": 1}}});
    let (status, body) = control(&sb, "PUT", "/_sandbox/limits", &bad.to_string()).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown group \"ecs.service_reed\""),
        "{body}"
    );
}

#[tokio::test]
async fn secrets_manager_writes_share_one_bucket_from_the_scenario() {
    let toml = format!(
        "{SCENARIO}\n[limits]\npreset = \"none\"\n[limits.groups.\"secretsmanager.write\"]\nburst = 2\nsustained = 0.001\n"
    );
    let sb = start(&toml).await;
    let a = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "w1"}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let versions = sm_ok(&sb, "ListSecretVersionIds", json!({"SecretId": "s"})).await;
    let newest = versions["Versions"][0]["VersionId"].clone();
    let a = sm(
        &sb,
        "UpdateSecretVersionStage",
        json!({"SecretId": "s", "VersionStage": "X", "MoveToVersionId": newest}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = sm(
        &sb,
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "w2"}),
    )
    .await;
    assert_error(&a, 400, "ThrottlingException");
    // A refused write did not run: still two versions.
    let after = sm_ok(&sb, "ListSecretVersionIds", json!({"SecretId": "s"})).await;
    assert_eq!(
        after["Versions"].as_array().map(Vec::len),
        Some(2),
        "{after}"
    );
    // preset none: reads are not limited.
    for _ in 0..20 {
        assert_eq!(
            sm(&sb, "GetSecretValue", json!({"SecretId": "s"}))
                .await
                .status,
            200
        );
    }
    let (_, report) = control(&sb, "GET", "/_sandbox/limits", "").await;
    assert_eq!(
        report["throttled"],
        json!({"secretsmanager.write": 1}),
        "{report}"
    );
    assert!(report["groups"]["ecs.service_read"].is_null(), "{report}");
}

#[tokio::test]
async fn the_rust_sdk_retries_it_as_throttling() {
    let sb = start(SCENARIO).await;
    let spec = json!({"groups": {"ecs.cluster_read": {"burst": 1, "sustained": 0.001}}});
    let (status, _) = control(&sb, "PUT", "/_sandbox/limits", &spec.to_string()).await;
    assert_eq!(status, 200);
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(sb.endpoint())
        .credentials_provider(Credentials::new(
            "AKIDSANDBOX",
            "sandbox",
            None,
            None,
            "test",
        ))
        .retry_config(
            aws_sdk_ecs::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(5)),
        )
        .build();
    let ecs = aws_sdk_ecs::Client::from_conf(conf);
    sb.world().lock().unwrap().clear_calls();
    ecs.list_clusters()
        .send()
        .await
        .expect("the bucket's one token");
    let err = ecs
        .describe_clusters()
        .clusters("c")
        .send()
        .await
        .unwrap_err();
    let service_error = err.as_service_error().expect("a service error");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(service_error),
        Some("ThrottlingException")
    );
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::message(service_error),
        Some("Rate exceeded")
    );
    // Retried as throttling: three attempts reached the sandbox, all refused. (A client
    // error the SDK does not retry would have been sent once.)
    let throttled = Some("ThrottlingException".to_string());
    assert_eq!(
        logged(&sb, "DescribeClusters").await,
        vec![throttled.clone(), throttled.clone(), throttled]
    );
}

/// The aws CLI the tests use (`SECRET_ROLLOUT_TEST_AWS`, else `aws` on PATH).
fn aws_cli() -> String {
    let cli = std::env::var("SECRET_ROLLOUT_TEST_AWS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aws".to_string());
    let found = Command::new(&cli)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the aws CLI ({cli}) does not run: install it or set SECRET_ROLLOUT_TEST_AWS"
    );
    cli
}

#[tokio::test]
async fn the_aws_cli_retries_it_as_throttling() {
    let sb = start(SCENARIO).await;
    let spec = json!({"groups": {"ecs.cluster_read": {"burst": 1, "sustained": 0.001}}});
    let (status, _) = control(&sb, "PUT", "/_sandbox/limits", &spec.to_string()).await;
    assert_eq!(status, 200);
    sb.world().lock().unwrap().clear_calls();
    let dir = tempfile::tempdir().unwrap();
    let cli = aws_cli();
    let endpoint = sb.endpoint();
    let run = move |args: &'static [&'static str]| {
        let mut cmd = Command::new(&cli);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&k);
            }
        }
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDCLI")
            .env("AWS_SECRET_ACCESS_KEY", "cli-secret")
            .env("AWS_CONFIG_FILE", dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                dir.path().join("credentials"),
            )
            .env("AWS_RETRY_MODE", "standard")
            .env("AWS_MAX_ATTEMPTS", "2")
            .env("AWS_PAGER", "")
            .stdin(Stdio::null())
            .output()
            .expect("aws runs")
    };
    // Off the runtime: the sandbox keeps serving while the CLI waits.
    let (first, second) = tokio::task::spawn_blocking(move || {
        (
            run(&["ecs", "list-clusters"]),
            run(&["ecs", "describe-clusters", "--clusters", "c"]),
        )
    })
    .await
    .unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    // A failed call: 254 in aws CLI v2, 255 in v1.
    assert!(
        matches!(second.status.code(), Some(254 | 255)),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("An error occurred (ThrottlingException) when calling the DescribeClusters operation (reached max retries: 1): Rate exceeded"),
        "{stderr}"
    );
    let throttled = Some("ThrottlingException".to_string());
    assert_eq!(
        logged(&sb, "DescribeClusters").await,
        vec![throttled.clone(), throttled]
    );
}

/// The bucket is asked when a request arrives, not when the world gets to it: while the
/// world is busy (its lock held here, as by a long simulation step), a burst of 10 beyond a
/// bucket of 3 is already decided, 7 refused; once the world is free the 3 admitted run and
/// the 7 are answered `ThrottlingException`. (Were the bucket behind the world's lock, no
/// request would be decided while it is held, and requests queued behind a long step would
/// reach the bucket later in a burst they were not sent in.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_throttled_on_arrival_not_after_waiting_for_the_world() {
    const SENT: usize = 10;
    const BURST: usize = 3;
    let sb = start(SCENARIO).await;
    let spec = json!({"preset": "none", "groups": {"ecs.service_read": {"burst": BURST, "sustained": 0.001}}});
    let (status, report) = control(&sb, "PUT", "/_sandbox/limits", &spec.to_string()).await;
    assert_eq!(status, 200, "{report}");
    let world = sb.world();
    let throttle = world.lock().unwrap().throttle.clone();
    world.lock().unwrap().clear_calls();

    // The world held by another thread, as by a long simulation step, until told to let go.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let held = world.clone();
    let busy = std::thread::spawn(move || {
        let _guard = held.lock().unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    locked_rx.recv().unwrap();
    let client = reqwest::Client::new();
    let calls: Vec<_> = (0..SENT)
        .map(|_| {
            let req = client
                .post(sb.endpoint())
                .header("content-type", "application/x-amz-json-1.1")
                .header(
                    "x-amz-target",
                    "AmazonEC2ContainerServiceV20141113.DescribeServices",
                )
                .body(json!({"cluster": "c", "services": ["x"]}).to_string());
            tokio::spawn(async move {
                let resp = req.send().await.expect("HTTP answer");
                let kind = resp
                    .headers()
                    .get("x-amzn-errortype")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                (resp.status().as_u16(), kind)
            })
        })
        .collect();
    // Decided while the world is held. (The guard only bounds a regression's hang.)
    let decided = async {
        while throttle.report()["throttled_total"] != json!(SENT - BURST) {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), decided)
        .await
        .expect("the burst is decided while the world is busy");
    // Nothing was answered yet: every answer needs the world (the call log is there).
    assert!(calls.iter().all(|c| !c.is_finished()));
    release_tx.send(()).unwrap();
    busy.join().unwrap();

    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let refused = answers
        .iter()
        .filter(|(s, k)| *s == 400 && k.as_deref() == Some("ThrottlingException"))
        .count();
    assert_eq!((ok, refused), (BURST, SENT - BURST), "{answers:?}");
    let log = logged(&sb, "DescribeServices").await;
    assert_eq!(log.len(), SENT);
    assert_eq!(
        log.iter()
            .filter(|e| e.as_deref() == Some("ThrottlingException"))
            .count(),
        SENT - BURST
    );
    assert_eq!(throttle.report()["throttled_total"], json!(SENT - BURST));
}

/// A scenario loaded through the control API brings its own limits to the running server
/// (the front keeps asking the same throttle), with full buckets; one without limits turns
/// them off.
#[tokio::test]
async fn a_loaded_scenario_sets_the_limits_the_server_applies() {
    let sb = start(SCENARIO).await;
    let limited = format!(
        "{SCENARIO}\n[limits]\npreset = \"none\"\n[limits.groups.\"ecs.cluster_read\"]\nburst = 2\nsustained = 0.001\n"
    );
    let (status, body) = control(&sb, "POST", "/_sandbox/scenario", &limited).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let a = ecs_call(&sb, "DescribeClusters", json!({"clusters": ["c"]})).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = ecs_call(&sb, "DescribeClusters", json!({"clusters": ["c"]})).await;
    assert_error(&a, 400, "ThrottlingException");
    assert_eq!(
        logged(&sb, "DescribeClusters").await,
        vec![None, None, Some("ThrottlingException".to_string())]
    );
    let (_, report) = control(&sb, "GET", "/_sandbox/limits", "").await;
    assert_eq!(report["throttled_total"], 1, "{report}");

    let (status, body) = control(&sb, "POST", "/_sandbox/scenario", SCENARIO).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..5 {
        let a = ecs_call(&sb, "DescribeClusters", json!({"clusters": ["c"]})).await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let (_, report) = control(&sb, "GET", "/_sandbox/limits", "").await;
    assert_eq!(report["enabled"], false, "{report}");
}
