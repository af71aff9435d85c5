//! Blue/green, linear and canary deployments driven by the real aws CLI: create-service
//! with each configuration, update-service --force-new-deployment,
//! list/describe-service-deployments, continue-service-deployment and
//! stop-service-deployment; alarms through the control API; `aws ecs wait services-stable`
//! and the waiter's own acceptors (from the installed botocore) judged on what the sandbox
//! answers at each stage. The clock is stopped and moved through the control API, so
//! nothing depends on real time.
//!
//! The aws CLI comes from `SECRET_ROLLOUT_TEST_AWS` (else `aws`), Python from
//! `SECRET_ROLLOUT_TEST_PYTHON` (else `python3`); `scripts/test` installs and sets both. A
//! missing tool fails the tests.

use std::process::{Command, Output, Stdio};

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

const CLUSTER: &str = "bg-cluster";
const SECRET: &str = "bg/api_key";

const SCENARIO: &str = r#"
[[secrets]]
name = "bg/api_key"
value = "old-key"

[[clusters]]
clusterName = "bg-cluster"

[[task_definitions]]
family = "bg-web"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "example/web:1"
essential = true
secrets = [{ name = "API_KEY", valueFrom = "/aws/reference/secretsmanager/bg/api_key" }]
"#;

fn tool(var: &str, default: &str) -> String {
    let cli = std::env::var(var)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| default.to_string());
    let found = Command::new(&cli)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{cli} does not run: install it (scripts/test does) or point {var} at it"
    );
    cli
}

struct Cli {
    aws: String,
    python: String,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Cli {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.aws);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&k);
            }
        }
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDSTRATEGY")
            .env("AWS_SECRET_ACCESS_KEY", "strategy-secret")
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            )
            .env("AWS_PAGER", "")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `aws ARGS` off the async runtime (the sandbox keeps serving).
    async fn output(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        tokio::task::spawn_blocking(move || cmd.output().expect("aws CLI runs"))
            .await
            .expect("join")
    }

    async fn run(&self, args: &[&str]) -> Value {
        let out = self.output(args).await;
        assert!(
            out.status.success(),
            "aws {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).expect("the aws CLI prints JSON")
    }

    /// What botocore's ServicesStable waiter concludes from one DescribeServices answer:
    /// `success`, `failure` or `retry`, by its own acceptors.
    async fn waiter_verdict(&self, described: &Value) -> String {
        const SCRIPT: &str = r#"
import json, sys, botocore.session
w = botocore.session.get_session().get_waiter_model("ecs").get_waiter("ServicesStable")
doc = json.load(sys.stdin)
print(next((a.state for a in w.acceptors if a.matcher_func(doc)), "retry"))
"#;
        let mut cmd = Command::new(&self.python);
        cmd.args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let input = described.to_string();
        let out = tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = cmd.spawn().expect("python runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        assert!(out.status.success(), "the waiter model loads");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    async fn describe_service(&self) -> Value {
        self.run(&[
            "ecs",
            "describe-services",
            "--cluster",
            CLUSTER,
            "--services",
            "web",
        ])
        .await
    }

    async fn current(&self) -> Value {
        let svc = self.describe_service().await;
        let arn = svc["services"][0]["currentServiceDeployment"]
            .as_str()
            .expect("currentServiceDeployment")
            .to_string();
        let d = self
            .run(&[
                "ecs",
                "describe-service-deployments",
                "--service-deployment-arns",
                &arn,
            ])
            .await;
        d["serviceDeployments"][0].clone()
    }

    async fn stable(&self) -> Output {
        self.output(&[
            "ecs",
            "wait",
            "services-stable",
            "--cluster",
            CLUSTER,
            "--services",
            "web",
        ])
        .await
    }
}

async fn start() -> (Sandbox, Cli) {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::from_toml(SCENARIO).unwrap(),
        speed: Some(0.0),
        seed: Some(5),
    })
    .await
    .expect("sandbox starts");
    let cli = Cli {
        aws: tool("SECRET_ROLLOUT_TEST_AWS", "aws"),
        python: tool("SECRET_ROLLOUT_TEST_PYTHON", "python3"),
        endpoint: sb.endpoint(),
        dir: tempfile::tempdir().unwrap(),
    };
    (sb, cli)
}

/// Moves virtual time forward through the control API.
async fn advance(cli: &Cli, seconds: f64) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/clock/advance", cli.endpoint))
        .json(&json!({ "seconds": seconds }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// (startedBy, traffic, version id) of the service's tasks not told to stop.
async fn ground_truth(cli: &Cli) -> Vec<(String, String, String)> {
    let state: Value = reqwest::get(format!("{}/_sandbox/state", cli.endpoint))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state["ecs"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service"] == "web" && t["desiredStatus"] == "RUNNING")
        .map(|t| {
            (
                t["startedBy"].as_str().unwrap().to_string(),
                t["traffic"].as_str().unwrap().to_string(),
                t["secrets"][0]["version_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Whether every task of `green` has `g` traffic and every other task `b`.
fn serving(tasks: &[(String, String, String)], green: &str, g: &str, b: &str) -> bool {
    let (gs, bs): (Vec<_>, Vec<_>) = tasks.iter().partition(|t| t.0 == green);
    !gs.is_empty() && gs.iter().all(|t| t.1 == g) && bs.iter().all(|t| t.1 == b)
}

fn config(strategy: &str) -> Value {
    let mut dc = json!({
        "strategy": strategy,
        "bakeTimeInMinutes": 10,
        "minimumHealthyPercent": 100,
        "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": true, "rollback": true},
        "alarms": {"alarmNames": ["web-5xx"], "enable": true, "rollback": true},
        "lifecycleHooks": [{
            "targetType": "PAUSE",
            "lifecycleStages": ["POST_SCALE_UP"],
            "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "ROLLBACK"},
        }],
    });
    match strategy {
        "LINEAR" => {
            dc["linearConfiguration"] = json!({"stepPercent": 50.0, "stepBakeTimeInMinutes": 2})
        }
        "CANARY" => {
            dc["canaryConfiguration"] = json!({"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 3})
        }
        _ => {}
    }
    dc
}

/// Advances until the current deployment's paused hook awaits action and continues it.
async fn continue_pause(cli: &Cli) {
    let (arn, hook) = paused(cli).await;
    cont(cli, &arn, &hook).await;
}

/// Advances until the current deployment's PAUSE hook at POST_SCALE_UP awaits action:
/// (service deployment ARN, hook id).
async fn paused(cli: &Cli) -> (String, String) {
    advance(cli, 120.0).await;
    let sd = cli.current().await;
    assert_eq!(sd["status"], "IN_PROGRESS", "{sd}");
    assert_eq!(sd["lifecycleStage"], "POST_SCALE_UP", "{sd}");
    let hook = sd["lifecycleHookDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["status"] == "AWAITING_ACTION")
        .expect("a PAUSE hook awaits action");
    assert_eq!(hook["targetType"], "PAUSE");
    assert_eq!(hook["timeoutAction"], "ROLLBACK");
    (
        sd["serviceDeploymentArn"].as_str().unwrap().to_string(),
        hook["hookId"].as_str().unwrap().to_string(),
    )
}

async fn cont(cli: &Cli, arn: &str, hook: &str) {
    let out = cli
        .run(&[
            "ecs",
            "continue-service-deployment",
            "--service-deployment-arn",
            arn,
            "--hook-id",
            hook,
            "--action",
            "CONTINUE",
        ])
        .await;
    assert_eq!(out["serviceDeploymentArn"], arn);
}

async fn force(cli: &Cli) -> String {
    let v = cli
        .run(&[
            "ecs",
            "update-service",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--force-new-deployment",
        ])
        .await;
    v["service"]["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn put(cli: &Cli, value: &str) -> String {
    let v = cli
        .run(&[
            "secretsmanager",
            "put-secret-value",
            "--secret-id",
            SECRET,
            "--secret-string",
            value,
        ])
        .await;
    v["VersionId"].as_str().unwrap().to_string()
}

/// One strategy end to end: creation with a PAUSE hook continued, a forced deployment
/// walked stage by stage and stopped with ROLLBACK, one failed by an alarm, one superseded
/// by another that succeeds, then deletion; the waiter judged at each point.
async fn drive(strategy: &str) {
    let (sb, cli) = start().await;
    let dc = config(strategy).to_string();
    let created = cli
        .run(&[
            "ecs",
            "create-service",
            "--cluster",
            CLUSTER,
            "--service-name",
            "web",
            "--task-definition",
            "bg-web",
            "--desired-count",
            "2",
            "--launch-type",
            "FARGATE",
            "--deployment-configuration",
            &dc,
        ])
        .await;
    let shown = &created["service"]["deploymentConfiguration"];
    assert_eq!(shown["strategy"], strategy);
    assert_eq!(shown["bakeTimeInMinutes"], 10);
    assert_eq!(shown["alarms"]["alarmNames"], json!(["web-5xx"]));
    assert_eq!(shown["lifecycleHooks"][0]["targetType"], "PAUSE");
    continue_pause(&cli).await;
    advance(&cli, 3600.0).await;
    assert_eq!(cli.current().await["status"], "SUCCESSFUL", "{strategy}");
    let out = cli.stable().await;
    assert!(
        out.status.success(),
        "{strategy}: stable after the first deployment"
    );
    let blue: Vec<_> = ground_truth(&cli).await;
    assert_eq!(blue.len(), 2);
    let old_version = blue[0].2.clone();

    // A forced deployment, walked stage by stage, then stopped with ROLLBACK mid-bake.
    let new_version = put(&cli, "new-key").await;
    let green = force(&cli).await;
    let (arn, hook) = paused(&cli).await;
    let tasks = ground_truth(&cli).await;
    assert!(
        serving(&tasks, &green, "none", "production"),
        "{strategy}: {tasks:?}"
    );
    cont(&cli, &arn, &hook).await;
    advance(&cli, 1.0).await;
    let sd = cli.current().await;
    let target = &sd["targetServiceRevision"];
    match strategy {
        "BLUE_GREEN" => {
            assert_eq!(sd["lifecycleStage"], "BAKE_TIME");
            assert_eq!(target["requestedProductionTrafficWeight"], 100.0);
            let tasks = ground_truth(&cli).await;
            assert!(serving(&tasks, &green, "production", "none"), "{tasks:?}");
        }
        _ => {
            let first_step = if strategy == "LINEAR" { 50.0 } else { 20.0 };
            assert_eq!(sd["lifecycleStage"], "PRODUCTION_TRAFFIC_SHIFT", "{sd}");
            assert_eq!(target["requestedProductionTrafficWeight"], first_step);
            assert_eq!(
                sd["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"],
                100.0 - first_step
            );
            assert_eq!(target["requestedTestTrafficWeight"], 100.0);
            let tasks = ground_truth(&cli).await;
            assert!(
                serving(&tasks, &green, "production", "production"),
                "{tasks:?}"
            );
            advance(&cli, 180.0).await;
            let sd = cli.current().await;
            assert_eq!(sd["lifecycleStage"], "BAKE_TIME", "{sd}");
            assert_eq!(
                sd["targetServiceRevision"]["requestedProductionTrafficWeight"],
                100.0
            );
        }
    }
    let described = cli.describe_service().await;
    let svc = &described["services"][0];
    assert_eq!(svc["deployments"].as_array().unwrap().len(), 2);
    assert_eq!(svc["runningCount"], 4, "green beside blue");
    assert_eq!(cli.waiter_verdict(&described).await, "retry", "{strategy}");
    let arn = sd["serviceDeploymentArn"].as_str().unwrap().to_string();
    let stopped = cli
        .run(&[
            "ecs",
            "stop-service-deployment",
            "--service-deployment-arn",
            &arn,
            "--stop-type",
            "ROLLBACK",
        ])
        .await;
    assert_eq!(stopped["serviceDeploymentArn"], arn.as_str());
    let sd = cli.current().await;
    assert_eq!(sd["status"], "ROLLBACK_IN_PROGRESS");
    let tasks = ground_truth(&cli).await;
    assert!(tasks
        .iter()
        .all(|t| t.1 == "production" && t.2 == old_version));
    advance(&cli, 600.0).await;
    assert_eq!(cli.current().await["status"], "ROLLBACK_SUCCESSFUL");
    // As on AWS, the waiter succeeds after a rollback too: it is no proof of success.
    assert!(cli.stable().await.status.success());
    let events = cli.describe_service().await["services"][0]["events"].clone();
    let blue_id = cli.describe_service().await["services"][0]["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(events
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["message"] == format!("(service web) rolling back to deployment {blue_id}.")));

    // An alarm in ALARM mid-deployment fails it and rolls it back.
    let green = force(&cli).await;
    continue_pause(&cli).await;
    let r = reqwest::Client::new()
        .put(format!("{}/_sandbox/alarms", cli.endpoint))
        .json(&json!({"web-5xx": "ALARM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sd = cli.current().await;
    assert_eq!(sd["status"], "ROLLBACK_IN_PROGRESS", "{sd}");
    assert_eq!(sd["alarms"]["status"], "TRIGGERED");
    assert_eq!(sd["alarms"]["triggeredAlarmNames"], json!(["web-5xx"]));
    let events = cli.describe_service().await["services"][0]["events"].clone();
    assert!(events.as_array().unwrap().iter().any(|e| e["message"]
        == format!("(service web) (deployment {green}) deployment failed: alarm detected.")));
    advance(&cli, 600.0).await;
    assert_eq!(cli.current().await["status"], "ROLLBACK_SUCCESSFUL");
    reqwest::Client::new()
        .put(format!("{}/_sandbox/alarms", cli.endpoint))
        .json(&json!({"web-5xx": "OK"}))
        .send()
        .await
        .unwrap();

    // A deployment superseded by another ends STOPPED; the newer one succeeds.
    force(&cli).await;
    continue_pause(&cli).await;
    let superseded = cli.current().await["serviceDeploymentArn"].clone();
    let last = force(&cli).await;
    let listed = cli
        .run(&[
            "ecs",
            "list-service-deployments",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
            "--status",
            "STOPPED",
        ])
        .await;
    let stopped = listed["serviceDeployments"].as_array().unwrap();
    assert_eq!(stopped.len(), 1, "{listed}");
    assert_eq!(stopped[0]["serviceDeploymentArn"], superseded);
    continue_pause(&cli).await;
    advance(&cli, 3600.0).await;
    assert_eq!(cli.current().await["status"], "SUCCESSFUL", "{strategy}");
    assert!(cli.stable().await.status.success());
    let tasks = ground_truth(&cli).await;
    assert_eq!(tasks.len(), 2);
    assert!(tasks
        .iter()
        .all(|t| t.0 == last && t.1 == "production" && t.2 == new_version));
    let all = cli
        .run(&[
            "ecs",
            "list-service-deployments",
            "--cluster",
            CLUSTER,
            "--service",
            "web",
        ])
        .await;
    let statuses: Vec<&str> = all["serviceDeployments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "SUCCESSFUL",
            "STOPPED",
            "ROLLBACK_SUCCESSFUL",
            "ROLLBACK_SUCCESSFUL",
            "SUCCESSFUL"
        ]
    );

    // Deleted: the waiter fails at once, as it does on AWS for an INACTIVE service.
    cli.run(&[
        "ecs",
        "delete-service",
        "--cluster",
        CLUSTER,
        "--service",
        "web",
        "--force",
    ])
    .await;
    advance(&cli, 600.0).await;
    let described = cli.describe_service().await;
    assert_eq!(described["services"][0]["status"], "INACTIVE");
    assert_eq!(cli.waiter_verdict(&described).await, "failure");
    let out = cli.stable().await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("terminal failure"));
    drop(sb);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_through_the_aws_cli() {
    drive("BLUE_GREEN").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_through_the_aws_cli() {
    drive("LINEAR").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_through_the_aws_cli() {
    drive("CANARY").await;
}
