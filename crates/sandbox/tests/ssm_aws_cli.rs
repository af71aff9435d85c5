//! Parameter Store in the sandbox, driven by the real aws CLI: writes, reads by version and
//! label, history with its writer, labels (bad ones in `InvalidLabels`), describe, delete,
//! and ECS reading the latest version at task launch by name or ARN, failing a task with
//! ECS's message once the parameter is gone. Ground truth from the sandbox's state.
//!
//! The aws CLI comes from `SECRET_ROLLOUT_TEST_AWS`, else `aws` on PATH (`scripts/test`
//! installs it). A missing CLI fails the test.

use std::process::{Command, Output, Stdio};

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

const PARAM: &str = "/production/api/db_password";
const ARN: &str = "arn:aws:ssm:eu-west-1:123456789012:parameter/production/api/db_password";
const CALLER: &str = "arn:aws:iam::123456789012:user/ssm-operator";

const SCENARIO: &str = r#"
[sts]
keys = [{ access_key_id = "AKIDSSM", arn = "arn:aws:iam::123456789012:user/ssm-operator" }]

[[parameters]]
name = "/production/api/db_password"
value = "second"
versions = ["first"]
key_id = "alias/production"

[[clusters]]
clusterName = "prod"

[[task_definitions]]
family = "prod-api"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "app"
secrets = [{ name = "DB_PASSWORD", valueFrom = "/production/api/db_password" }]

[[task_definitions]]
family = "prod-worker"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "worker"
secrets = [{ name = "DB_PASSWORD", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter/production/api/db_password" }]

[[services]]
cluster = "prod"
serviceName = "api"
taskDefinition = "prod-api"
desiredCount = 2
launchType = "FARGATE"
deploymentConfiguration = { minimumHealthyPercent = 50, maximumPercent = 200 }

[[services]]
cluster = "prod"
serviceName = "worker"
taskDefinition = "prod-worker"
desiredCount = 1
launchType = "FARGATE"
deploymentConfiguration = { minimumHealthyPercent = 0, maximumPercent = 100 }
"#;

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
        "the aws CLI ({cli}) does not run: install it (`pip install awscli`, as scripts/test does) \
         or point SECRET_ROLLOUT_TEST_AWS at it"
    );
    cli
}

/// Runs `aws ARGS` with a clean AWS environment, off the async runtime.
async fn aws_raw(cli: &str, endpoint: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(cli);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDSSM")
        .env("AWS_SECRET_ACCESS_KEY", "ssm-secret")
        .env("AWS_CONFIG_FILE", dir.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env("AWS_PAGER", "")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("aws CLI runs"))
        .await
        .expect("join")
}

struct Cli {
    cli: String,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Cli {
    /// A command that must succeed; its JSON output.
    async fn ok(&self, args: &[&str]) -> Value {
        let out = aws_raw(&self.cli, &self.endpoint, self.dir.path(), args).await;
        assert!(
            out.status.success(),
            "aws {} failed: {}\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("the aws CLI prints JSON")
    }

    /// A command that must fail; its stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = aws_raw(&self.cli, &self.endpoint, self.dir.path(), args).await;
        // A service error: 255 from aws CLI v1, 254 from v2.
        assert!(
            matches!(out.status.code(), Some(254 | 255)),
            "aws {} should fail with a service error: {:?} {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

fn running_versions(state: &Value, service: &str) -> Vec<(String, u64)> {
    state["ecs"]["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter(|t| t["service"] == service && t["lastStatus"] == "RUNNING")
        .map(|t| {
            let p = &t["parameters"];
            assert_eq!(p.as_array().map(Vec::len), Some(1), "{t}");
            (
                p[0]["value_from"].as_str().unwrap().to_string(),
                p[0]["version"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_writes_labels_reads_and_ecs_resolves_parameters() {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::from_toml(SCENARIO).expect("scenario parses"),
        speed: Some(2000.0),
        seed: Some(5),
    })
    .await
    .expect("sandbox starts");
    let aws = Cli {
        cli: aws_cli(),
        endpoint: sb.endpoint(),
        dir: tempfile::tempdir().expect("tempdir"),
    };

    // The scenario's two versions; the services started on version 2, by name and by ARN.
    let state = sb.snapshot();
    assert_eq!(
        running_versions(&state, "api"),
        vec![(PARAM.to_string(), 2), (PARAM.to_string(), 2)]
    );
    assert_eq!(
        running_versions(&state, "worker"),
        vec![(ARN.to_string(), 2)]
    );

    // Without Overwrite an existing parameter is refused, and nothing is written.
    let err = aws
        .fails(&[
            "ssm",
            "put-parameter",
            "--name",
            PARAM,
            "--value",
            "x",
            "--type",
            "SecureString",
        ])
        .await;
    assert!(err.contains("ParameterAlreadyExists"), "{err}");

    // An overwrite without --key-id falls back to the account's default key.
    let put = aws
        .ok(&[
            "ssm",
            "put-parameter",
            "--name",
            PARAM,
            "--value",
            "third",
            "--type",
            "SecureString",
            "--overwrite",
        ])
        .await;
    assert_eq!(put, json!({"Version": 3, "Tier": "Standard"}));

    let got = aws
        .ok(&["ssm", "get-parameter", "--name", PARAM, "--with-decryption"])
        .await;
    assert_eq!(got["Parameter"]["Value"], "third");
    assert_eq!(got["Parameter"]["Version"], 3);
    assert_eq!(got["Parameter"]["ARN"], ARN);
    let encrypted = aws.ok(&["ssm", "get-parameter", "--name", PARAM]).await;
    assert_ne!(encrypted["Parameter"]["Value"], "third");
    let by_version = aws
        .ok(&[
            "ssm",
            "get-parameter",
            "--name",
            &format!("{ARN}:1"),
            "--with-decryption",
        ])
        .await;
    assert_eq!(by_version["Parameter"]["Value"], "first");
    assert_eq!(by_version["Parameter"]["Selector"], ":1");

    // History: oldest first, with the writer and the key of each version.
    let history = aws
        .ok(&["ssm", "get-parameter-history", "--name", PARAM])
        .await;
    let versions = history["Parameters"].as_array().expect("Parameters");
    assert_eq!(versions.len(), 3);
    let keys: Vec<&str> = versions
        .iter()
        .map(|v| v["KeyId"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["alias/production", "alias/production", "alias/aws/ssm"]
    );
    assert_eq!(versions[2]["LastModifiedUser"], CALLER);
    assert_eq!(
        versions[0]["LastModifiedUser"],
        "arn:aws:iam::123456789012:user/sandbox"
    );

    // Labels: a bad one comes back in InvalidLabels, the good one moves between versions.
    let labelled = aws
        .ok(&[
            "ssm",
            "label-parameter-version",
            "--name",
            PARAM,
            "--parameter-version",
            "2",
            "--labels",
            "rotation-1",
            "1bad",
            "ssm-x",
        ])
        .await;
    assert_eq!(
        labelled,
        json!({"InvalidLabels": ["1bad", "ssm-x"], "ParameterVersion": 2})
    );
    let by_label = aws
        .ok(&[
            "ssm",
            "get-parameter",
            "--name",
            &format!("{PARAM}:rotation-1"),
        ])
        .await;
    assert_eq!(by_label["Parameter"]["Version"], 2);
    aws.ok(&[
        "ssm",
        "label-parameter-version",
        "--name",
        PARAM,
        "--labels",
        "rotation-1",
    ])
    .await;
    let history = aws
        .ok(&["ssm", "get-parameter-history", "--name", PARAM])
        .await;
    let labels: Vec<&Value> = history["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["Labels"])
        .collect();
    assert_eq!(labels, [&json!([]), &json!([]), &json!(["rotation-1"])]);
    let unlabelled = aws
        .ok(&[
            "ssm",
            "unlabel-parameter-version",
            "--name",
            PARAM,
            "--parameter-version",
            "3",
            "--labels",
            "rotation-1",
            "absent",
        ])
        .await;
    assert_eq!(
        unlabelled,
        json!({"RemovedLabels": ["rotation-1"], "InvalidLabels": ["absent"]})
    );
    let err = aws
        .fails(&["ssm", "get-parameter", "--name", &format!("{PARAM}:9")])
        .await;
    assert!(err.contains("ParameterVersionNotFound"), "{err}");

    let described = aws
        .ok(&[
            "ssm",
            "describe-parameters",
            "--parameter-filters",
            "Key=Path,Option=Recursive,Values=/production",
        ])
        .await;
    let found = described["Parameters"].as_array().expect("Parameters");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["Name"], PARAM);
    assert_eq!(found[0]["Version"], 3);
    assert_eq!(found[0]["KeyId"], "alias/aws/ssm");

    // A forced deployment starts tasks that read version 3, by name and by ARN.
    for service in ["api", "worker"] {
        aws.ok(&[
            "ecs",
            "update-service",
            "--cluster",
            "prod",
            "--service",
            service,
            "--force-new-deployment",
        ])
        .await;
    }
    aws.ok(&[
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "prod",
        "--services",
        "api",
        "worker",
    ])
    .await;
    let state = sb.snapshot();
    assert_eq!(
        running_versions(&state, "api"),
        vec![(PARAM.to_string(), 3), (PARAM.to_string(), 3)]
    );
    assert_eq!(
        running_versions(&state, "worker"),
        vec![(ARN.to_string(), 3)]
    );
    let snap = &state["parameters"][0];
    assert_eq!(snap["name"], PARAM);
    assert_eq!(snap["versions"].as_array().map(Vec::len), Some(3));
    assert!(
        !state.to_string().contains("third"),
        "the state holds no value"
    );

    // Deleted, the parameter fails the next task with ECS's message.
    aws.ok(&["ssm", "delete-parameter", "--name", PARAM]).await;
    let err = aws
        .fails(&["ssm", "delete-parameter", "--name", PARAM])
        .await;
    assert!(err.contains("ParameterNotFound"), "{err}");
    // The clock stops so the stopped task is still listed (ECS forgets it after an hour),
    // then moves on by five virtual minutes, well past a task's provisioning.
    sb.world().lock().unwrap().set_speed(0.0).expect("speed 0");
    let run = aws
        .ok(&[
            "ecs",
            "run-task",
            "--cluster",
            "prod",
            "--task-definition",
            "prod-worker",
        ])
        .await;
    assert!(
        run["tasks"][0]["taskArn"].is_string(),
        "a task was placed: {run}"
    );
    sb.world()
        .lock()
        .unwrap()
        .advance_clock(300.0)
        .expect("advance");
    let state = sb.snapshot();
    let failed: Vec<&Value> = state["ecs"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service"].is_null())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["stopCode"], "TaskFailedToStart");
    assert_eq!(
        failed[0]["stoppedReason"],
        format!("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: {ARN}")
    );
}
