//! Issue 11: a command never suggests a command that cannot run. The suggestions below are
//! taken from what the tool printed and run as printed (placeholders filled in), against
//! the sandbox, and what they did is checked on its ground truth. The other suggestions
//! are asserted where their errors are tested (see the report of issue 11's sweep).

mod common;

use std::process::{Command, Output, Stdio};

use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::Value;

/// A blue/green service deployed by CodeDeploy that reads the secret the sample's front,
/// api and admin share.
const CODE_DEPLOY_READER: &str = r#"
[[task_definitions]]
family = "production-bluegreen"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
executionRoleArn = "arn:aws:iam::123456789012:role/bluegreen-execution-role.production"

[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/online-lpa/bluegreen_app:v1.0.0"
essential = true
secrets = [
  { name = "RECIPIENTS", valueFrom = "/aws/reference/secretsmanager/production/opg_lpa_common_account_cleanup_notification_recipients" },
]

[[services]]
cluster = "production-online-lpa"
serviceName = "bluegreen"
taskDefinition = "production-bluegreen"
desiredCount = 1
launchType = "FARGATE"
deploymentController = { type = "CODE_DEPLOY" }
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }
"#;

const SPEED: f64 = 2000.0;

/// The aws CLI the tests use (`SECRET_ROLLOUT_TEST_AWS`, else `aws`).
fn aws_cli() -> String {
    std::env::var("SECRET_ROLLOUT_TEST_AWS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aws".to_string())
}

/// Runs the aws CLI with `args` against the sandbox, with a clean AWS environment.
async fn aws(env: &TestEnv, args: Vec<String>) -> Output {
    let mut cmd = Command::new(aws_cli());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(&args)
        .env("AWS_ENDPOINT_URL", env.sandbox.endpoint())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_CONFIG_FILE", env.dir.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.dir.path().join("aws-credentials"),
        )
        .env("AWS_PAGER", "")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("the aws CLI runs"))
        .await
        .expect("join")
}

/// The `error:` and `hint:` lines of a failed command (text output).
fn error_and_hint(out: &Output) -> (String, String) {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    let error = lines
        .first()
        .and_then(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("an error line\n{}", text(out)));
    let hint = lines
        .get(1)
        .and_then(|l| l.strip_prefix("  hint: "))
        .unwrap_or_else(|| panic!("a hint line\n{}", text(out)));
    (error.to_string(), hint.to_string())
}

/// The words of the command in `hint` that starts with `start` and ends before `end`.
fn command_in(hint: &str, start: &str, end: &[char]) -> Vec<String> {
    let from = hint
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in the hint: {hint}"));
    let rest = &hint[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    rest[..to].split_whitespace().map(str::to_string).collect()
}

/// `rollback SECRET` with no journal when a consumer is deployed by CodeDeploy: refused
/// before any change, and both commands its hint prints (the aws CLI stage move, then the
/// one `redeploy` of the consumers ECS deploys) run as printed and restore the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_a_code_deploy_consumer_and_no_journal_suggests_commands_that_run() {
    let mut toml = sandbox::scenario::SAMPLE_TOML.to_string();
    toml.push_str(CODE_DEPLOY_READER);
    let env = start_with(Scenario::from_toml(&toml).expect("scenario"), SPEED).await;
    let before = env.current_version(SHARED);
    // Someone else wrote a new version (so there is an AWSPREVIOUS to go back to), with
    // no secret-rollout journal behind it.
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("someone-elses-new-value")
        .send()
        .await
        .expect("PutSecretValue");
    let theirs = env.current_version(SHARED);
    assert_ne!(theirs, before);

    let out = env
        .run(&["rollback", SHARED, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(
        error.contains("bluegreen") && error.contains("CODE_DEPLOY"),
        "{error}"
    );
    assert!(!hint.contains("--services\n"), "{hint}");
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0, "nothing moved");
    assert_eq!(env.calls("UpdateService"), 0, "nothing deployed");
    assert_eq!(env.current_version(SHARED), theirs);

    // 1. The stage move, as printed.
    let by_hand = command_in(&hint, "aws secretsmanager", &[')']);
    assert_eq!(
        by_hand,
        [
            "aws",
            "secretsmanager",
            "update-secret-version-stage",
            "--secret-id",
            SHARED,
            "--version-stage",
            "AWSCURRENT",
            "--move-to-version-id",
            before.as_str(),
            "--remove-from-version-id",
            theirs.as_str(),
        ],
        "{hint}"
    );
    let moved = aws(&env, by_hand[1..].to_vec()).await;
    assert!(moved.status.success(), "{}", text(&moved));
    assert_eq!(env.current_version(SHARED), before, "AWSCURRENT is back");

    // 2. The redeploy of the others, as printed (with where and --yes).
    let redeploy = command_in(&hint, "secret-rollout redeploy", &[';', ')']);
    assert_eq!(
        redeploy[..5],
        [
            "secret-rollout",
            "redeploy",
            "--secret",
            SHARED,
            "--services"
        ],
        "{hint}"
    );
    let mut services: Vec<&str> = redeploy[5].split(',').collect();
    services.sort();
    assert_eq!(
        services,
        ["admin", "api", "front"],
        "the ECS consumers: {hint}"
    );
    let mut args: Vec<&str> = redeploy[1..].iter().map(String::as_str).collect();
    args.extend(["--cluster", CLUSTER, "--yes", "--max-poll", "50ms"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    for service in ["admin", "api", "front"] {
        assert_eq!(
            env.versions_read(service, SHARED),
            [before.clone()].into(),
            "{service} holds the restored version"
        );
    }
    assert_eq!(
        env.calls("PutSecretValue"),
        1,
        "only theirs was ever written"
    );
}

/// Giving the current value again: the hint's `redeploy --secret NAME` runs as printed;
/// then the hints that lead from a redeploy's rotation id to `rollback SECRET`, and from
/// `resume` with nothing to resume to `history`, name commands that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_value_redeploy_rollback_and_resume_hints_name_commands_that_run() {
    let env = start(SPEED).await;
    let current = env
        .clients
        .sm
        .get_secret_value()
        .secret_id(SHARED)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("a string secret")
        .to_string();
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--value-stdin",
                "--yes",
            ],
            Some(current.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout redeploy", &['`']);
    assert_eq!(
        suggested,
        ["secret-rollout", "redeploy", "--secret", "NAME"],
        "{hint}"
    );
    let out = env
        .run(
            &[
                "redeploy",
                "--secret",
                SHARED,
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let id = report["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string();
    assert_eq!(env.calls("PutSecretValue"), 0, "a redeploy writes nothing");

    // Rolling back that redeploy by id: it wrote nothing; `history` says what it did.
    let out = env
        .run(&["rollback", &id, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout history", &['`']);
    assert_eq!(suggested, ["secret-rollout", "history"], "{hint}");

    // A redeploy of services by name changed no secret: roll back a secret by name.
    let out = env
        .run(
            &[
                "redeploy",
                "--services",
                "front",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let by_name = report["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string();
    let out = env
        .run(&["rollback", &by_name, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout rollback", &[')']);
    assert_eq!(
        suggested,
        ["secret-rollout", "rollback", "SECRET"],
        "{hint}"
    );
    // As printed, with the secret: the sample's secret has an AWSPREVIOUS, so it restores.
    let previous = env.secret(SHARED)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["stages"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "AWSPREVIOUS"))
        })
        .and_then(|v| v["id"].as_str().map(str::to_string));
    let out = env
        .run(
            &[
                "rollback",
                SHARED,
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    match previous {
        Some(previous) => {
            assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
            assert_eq!(env.current_version(SHARED), previous);
        }
        None => {
            // No earlier version: a refusal that says so, and not a usage error.
            assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
        }
    }

    // Nothing left to resume: the hint's `secret-rollout history` runs.
    let out = env.run(&["resume", "--yes"], None).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout history", &['`']);
    assert_eq!(suggested, ["secret-rollout", "history"], "{hint}");
    let out = env.run(&["history"], None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id[..8]),
        "history lists the redeploy\n{}",
        text(&out)
    );
}
