//! Shared harness for end-to-end tests: a sandbox on a free port, SDK clients pointed at
//! it, the `secret-rollout` binary run with a clean environment, and ground-truth readers
//! over the sandbox's state.
#![allow(dead_code)]

pub mod gate;
pub mod moto;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;

use sandbox::{Sandbox, SandboxOptions, Scenario};
use secret_rollout_core::clients::Clients;
use serde_json::Value;

/// The sample environment's cluster.
pub const CLUSTER: &str = "production-online-lpa";
/// The secret the sample's front, api and admin share.
pub const SHARED: &str = "production/opg_lpa_common_account_cleanup_notification_recipients";

/// A sandbox plus everything a test needs around it.
pub struct TestEnv {
    /// The sandbox.
    pub sandbox: Sandbox,
    /// A private directory: state dir, config dir, cache dir, working directory.
    pub dir: tempfile::TempDir,
    /// Clients built the way the tool builds them, on the sandbox.
    pub clients: Clients,
}

/// The SDK configuration for a sandbox endpoint, independent of the machine's environment.
pub async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_types::region::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        ))
        .retry_config(aws_smithy_types::retry::RetryConfig::standard().with_max_attempts(5))
        .load()
        .await
}

/// Starts the sample scenario at `speed` virtual seconds per real second.
pub async fn start(speed: f64) -> TestEnv {
    start_with(Scenario::sample(), speed).await
}

/// Starts a scenario.
pub async fn start_with(scenario: Scenario, speed: f64) -> TestEnv {
    let sandbox = Sandbox::start(SandboxOptions {
        port: 0,
        scenario,
        speed: Some(speed),
        seed: Some(7),
    })
    .await
    .expect("sandbox starts");
    let clients = Clients::new(&sdk_config(&sandbox.endpoint()).await);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("state")).expect("state dir");
    TestEnv {
        sandbox,
        dir,
        clients,
    }
}

impl TestEnv {
    /// The state directory the binary uses.
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The sandbox's whole state.
    pub fn state(&self) -> Value {
        self.sandbox.snapshot()
    }

    /// Tasks of a service that ECS still means to run.
    pub fn running_tasks(&self, service: &str) -> Vec<Value> {
        let group = format!("service:{service}");
        self.state()["ecs"]["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t["group"] == group.as_str() && t["desiredStatus"] == "RUNNING")
            .collect()
    }

    /// The versions of `secret` (by name) that the running tasks of `service` resolved.
    pub fn versions_read(&self, service: &str, secret: &str) -> BTreeSet<String> {
        self.running_tasks(service)
            .iter()
            .flat_map(|t| t["secrets"].as_array().cloned().unwrap_or_default())
            .filter(|s| s["name"] == secret)
            .filter_map(|s| s["version_id"].as_str().map(str::to_string))
            .collect()
    }

    /// The secret's entry in the state.
    pub fn secret(&self, name: &str) -> Value {
        self.state()["secrets"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["name"] == name)
            .expect("secret exists")
    }

    /// The version holding AWSCURRENT.
    pub fn current_version(&self, name: &str) -> String {
        self.secret(name)["versions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .find(|v| {
                v["stages"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "AWSCURRENT"))
            })
            .and_then(|v| v["id"].as_str().map(str::to_string))
            .expect("a current version")
    }

    /// How many versions the secret has.
    pub fn version_count(&self, name: &str) -> usize {
        self.secret(name)["versions"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0)
    }

    /// How many calls of `operation` the sandbox answered.
    pub fn calls(&self, operation: &str) -> usize {
        self.state()["calls"]
            .as_array()
            .map(|c| c.iter().filter(|x| x["operation"] == operation).count())
            .unwrap_or(0)
    }

    /// The calls of `operation`, with their subjects.
    pub fn calls_of(&self, operation: &str) -> Vec<Value> {
        self.state()["calls"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|x| x["operation"] == operation)
            .collect()
    }

    /// A `secret-rollout` command with a clean environment aimed at the sandbox.
    pub fn cli(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(bin());
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy().to_string();
            if k.starts_with("AWS_")
                || k.starts_with("SECRET_ROLLOUT_")
                || k == "RUST_LOG"
                || k == "CI"
                // A width inherited from the shell would change every text output.
                || k == "COLUMNS"
            {
                cmd.env_remove(&k);
            }
        }
        cmd.current_dir(self.dir.path())
            .env("AWS_ENDPOINT_URL", self.sandbox.endpoint())
            .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
            .env("AWS_SECRET_ACCESS_KEY", "secret")
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_CONFIG_FILE", self.dir.path().join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                self.dir.path().join("aws-credentials"),
            )
            .env("SECRET_ROLLOUT_STATE_DIR", self.state_dir())
            // The sandbox is consistent at once: a short margin keeps the tests quick
            // (the default is seconds). A test may set it again.
            .env("SECRET_ROLLOUT_CONSISTENCY_MARGIN", "50ms")
            .env("SECRET_ROLLOUT_CACHE_DIR", self.dir.path().join("cache"))
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs the binary with `args` and `stdin`, off the async runtime.
    pub async fn run(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.cli();
        cmd.args(args);
        let input = stdin.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            use std::process::Stdio;
            cmd.stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("binary starts");
            if let Some(bytes) = input {
                let mut stdin = child.stdin.take().expect("stdin");
                let _ = stdin.write_all(&bytes);
            }
            child.wait_with_output().expect("binary finishes")
        })
        .await
        .expect("join")
    }
}

/// The binary under test: `SECRET_ROLLOUT_TEST_BIN` when set, else cargo's. Several
/// worktrees building into one target directory share cargo's path
/// (`target/debug/secret-rollout`, re-linked by every build), so a test run can pick up
/// another worktree's binary; the variable names this worktree's own
/// (`target/debug/deps/secret-rollout-HASH`).
pub fn bin() -> PathBuf {
    std::env::var_os("SECRET_ROLLOUT_TEST_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_secret-rollout")))
}

/// stdout and stderr as text, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
