//! The runbook (`shared/seed/replacing_secrets.md`) run with the real aws CLI against the
//! sandbox, its commands unchanged but for the endpoint: put-secret-value, then for each
//! service describe-services and update-service --force-new-deployment, then
//! describe-clusters to track it, and `aws ecs wait services-stable` to know it finished.
//! The sandbox's ground truth then proves every new task holds the new version.
//!
//! The aws CLI comes from `SECRET_ROLLOUT_TEST_AWS`, else `aws` on PATH (`scripts/test`
//! installs it). A missing CLI fails the test: skipping would hide that the runbook was
//! never exercised.

use std::collections::BTreeSet;
use std::process::{Command, Output, Stdio};

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::Value;

const CLUSTER: &str = "production-online-lpa";
const SECRET: &str = "production/opg_lpa_common_account_cleanup_notification_recipients";
/// The runbook's list of services to redeploy.
const SERVICES: [&str; 4] = ["front", "api", "pdf", "admin"];

/// The aws CLI the tests use.
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

/// Runs `aws ARGS` against the sandbox with a clean AWS environment (no profile, no
/// config file from the machine), off the async runtime so the sandbox keeps serving.
async fn aws(cli: &str, endpoint: &str, dir: &std::path::Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(cli);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDRUNBOOK")
        .env("AWS_SECRET_ACCESS_KEY", "runbook-secret")
        .env("AWS_CONFIG_FILE", dir.join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
        .env("AWS_PAGER", "")
        .stdin(Stdio::null());
    let args = args.join(" ");
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("aws CLI runs"))
        .await
        .expect("join");
    assert!(
        out.status.success(),
        "aws {args} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("the aws CLI prints JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_commands_replace_the_secret_and_the_waiter_sees_the_rollout_finish() {
    let cli = aws_cli();
    // At 2000 virtual seconds per real second a rolling deployment (a few virtual minutes)
    // ends well inside the CLI's start-up time, so the waiter, which polls every 15 s,
    // succeeds at its first or second poll.
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::sample(),
        speed: Some(2000.0),
        seed: Some(3),
    })
    .await
    .expect("sandbox starts");
    let endpoint = sb.endpoint();
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let run = |args: Vec<&'static str>| {
        let (cli, endpoint) = (cli.clone(), endpoint.clone());
        async move { aws(&cli, &endpoint, dir, &args).await }
    };

    // Replace a secret in AWS Secrets Manager.
    let put = json(
        &run(vec![
            "secretsmanager",
            "put-secret-value",
            "--secret-id",
            SECRET,
            "--secret-string",
            "value",
        ])
        .await,
    );
    let new_version = put["VersionId"].as_str().expect("VersionId").to_string();
    assert_eq!(put["Name"], SECRET);
    assert_eq!(
        put["VersionStages"],
        serde_json::json!(["AWSCURRENT"]),
        "{put}"
    );

    // Force a redeploy of each service: check its status, then force a new deployment.
    let mut deployments = Vec::new();
    for service in SERVICES {
        let described = json(
            &run(vec![
                "ecs",
                "describe-services",
                "--cluster",
                CLUSTER,
                "--services",
                service,
            ])
            .await,
        );
        assert_eq!(described["services"][0]["serviceName"], service);
        assert_eq!(described["services"][0]["status"], "ACTIVE");
        assert!(described["failures"].as_array().is_some_and(Vec::is_empty));

        let updated = json(
            &run(vec![
                "ecs",
                "update-service",
                "--cluster",
                CLUSTER,
                "--force-new-deployment",
                "--service",
                service,
            ])
            .await,
        );
        let primary = updated["service"]["deployments"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["status"] == "PRIMARY"))
            .expect("a PRIMARY deployment");
        deployments.push((service, primary["id"].as_str().unwrap().to_string()));
    }

    // Track the redeployment with describe-clusters.
    let clusters = json(&run(vec!["ecs", "describe-clusters", "--clusters", CLUSTER]).await);
    let cluster = &clusters["clusters"][0];
    assert_eq!(cluster["clusterName"], CLUSTER);
    // Mid-deployment on a running clock the counts are not fixed by the scenario: only
    // their form is (the counts at the end are checked on the sandbox's tasks below).
    assert!(cluster["runningTasksCount"].is_u64(), "{cluster}");
    assert!(cluster["pendingTasksCount"].is_u64(), "{cluster}");

    // The waiter returns (exit 0) once every service has one deployment at its desired count.
    let mut wait = vec!["ecs", "wait", "services-stable", "--cluster", CLUSTER];
    wait.push("--services");
    wait.extend(SERVICES);
    run(wait).await;

    // Ground truth: every running task was started by the forced deployment; every reader
    // of the secret holds the version the put created.
    let state = sb.snapshot();
    let tasks = state["ecs"]["tasks"].as_array().expect("tasks");
    for (service, deployment) in &deployments {
        let running: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["service"] == *service && t["desiredStatus"] == "RUNNING")
            .collect();
        let desired = state["ecs"]["services"]
            .as_array()
            .expect("services")
            .iter()
            .find(|s| s["name"] == *service)
            .and_then(|s| s["desiredCount"].as_u64())
            .unwrap_or_else(|| panic!("{service}'s desired count"));
        assert!(desired > 0, "{service} is meant to run tasks");
        assert_eq!(
            running.len() as u64,
            desired,
            "{service} runs its desired count, stable"
        );
        for t in &running {
            assert_eq!(t["lastStatus"], "RUNNING", "{service}: {t}");
            assert_eq!(t["startedBy"], deployment.as_str(), "{service}: {t}");
        }
        let versions: BTreeSet<&str> = running
            .iter()
            .flat_map(|t| t["secrets"].as_array().into_iter().flatten())
            .filter(|s| s["name"] == SECRET)
            .filter_map(|s| s["version_id"].as_str())
            .collect();
        if *service == "pdf" {
            assert!(versions.is_empty(), "pdf does not read {SECRET}");
        } else {
            assert_eq!(
                versions,
                [new_version.as_str()].into(),
                "{service} holds the new version"
            );
        }
    }
}
