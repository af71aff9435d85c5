//! Issue 11 end to end: suggestions that can run. `redeploy` refuses CODE_DEPLOY / EXTERNAL
//! services before any call; a rotation that excluded such a consumer with `--services` is
//! undone by `rollback`, which redeploys exactly what the rotation redeployed; a service
//! scaled to 0 has nothing to prove and does not fail the run.

mod common;

use std::process::Output;

use sandbox::Scenario;
use serde_json::Value;

use common::{start_with, text, TestEnv, CLUSTER};

const SECRET: &str = "production/mixed_key";

/// The sample plus one secret read by an ECS service (`mixed-ecs`), a CODE_DEPLOY one
/// (`mixed-cd`) and an ECS service scaled to 0 (`mixed-idle`).
const MIXED: &str = r#"
[[secrets]]
name = "production/mixed_key"
value = "value-of-the-mixed-secret"

[[task_definitions]]
family = "production-mixed"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
executionRoleArn = "arn:aws:iam::123456789012:role/mixed-execution-role.production"

[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/online-lpa/mixed_app:v1.0.0"
essential = true
secrets = [
  { name = "MIXED_KEY", valueFrom = "/aws/reference/secretsmanager/production/mixed_key" },
]

[[services]]
cluster = "production-online-lpa"
serviceName = "mixed-ecs"
taskDefinition = "production-mixed"
desiredCount = 2
launchType = "FARGATE"
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }

[[services]]
cluster = "production-online-lpa"
serviceName = "mixed-cd"
taskDefinition = "production-mixed"
desiredCount = 1
launchType = "FARGATE"
deploymentController = { type = "CODE_DEPLOY" }
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }

[[services]]
cluster = "production-online-lpa"
serviceName = "mixed-idle"
taskDefinition = "production-mixed"
desiredCount = 0
launchType = "FARGATE"
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }
"#;

async fn env() -> TestEnv {
    let mut toml = sandbox::scenario::SAMPLE_TOML.to_string();
    toml.push_str(MIXED);
    start_with(Scenario::from_toml(&toml).expect("scenario"), 2000.0).await
}

fn args<'a>(command: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![command];
    v.extend_from_slice(extra);
    v.extend_from_slice(&["--cluster", CLUSTER, "--yes", "--max-poll", "50ms"]);
    v
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("json report: {}", text(o)))
}

/// The services UpdateService was called for (successful calls), in order.
fn updated(env: &TestEnv) -> Vec<String> {
    env.calls_of("UpdateService")
        .iter()
        .filter(|c| c["error"].is_null())
        .map(|c| {
            let s = c["subject"]["service"].as_str().unwrap_or("?");
            s.rsplit('/').next().unwrap_or(s).to_string()
        })
        .collect()
}

/// The `--services` value a hint suggests, if any.
fn suggested_services(hint: &str) -> Option<String> {
    let (_, rest) = hint.split_once("--services ")?;
    Some(rest.split_whitespace().next()?.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn redeploy_refuses_code_deploy_before_any_call_and_its_suggestion_runs() {
    let env = env().await;
    // Alone: refused, nothing sent.
    let o = env
        .run(&args("redeploy", &["--services", "mixed-cd"]), None)
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("CODE_DEPLOY"), "{}", text(&o));
    assert!(!text(&o).contains("new value kept"), "{}", text(&o));
    assert_eq!(
        env.calls("UpdateService"),
        0,
        "no UpdateService for a refusal"
    );

    // With an ECS service: refused too, and the hint names the command for the others.
    let o = env
        .run(
            &args("redeploy", &["--services", "mixed-ecs,mixed-cd"]),
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(
        env.calls("UpdateService"),
        0,
        "no UpdateService for a refusal"
    );
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let services = suggested_services(&stderr).unwrap_or_else(|| panic!("a hint: {stderr}"));
    assert_eq!(services, "mixed-ecs");

    // The suggestion runs, and redeploys exactly what it names.
    let o = env
        .run(&args("redeploy", &["--services", &services]), None)
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(updated(&env), ["mixed-ecs"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotation_that_excluded_code_deploy_is_undone_by_rollback() {
    let env = env().await;
    let before = env.current_version(SECRET);

    // replace refuses and suggests --services.
    let o = env
        .run(&args("replace", &[SECRET, "--generate"]), None)
        .await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("--services"), "{}", text(&o));
    assert_eq!(env.version_count(SECRET), 1, "nothing written");

    // The suggestion runs.
    let o = env
        .run(
            &args(
                "replace",
                &[
                    SECRET,
                    "--generate",
                    "--services",
                    "mixed-ecs",
                    "--output",
                    "json",
                ],
            ),
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let written = env.current_version(SECRET);
    assert_ne!(written, before);
    assert_eq!(updated(&env), ["mixed-ecs"]);
    assert_eq!(
        env.versions_read("mixed-ecs", SECRET),
        [written.clone()].into()
    );
    let rotation = json(&o)["rotation_id"].as_str().unwrap().to_string();

    // Its undo runs: only what the rotation redeployed, back on the old version.
    let o = env
        .run(&args("rollback", &[&rotation, "--output", "json"]), None)
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(env.current_version(SECRET), before);
    assert_eq!(updated(&env), ["mixed-ecs", "mixed-ecs"]);
    assert_eq!(env.versions_read("mixed-ecs", SECRET), [before].into());
    assert_eq!(env.calls_of("UpdateSecretVersionStage").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_scaled_to_0_has_nothing_to_prove_and_does_not_fail_the_run() {
    let env = env().await;
    assert!(env.running_tasks("mixed-idle").is_empty());

    // redeploy: both deployed, the idle one has nothing to prove, the other is verified.
    let o = env
        .run(
            &args(
                "redeploy",
                &["--services", "mixed-ecs,mixed-idle", "--output", "json"],
            ),
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut deployed = updated(&env);
    deployed.sort();
    assert_eq!(deployed, ["mixed-ecs", "mixed-idle"]);
    let report = json(&o);
    let services = report["rollout"]["services"].as_array().unwrap();
    let of = |name: &str| {
        services
            .iter()
            .find(|s| s["service"] == name)
            .unwrap_or_else(|| panic!("{name} in {report}"))
            .clone()
    };
    assert_eq!(of("mixed-idle")["proof"]["nothing_to_prove"], true);
    assert_eq!(of("mixed-idle")["proof"]["total"], 0);
    assert_eq!(of("mixed-ecs")["proof"]["nothing_to_prove"], false);
    assert_eq!(of("mixed-ecs")["proof"]["fresh"], 2);
    // Ground truth: the idle one really runs nothing, the other runs only new tasks.
    assert!(env.running_tasks("mixed-idle").is_empty());
    let primary = env.state()["ecs"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["serviceName"] == "mixed-ecs")
        .and_then(|s| s["deployments"][0]["id"].as_str().map(str::to_string));
    let tasks = env.running_tasks("mixed-ecs");
    assert_eq!(tasks.len(), 2);
    if let Some(primary) = primary {
        assert!(
            tasks.iter().all(|t| t["startedBy"] == primary.as_str()),
            "{tasks:?}"
        );
    }
    let o = env
        .run(&args("redeploy", &["--services", "mixed-idle"]), None)
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("nothing to prove"), "{}", text(&o));
    assert!(!text(&o).contains("0/0 tasks"), "{}", text(&o));

    // replace: the idle consumer is named, the others are verified on the new version.
    let o = env
        .run(
            &args(
                "replace",
                &[
                    SECRET,
                    "--generate",
                    "--services",
                    "mixed-ecs,mixed-idle",
                    "--output",
                    "json",
                ],
            ),
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report = json(&o);
    assert_eq!(
        report["nothing_to_prove"],
        serde_json::json!([{"cluster": CLUSTER, "service": "mixed-idle"}])
    );
    let written = env.current_version(SECRET);
    assert_eq!(env.versions_read("mixed-ecs", SECRET), [written].into());
    assert!(env.running_tasks("mixed-idle").is_empty());
    let o = env
        .run(
            &args(
                "replace",
                &[SECRET, "--generate", "--services", "mixed-ecs,mixed-idle"],
            ),
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("mixed-idle"), "{}", text(&o));
    assert!(text(&o).contains("nothing to prove"), "{}", text(&o));

    // status says the same: nothing to prove for the idle one; the only stale tasks are
    // those of the CODE_DEPLOY service the rotations left out (exit 1), none of the idle
    // one's.
    let o = env
        .run(
            &["status", SECRET, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let status = json(&o);
    let services = status["services"].as_array().unwrap();
    let of = |name: &str| services.iter().find(|s| s["name"] == name).cloned();
    assert_eq!(of("mixed-idle").unwrap()["nothing_to_prove"], true);
    assert_eq!(of("mixed-ecs").unwrap()["nothing_to_prove"], false);
    assert_eq!(of("mixed-cd").unwrap()["nothing_to_prove"], false);
    let stale_services: Vec<&str> = services
        .iter()
        .filter(|s| {
            s["secrets"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["stale_tasks"].as_array().is_some_and(|t| !t.is_empty()))
            })
        })
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(stale_services, ["mixed-cd"]);
    assert_eq!(
        status["stale"].as_u64(),
        Some(env.running_tasks("mixed-cd").len() as u64)
    );
    let o = env
        .run(&["status", SECRET, "--cluster", CLUSTER], None)
        .await;
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // Grouped by service: the secret's row beneath mixed-idle's line says so.
    let shown = String::from_utf8_lossy(&o.stdout).to_string();
    let lines: Vec<&str> = shown.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("mixed-idle  "))
        .unwrap_or_else(|| panic!("{}", text(&o)));
    let line = lines[at + 1];
    assert!(line.contains("nothing to prove"), "{line}\n{shown}");
}
