//! ECR driven by the real aws CLI, and ECS resolving image tags with it: a manifest pushed
//! under a tag (`aws ecr put-image`) moves the tag; tasks keep the digest their deployment
//! resolved (version consistency) until a forced new deployment resolves it again, while a
//! container with `versionConsistency = "disabled"` resolves at each launch; an immutable
//! repository refuses the push. Ground truth is the sandbox's state (`/_sandbox/state`):
//! `ecr.repositories[].tags` and `ecs.tasks[].containers[].imageDigest`. The clock is
//! stopped and moved through the control API.
//!
//! The aws CLI comes from `SECRET_ROLLOUT_TEST_AWS` (else `aws`); a missing CLI fails.

use std::process::{Command, Output, Stdio};

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

const REPO: &str = "123456789012.dkr.ecr.eu-west-1.amazonaws.com";

const SCENARIO: &str = r#"
[[clusters]]
clusterName = "shop"

[[ecr_repositories]]
repositoryName = "shop/fixed"
imageTagMutability = "IMMUTABLE"

[[task_definitions]]
family = "web"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:live"
[[task_definitions.containerDefinitions]]
name = "sidecar"
image = "public.ecr.aws/nginx/nginx:1.27"

[[task_definitions]]
family = "worker"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:live"
versionConsistency = "disabled"

[[task_definitions]]
family = "fixed"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/fixed:v1"

[[services]]
cluster = "shop"
serviceName = "web"
taskDefinition = "web"
desiredCount = 2
launchType = "FARGATE"

[[services]]
cluster = "shop"
serviceName = "worker"
taskDefinition = "worker"
desiredCount = 1
launchType = "FARGATE"

[[services]]
cluster = "shop"
serviceName = "fixed"
taskDefinition = "fixed"
desiredCount = 1
launchType = "FARGATE"
"#;

struct Cli {
    aws: String,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl Cli {
    async fn output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.aws);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(&k);
            }
        }
        cmd.args(args)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_DEFAULT_REGION", "eu-west-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDECR")
            .env("AWS_SECRET_ACCESS_KEY", "ecr-secret")
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("credentials"),
            )
            .env("AWS_PAGER", "")
            .stdin(Stdio::null());
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
        serde_json::from_slice(&out.stdout).expect("the aws CLI prints JSON")
    }

    async fn state(&self) -> Value {
        reqwest::get(format!("{}/_sandbox/state", self.endpoint))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn advance(&self, seconds: f64) {
        let r = reqwest::Client::new()
            .post(format!("{}/_sandbox/clock/advance", self.endpoint))
            .json(&json!({ "seconds": seconds }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    /// The digest `repo:tag` points to, from the sandbox's state.
    async fn tag(&self, repo: &str, tag: &str) -> String {
        let state = self.state().await;
        let r = state["ecr"]["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == repo)
            .unwrap_or_else(|| panic!("repository {repo} in the state"));
        r["tags"][tag].as_str().expect("the tag exists").to_string()
    }

    /// The `app` container digests of the service's tasks not told to stop, sorted.
    async fn running(&self, service: &str) -> Vec<String> {
        let state = self.state().await;
        let mut out: Vec<String> = state["ecs"]["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["service"] == service && t["desiredStatus"] == "RUNNING")
            .map(|t| {
                t["containers"][0]["imageDigest"]
                    .as_str()
                    .expect("an imageDigest")
                    .to_string()
            })
            .collect();
        out.sort();
        out
    }
}

async fn start() -> (Sandbox, Cli) {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::from_toml(SCENARIO).unwrap(),
        speed: Some(0.0),
        seed: Some(18),
    })
    .await
    .expect("sandbox starts");
    let aws = std::env::var("SECRET_ROLLOUT_TEST_AWS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aws".to_string());
    let cli = Cli {
        aws,
        endpoint: sb.endpoint(),
        dir: tempfile::tempdir().unwrap(),
    };
    (sb, cli)
}

fn manifest(seed: &str) -> String {
    sandbox::ecr::sample_manifest(seed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_tag_reaches_tasks_only_through_a_new_deployment_unless_consistency_is_off() {
    let (_sb, cli) = start().await;
    let d1 = cli.tag("shop/web", "live").await;
    assert_eq!(cli.running("web").await, vec![d1.clone(), d1.clone()]);
    assert_eq!(cli.running("worker").await, vec![d1.clone()]);

    // DescribeTasks reports the digest (and the image as written) per container.
    let listed = cli
        .run(&[
            "ecs",
            "list-tasks",
            "--cluster",
            "shop",
            "--service-name",
            "web",
        ])
        .await;
    let arns: Vec<&str> = listed["taskArns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(arns.len(), 2);
    let mut args = vec!["ecs", "describe-tasks", "--cluster", "shop", "--tasks"];
    args.extend(&arns);
    let described = cli.run(&args).await;
    for t in described["tasks"].as_array().unwrap() {
        assert_eq!(t["containers"][0]["image"], format!("{REPO}/shop/web:live"));
        assert_eq!(t["containers"][0]["imageDigest"], d1.as_str());
        // A non-ECR image gets a digest too (ECS resolves it from its registry).
        assert!(t["containers"][1]["imageDigest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"));
    }

    // Push a new manifest under the tag: the tag moves, running tasks do not.
    let new = manifest("shop/web build 2");
    let pushed = cli
        .run(&[
            "ecr",
            "put-image",
            "--repository-name",
            "shop/web",
            "--image-tag",
            "live",
            "--image-manifest",
            &new,
        ])
        .await;
    let d2 = cli.tag("shop/web", "live").await;
    assert_ne!(d1, d2);
    assert_eq!(pushed["image"]["imageId"]["imageDigest"], d2.as_str());
    let got = cli
        .run(&[
            "ecr",
            "batch-get-image",
            "--repository-name",
            "shop/web",
            "--image-ids",
            "imageTag=live",
            &format!("imageDigest={d1}"),
        ])
        .await;
    let digests: Vec<&str> = got["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["imageId"]["imageDigest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, vec![d2.as_str(), d1.as_str()]);
    assert_eq!(got["failures"], json!([]));
    let images = cli
        .run(&["ecr", "describe-images", "--repository-name", "shop/web"])
        .await;
    assert_eq!(images["imageDetails"].as_array().unwrap().len(), 2);
    let untagged = cli
        .run(&[
            "ecr",
            "list-images",
            "--repository-name",
            "shop/web",
            "--filter",
            "tagStatus=UNTAGGED",
        ])
        .await;
    assert_eq!(untagged["imageIds"], json!([{ "imageDigest": d1 }]));

    // Scale both services up by one, with no new deployment: the consistent service
    // launches its deployment's digest, the one with consistency disabled the tag's now.
    for (svc, n) in [("web", "3"), ("worker", "2")] {
        cli.run(&[
            "ecs",
            "update-service",
            "--cluster",
            "shop",
            "--service",
            svc,
            "--desired-count",
            n,
        ])
        .await;
    }
    cli.advance(120.0).await;
    assert_eq!(cli.running("web").await, vec![d1.clone(); 3]);
    let mut worker = vec![d1.clone(), d2.clone()];
    worker.sort();
    assert_eq!(cli.running("worker").await, worker);

    // A forced new deployment resolves the tag again.
    cli.run(&[
        "ecs",
        "update-service",
        "--cluster",
        "shop",
        "--service",
        "web",
        "--force-new-deployment",
    ])
    .await;
    cli.advance(900.0).await;
    assert_eq!(cli.running("web").await, vec![d2.clone(); 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_immutable_repository_refuses_to_move_a_tag_and_batches_are_bounded() {
    let (_sb, cli) = start().await;
    let before = cli.tag("shop/fixed", "v1").await;
    let repos = cli
        .run(&[
            "ecr",
            "describe-repositories",
            "--repository-names",
            "shop/fixed",
        ])
        .await;
    assert_eq!(repos["repositories"][0]["imageTagMutability"], "IMMUTABLE");
    let out = cli
        .output(&[
            "ecr",
            "put-image",
            "--repository-name",
            "shop/fixed",
            "--image-tag",
            "v1",
            "--image-manifest",
            &manifest("another build"),
        ])
        .await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ImageTagAlreadyExistsException"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(cli.tag("shop/fixed", "v1").await, before);

    // BatchGetImage takes at most 100 image ids.
    let ids: Vec<String> = (0..101).map(|i| format!("imageTag=t{i}")).collect();
    let mut args = vec![
        "ecr",
        "batch-get-image",
        "--repository-name",
        "shop/fixed",
        "--image-ids",
    ];
    args.extend(ids.iter().map(String::as_str));
    let out = cli.output(&args).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidParameterException"));
    let found = cli
        .run(&[
            "ecr",
            "batch-get-image",
            "--repository-name",
            "shop/fixed",
            "--image-ids",
            "imageTag=v1",
            "imageTag=v2",
        ])
        .await;
    assert_eq!(found["images"].as_array().unwrap().len(), 1);
    assert_eq!(found["failures"][0]["failureCode"], "ImageNotFound");

    // Another account's registry is not readable with these credentials.
    let out = cli
        .output(&[
            "ecr",
            "batch-get-image",
            "--registry-id",
            "210987654321",
            "--repository-name",
            "shop/fixed",
            "--image-ids",
            "imageTag=v1",
        ])
        .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AccessDeniedException"));
}
