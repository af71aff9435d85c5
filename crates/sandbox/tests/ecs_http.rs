//! ECS through HTTP: the AWS JSON 1.1 wire protocol, the runbook's forced redeploy, errors.
//!
//! The clock is stopped (speed 0) and moved by hand, so nothing here depends on real time.

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

/// Names used here are not in any scenario, so the tests hold whatever the default builds.
async fn start() -> Sandbox {
    Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::default(),
        speed: Some(0.0),
        seed: Some(1),
    })
    .await
    .expect("sandbox starts")
}

/// Moves virtual time forward.
fn advance(sb: &Sandbox, secs: f64) {
    sb.world().lock().unwrap().clock.advance(secs);
}

async fn ecs(sb: &Sandbox, op: &str, body: Value) -> (u16, Value, Option<String>) {
    let resp = reqwest::Client::new()
        .post(sb.endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", format!("AmazonEC2ContainerServiceV20141113.{op}"))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDSANDBOX/20260101/eu-west-1/ecs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(body.to_string())
        .send()
        .await
        .expect("request answered");
    let status = resp.status().as_u16();
    let kind = resp
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_string());
    let v: Value = resp.json().await.expect("JSON body");
    (status, v, kind)
}

async fn ok(sb: &Sandbox, op: &str, body: Value) -> Value {
    let (status, v, _) = ecs(sb, op, body).await;
    assert_eq!(status, 200, "{op}: {v}");
    v
}

async fn setup(sb: &Sandbox, desired: u32, min: u32) {
    ok(sb, "CreateCluster", json!({"clusterName": "ecs-http-test"})).await;
    ok(
        sb,
        "RegisterTaskDefinition",
        json!({
            "family": "ecs-http-api",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "web", "image": "nginx"}, {"name": "app", "image": "api"}],
        }),
    )
    .await;
    ok(
        sb,
        "CreateService",
        json!({
            "cluster": "ecs-http-test",
            "serviceName": "api",
            "taskDefinition": "ecs-http-api",
            "desiredCount": desired,
            "launchType": "FARGATE",
            "deploymentConfiguration": {
                "minimumHealthyPercent": min, "maximumPercent": 200,
                "deploymentCircuitBreaker": {"enable": true, "rollback": true},
            },
        }),
    )
    .await;
}

async fn describe(sb: &Sandbox) -> Value {
    let v = ok(
        sb,
        "DescribeServices",
        json!({"cluster": "ecs-http-test", "services": ["api"]}),
    )
    .await;
    v["services"][0].clone()
}

/// What `aws ecs wait services-stable` checks.
fn stable(svc: &Value) -> bool {
    svc["deployments"].as_array().unwrap().len() == 1 && svc["runningCount"] == svc["desiredCount"]
}

#[tokio::test]
async fn runbook_forced_redeploy_rolls_out_and_settles() {
    let sb = start().await;
    setup(&sb, 3, 50).await;
    advance(&sb, 600.0);
    let svc = describe(&sb).await;
    assert!(stable(&svc), "initial deployment settled: {svc}");
    let old = svc["deployments"][0]["id"].as_str().unwrap().to_string();

    let updated = ok(
        &sb,
        "UpdateService",
        json!({"cluster": "ecs-http-test", "service": "api", "forceNewDeployment": true}),
    )
    .await;
    let new = updated["service"]["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new, old);

    // The runbook tracks the rollout with describe-clusters: pending first, then running.
    let c = ok(
        &sb,
        "DescribeClusters",
        json!({"clusters": ["ecs-http-test"]}),
    )
    .await;
    assert_eq!(c["clusters"][0]["pendingTasksCount"], 3);
    assert_eq!(
        c["clusters"][0]["runningTasksCount"], 2,
        "min 50% of 3 keeps ceil(1.5) = 2 healthy: one old task stops at once"
    );
    let svc = describe(&sb).await;
    assert!(!stable(&svc));
    assert_eq!(svc["deployments"][1]["id"], json!(old));

    advance(&sb, 900.0);
    let svc = describe(&sb).await;
    assert!(stable(&svc), "{svc}");
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(
        svc["events"][0]["message"],
        "(service api) has reached a steady state."
    );
    assert!(svc["events"][0]["createdAt"].is_f64());

    // Ground truth: every running task belongs to the new deployment.
    let snap = sb.snapshot();
    let running: Vec<&Value> = snap["ecs"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["cluster"] == "ecs-http-test" && t["lastStatus"] == "RUNNING")
        .collect();
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|t| t["startedBy"] == json!(new)));

    // The same through ListTasks + DescribeTasks.
    let listed = ok(
        &sb,
        "ListTasks",
        json!({"cluster": "ecs-http-test", "serviceName": "api"}),
    )
    .await;
    let arns = listed["taskArns"].clone();
    assert_eq!(arns.as_array().unwrap().len(), 3);
    let tasks = ok(
        &sb,
        "DescribeTasks",
        json!({"cluster": "ecs-http-test", "tasks": arns}),
    )
    .await;
    for t in tasks["tasks"].as_array().unwrap() {
        assert_eq!(t["startedBy"], json!(new));
        assert_eq!(t["cpu"], "256");
        assert_eq!(t["containers"].as_array().unwrap().len(), 2);
    }
    let stopped = ok(
        &sb,
        "ListTasks",
        json!({"cluster": "ecs-http-test", "serviceName": "api", "desiredStatus": "STOPPED"}),
    )
    .await;
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn errors_have_aws_shape() {
    let sb = start().await;
    let (status, v, kind) = ecs(
        &sb,
        "DescribeServices",
        json!({"cluster": "nope", "services": ["api"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        v,
        json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."})
    );
    assert_eq!(kind.as_deref(), Some("ClusterNotFoundException"));

    let (status, v, _) = ecs(&sb, "Frobnicate", json!({})).await;
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "UnknownOperationException");

    setup(&sb, 1, 100).await;
    let (_, v, _) = ecs(
        &sb,
        "CreateService",
        json!({"cluster": "ecs-http-test", "taskDefinition": "ecs-http-api"}),
    )
    .await;
    assert_eq!(v["__type"], "InvalidParameterException");
    let (_, v, _) = ecs(
        &sb,
        "UpdateService",
        json!({"cluster": "ecs-http-test", "service": "ghost", "forceNewDeployment": true}),
    )
    .await;
    assert_eq!(v["__type"], "ServiceNotFoundException");

    ok(
        &sb,
        "CreateService",
        json!({"cluster": "ecs-http-test", "serviceName": "bluegreen", "taskDefinition": "ecs-http-api",
               "desiredCount": 1, "deploymentController": {"type": "CODE_DEPLOY"}}),
    )
    .await;
    let (status, v, _) = ecs(
        &sb,
        "UpdateService",
        json!({"cluster": "ecs-http-test", "service": "bluegreen", "forceNewDeployment": true}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v["__type"], "InvalidParameterException");
    assert_eq!(
        v["message"],
        "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment."
    );

    let v = ok(
        &sb,
        "DescribeServices",
        json!({"cluster": "ecs-http-test", "services": ["api", "ghost"]}),
    )
    .await;
    assert_eq!(
        v["failures"],
        json!([{"arn": "arn:aws:ecs:eu-west-1:123456789012:service/ghost", "reason": "MISSING"}])
    );
}

#[tokio::test]
async fn unresolvable_secret_stops_tasks_before_running() {
    let sb = start().await;
    ok(&sb, "CreateCluster", json!({"clusterName": "c"})).await;
    ok(
        &sb,
        "RegisterTaskDefinition",
        json!({"family": "ecs-http-migrations", "containerDefinitions": [{"name": "app", "image": "app",
            "secrets": [{"name": "X", "valueFrom": "/aws/reference/secretsmanager/production/does_not_exist"}]}]}),
    )
    .await;
    let run = ok(
        &sb,
        "RunTask",
        json!({"cluster": "c", "taskDefinition": "ecs-http-migrations", "startedBy": "cron"}),
    )
    .await;
    let arn = run["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    assert_eq!(run["tasks"][0]["lastStatus"], "PROVISIONING");
    assert_eq!(run["tasks"][0]["group"], "family:ecs-http-migrations");
    advance(&sb, 120.0);
    let t = ok(
        &sb,
        "DescribeTasks",
        json!({"cluster": "c", "tasks": [arn]}),
    )
    .await["tasks"][0]
        .clone();
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert!(t["stoppedReason"]
        .as_str()
        .unwrap()
        .starts_with("ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: "));
    assert!(t.get("startedAt").is_none());
}
