//! Recovery through the real binary: a bad new value is restored, `kill -9` and Ctrl-C at
//! each step boundary are finished by `resume`, unsafe starts are refused, and bad input
//! is refused before any write.

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultKind, FaultRule};
use serde_json::Value;

use common::gate::{service_of, wait_for};
use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::faults::{Release, Which};
use sandbox::Scenario;

const READERS: [&str; 3] = ["front", "api", "admin"];

fn replace_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        "json",
    ];
    v.extend_from_slice(extra);
    v
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("json report: {}", text(o)))
}

fn fault(service: &str, op: &str, kind: FaultKind, nth: Vec<u64>, latency_ms: u64) -> FaultRule {
    FaultRule {
        service: Some(service.into()),
        operation: Some(op.into()),
        resource: None,
        kind,
        probability: None,
        nth: Some(nth),
        count: None,
        latency_ms: Some(latency_ms),
    }
}

fn set_faults(env: &TestEnv, rules: Vec<FaultRule>) {
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .set_faults(rules)
        .expect("valid faults");
}

fn bad_value_rule(value: &str) -> HealthRule {
    HealthRule {
        cluster: None,
        service: None,
        secret: Some(SHARED.into()),
        value: Some(value.into()),
        version_id: None,
        probability: None,
        effect: HealthEffect::AppRejectsValue,
    }
}

/// Every journal record written so far, in file order, across rotations.
/// Every journal record, oldest journal first. The rotations directory must exist (a run
/// has written its journal), else a moved state dir would read as "no records".
fn journal_records(env: &TestEnv) -> Vec<Value> {
    read_journals(env, false)
}

/// Like [`journal_records`], but before any run has written a journal (a baseline, or a
/// poll while the tool starts) no rotations directory yet means no records.
fn records_so_far(env: &TestEnv) -> Vec<Value> {
    read_journals(env, true)
}

fn read_journals(env: &TestEnv, may_be_absent: bool) -> Vec<Value> {
    let dir = env.state_dir().join("rotations");
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if may_be_absent && e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    paths.sort();
    for p in paths {
        if p.extension().is_some_and(|e| e == "jsonl") {
            let text =
                std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                match serde_json::from_str::<Value>(l) {
                    Ok(v) => out.push(v),
                    // A line cut by a kill (or still being written) is not a record yet;
                    // only the last line can be such a line.
                    Err(_) if i + 1 == lines.len() => {}
                    Err(e) => panic!("{} line {}: {e}: {l}", p.display(), i + 1),
                }
            }
        }
    }
    out
}

fn count_records(env: &TestEnv, kind: &str) -> usize {
    count_of(&journal_records(env), kind)
}

/// [`count_records`] for polls and baselines: see [`records_so_far`].
fn count_records_so_far(env: &TestEnv, kind: &str) -> usize {
    count_of(&records_so_far(env), kind)
}

fn count_of(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["type"] == kind).count()
}

/// Starts the binary without waiting; output goes to files so a full pipe never blocks it.
fn spawn(env: &TestEnv, args: &[&str], stdin: Option<&[u8]>, tag: &str) -> Child {
    let mut cmd = env.cli();
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(std::fs::File::create(env.dir.path().join(format!("{tag}.out"))).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join(format!("{tag}.err"))).unwrap());
    let mut child = cmd.spawn().expect("binary starts");
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(bytes).expect("stdin written");
    }
    child
}

fn read_tag(env: &TestEnv, tag: &str) -> (String, String) {
    // spawn created both files: a missing one is a test bug, not empty output.
    let read = |ext: &str| {
        let p = env.dir.path().join(format!("{tag}.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    (read("out"), read("err"))
}

async fn run_cmd(mut cmd: Command, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("binary starts");
        if let Some(bytes) = stdin {
            let mut s = child.stdin.take().expect("stdin");
            let _ = s.write_all(&bytes);
        }
        child.wait_with_output().expect("binary finishes")
    })
    .await
    .expect("join")
}

/// Successful UpdateService calls per service: each is one deployment (a call dropped at
/// the gate is logged with an error, so it does not count).
fn deployments_per_service(env: &TestEnv) -> std::collections::BTreeMap<String, usize> {
    let mut out = std::collections::BTreeMap::new();
    for c in env.calls_of("UpdateService") {
        if c["error"].is_null() {
            *out.entry(
                c["subject"]["service"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
            .or_insert(0) += 1;
        }
    }
    out
}

/// The virtual time of the accepted stage move back to the previous version.
fn restore_time(env: &TestEnv) -> f64 {
    env.calls_of("UpdateSecretVersionStage")
        .iter()
        .find(|c| c["error"].is_null())
        .and_then(|c| c["at"].as_f64())
        .expect("a stage move")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_new_value_is_restored_and_every_task_restarted_after_the_restore() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let bad = "a-value-the-apps-reject-8f2c";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    let out = env
        .run(&replace_args(&["--value-stdin"]), Some(bad.as_bytes()))
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "failed_restored", "{}", text(&out));
    assert!(report["restore"].is_object(), "both phases reported");
    assert!(report["rollout"].is_object(), "both phases reported");
    // The failure is ECS's own circuit breaker's (the sample's services have it on, with
    // rollback onto the same bad value): this is the breaker's case of issue 13's matrix.
    let failed: Vec<&Value> = report["rollout"]["services"]
        .as_array()
        .expect("rollout services")
        .iter()
        .filter(|s| s["stage"]["state"] == "failed")
        .collect();
    assert!(!failed.is_empty(), "{}", text(&out));
    assert!(
        failed
            .iter()
            .all(|s| s["stage"].to_string().contains("circuit breaker")),
        "{failed:?}"
    );
    assert_eq!(
        env.current_version(SHARED),
        before,
        "previous version current"
    );
    assert_eq!(
        env.version_count(SHARED),
        2,
        "one new version, kept as history"
    );
    let restored_at = restore_time(&env);
    for svc in READERS {
        let tasks = env.running_tasks(svc);
        assert!(!tasks.is_empty(), "{svc} runs");
        for t in &tasks {
            let created = t["createdAt"].as_f64().unwrap();
            assert!(
                created >= restored_at,
                "{svc} task {} predates the restore",
                t["id"]
            );
            for s in t["secrets"].as_array().unwrap() {
                if s["name"] == SHARED {
                    assert_eq!(
                        s["version_id"],
                        before.as_str(),
                        "{svc} runs the previous value"
                    );
                }
            }
        }
        let n = deployments_per_service(&env);
        assert_eq!(n.get(svc), Some(&2), "{svc}: one deployment per phase");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_new_value_with_on_failure_keep_keeps_the_new_version() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let bad = "a-value-the-apps-reject-kept";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    let out = env
        .run(
            &replace_args(&["--value-stdin", "--on-failure", "keep"]),
            Some(bad.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_ne!(env.current_version(SHARED), before, "new version kept");
    assert_eq!(env.version_count(SHARED), 2);
    assert!(
        env.calls_of("UpdateSecretVersionStage").is_empty(),
        "no restore"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_exits_9_and_prints_the_commands_to_finish_by_hand() {
    let env = start(2000.0).await;
    let bad = "a-value-the-apps-reject-9";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    set_faults(
        &env,
        vec![fault(
            "secretsmanager",
            "UpdateSecretVersionStage",
            FaultKind::Internal,
            (1..=100).collect(),
            0,
        )],
    );
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--value-stdin",
            ],
            Some(bad.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(9), "{}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("aws secretsmanager update-secret-version-stage")
            && all.contains("--move-to-version-id")
            && all.contains("aws ecs update-service --cluster production-online-lpa --service api --force-new-deployment"),
        "{all}"
    );
    assert!(!all.contains(bad), "value printed");
}

/// Where a `kill -9` lands, named by what the journal and the sandbox show there. The tool
/// is brought there through the sandbox's gate (its calls held and let through one by
/// one), so a change in the order or number of its calls does not move the kill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// The rotation is journalled as started and its PutSecretValue waits at the gate: no
    /// version is written. The held write is dropped (it never reached AWS).
    BeforeTheWrite,
    /// The journal says written, and all three UpdateService calls wait at the gate: no
    /// deployment has started. They are dropped.
    AfterTheWrite,
    /// api's UpdateService went through and is journalled; front's and admin's wait at
    /// the gate and are dropped.
    AfterOneRedeploy,
    /// Three redeploys are journalled and the follow's first DescribeServices waits.
    WhileFollowing,
}

impl Moment {
    /// `redeployed` records the journal holds at this moment.
    fn redeployed(self) -> usize {
        match self {
            Moment::BeforeTheWrite | Moment::AfterTheWrite => 0,
            Moment::AfterOneRedeploy => 1,
            Moment::WhileFollowing => READERS.len(),
        }
    }
}

/// Records of `kind` in the journals, less `base` (the count before the run).
fn new_records(env: &TestEnv, kind: &str, base: usize) -> usize {
    count_records_so_far(env, kind) - base
}

/// Brings the running `child` (a `replace` of SHARED) to `moment` through the gate. `base`
/// counts the `redeployed` records from before this run.
async fn bring_to(env: &TestEnv, child: &mut Child, moment: Moment, base: usize) {
    match moment {
        Moment::BeforeTheWrite => {
            env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
            env.wait_held(child, "the write at the gate", 1).await;
        }
        Moment::AfterTheWrite => {
            env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
            env.wait_held(child, "the redeploys at the gate", READERS.len())
                .await;
        }
        Moment::AfterOneRedeploy => {
            env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
            env.wait_held(child, "the redeploys at the gate", READERS.len())
                .await;
            env.release_where(|c| service_of(c) == "api");
            wait_for("api's redeploy journalled", || {
                records_so_far(env).iter().any(|r| {
                    r["type"] == "redeployed" && r["service"] == "api" && r["phase"] == "rollout"
                })
            })
            .await;
        }
        Moment::WhileFollowing => {
            env.gate(vec![FaultRule::gate("ecs", "DescribeServices")]);
            env.advance_until(child, "following", |env, _| {
                new_records(env, "redeployed", base) == READERS.len()
            })
            .await;
        }
    }
}

/// Kills the child with SIGKILL and checks it died of it.
fn kill_9(child: &mut Child, what: &str) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(status.code(), None, "{what}: killed by a signal");
}

struct Boundary {
    name: &'static str,
    moment: Moment,
    /// Redeploy the readers just before (their PRIMARY deployments are then recent).
    redeploy_first: bool,
}

async fn kill_at(boundary: Boundary) {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let value = format!("kill-nine-{}-value", boundary.name.replace(' ', "-"));
    if boundary.redeploy_first {
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
                ],
                None,
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let baseline: Vec<(&str, usize)> = ["started", "written", "redeployed"]
        .into_iter()
        .map(|k| (k, count_records_so_far(&env, k)))
        .collect();
    let base = |k: &str| {
        baseline
            .iter()
            .find(|(x, _)| *x == k)
            .map_or(0, |(_, n)| *n)
    };
    let mut child = spawn(
        &env,
        &replace_args(&["--value-stdin"]),
        Some(value.as_bytes()),
        "first",
    );
    bring_to(&env, &mut child, boundary.moment, base("redeployed")).await;
    kill_9(&mut child, boundary.name);
    // What waits at the gate never reached AWS.
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let written = boundary.moment != Moment::BeforeTheWrite;
    assert_eq!(
        count_records(&env, "started") - base("started"),
        1,
        "{}: the run started",
        boundary.name
    );
    assert_eq!(
        count_records(&env, "redeployed") - base("redeployed"),
        boundary.moment.redeployed(),
        "{}: the kill landed at the boundary",
        boundary.name
    );
    assert_eq!(
        count_records(&env, "written") - base("written"),
        usize::from(written),
        "{}: {:?}",
        boundary.name,
        journal_records(&env)
    );
    // Ground truth agrees with the journal: a version only once written.
    assert_eq!(
        env.version_count(SHARED),
        1 + usize::from(written),
        "{}",
        boundary.name
    );

    // A new replace is refused and points to resume; it writes nothing.
    let puts = env.calls_of("PutSecretValue").len();
    let refused = env
        .run(&replace_args(&["--value-stdin"]), Some(b"some-other-value"))
        .await;
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(
        text(&refused).contains("secret-rollout resume"),
        "{}",
        text(&refused)
    );
    assert_eq!(env.calls_of("PutSecretValue").len(), puts);

    if !written {
        // The value was never stored: without it, resume says what it needs.
        let out = env.run(&["resume", "--yes"], None).await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines().any(|l| l.starts_with("error: rotation ")),
            "{err}"
        );
        assert!(err.contains("needs the new value again"), "{err}");
        assert!(err.contains("hint: rerun `secret-rollout resume"), "{err}");
        assert_eq!(env.calls_of("PutSecretValue").len(), puts);
    }
    let out = env
        .run(
            &[
                "resume",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
                "--value-stdin",
            ],
            Some(value.as_bytes()),
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        boundary.name,
        text(&out)
    );
    assert_eq!(json(&out)["outcome"], "verified");
    assert_eq!(
        env.version_count(SHARED),
        2,
        "{}: exactly one new version",
        boundary.name
    );
    let after = env.current_version(SHARED);
    assert_ne!(after, before);
    // Dropped calls are logged with an error, so every accepted UpdateService counts.
    let mut deployed = deployments_per_service(&env);
    if boundary.redeploy_first {
        for n in deployed.values_mut() {
            *n -= 1;
        }
    }
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [after.clone()].into(),
            "{}: {svc} runs the new value",
            boundary.name
        );
        assert_eq!(
            deployed.get(svc),
            Some(&1),
            "{}: {svc} deployed once in the rollout: {deployed:?}",
            boundary.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_the_write_then_resume() {
    kill_at(Boundary {
        name: "before the write",
        moment: Moment::BeforeTheWrite,
        redeploy_first: false,
    })
    .await;
}

/// The services were redeployed moments before: resume must not take those deployments
/// for ours (they predate the write, so their tasks hold the old value).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_before_the_write_after_a_recent_deployment_then_resume() {
    kill_at(Boundary {
        name: "before the write, after a redeploy",
        moment: Moment::BeforeTheWrite,
        redeploy_first: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_write_then_resume() {
    kill_at(Boundary {
        name: "after the write",
        moment: Moment::AfterTheWrite,
        redeploy_first: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_one_of_three_redeploys_then_resume() {
    kill_at(Boundary {
        name: "after 1 of 3 redeploys",
        moment: Moment::AfterOneRedeploy,
        redeploy_first: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_following_then_resume() {
    kill_at(Boundary {
        name: "while following",
        moment: Moment::WhileFollowing,
        redeploy_first: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_marks_the_journal_and_resume_finishes() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let mut child = spawn(&env, &replace_args(&["--generate"]), None, "first");
    bring_to(&env, &mut child, Moment::WhileFollowing, 0).await;
    let pid = child.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let (_, err) = read_tag(&env, "first");
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("secret-rollout resume"), "{err}");
    let finished: Vec<Value> = journal_records(&env)
        .into_iter()
        .filter(|r| r["type"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["outcome"], "interrupted");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    // No value is needed: the write happened.
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.version_count(SHARED), 2);
    let after = env.current_version(SHARED);
    assert_ne!(after, before);
    let deployed = deployments_per_service(&env);
    for svc in READERS {
        assert_eq!(env.versions_read(svc, SHARED), [after.clone()].into());
        assert_eq!(deployed.get(svc), Some(&1), "{deployed:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_replace_of_the_same_secret_is_refused() {
    let env = start(2000.0).await;
    // The first run waits at its write, lock taken.
    env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
    let mut first = spawn(&env, &replace_args(&["--generate"]), None, "first");
    let first_pid = first.id();
    env.wait_held(&mut first, "the first run's write at the gate", 1)
        .await;
    assert_eq!(count_records(&env, "started"), 1, "the first run started");
    let second = env.run(&replace_args(&["--generate"]), None).await;
    // Nor can the running rotation be resumed from elsewhere while it runs.
    let resumed = env.run(&["resume", "--yes", "--generate"], None).await;
    kill_9(&mut first, "the first run");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    assert_eq!(second.status.code(), Some(4), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.starts_with("error: another secret-rollout is rotating"),
        "{err}"
    );
    assert!(err.contains(&format!("pid {}", first_pid)), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(resumed.status.code(), Some(4), "{}", text(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stderr)
            .starts_with("error: another secret-rollout is rotating"),
        "{}",
        text(&resumed)
    );
    // One write reached the gate, the first run's, dropped there: no version was made.
    let puts = env.calls_of("PutSecretValue");
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0]["error"], "DroppedConnection");
    assert_eq!(env.version_count(SHARED), 1);
    assert_eq!(
        count_records(&env, "started"),
        1,
        "the second never started a rotation"
    );
}

/// The sample plus secrets that must be refused: one being deleted, one with rotation on,
/// one read by a CODE_DEPLOY (blue/green) service, one managed by another service.
const EXTRA_SCENARIO: &str = r#"
[[secrets]]
name = "production/being_deleted"
value = "value-of-a-deleted-secret"
deleted = true

[[secrets]]
name = "production/auto_rotated"
value = "value-of-a-rotated-secret"
rotation_enabled = true
rotation_lambda_arn = "arn:aws:lambda:eu-west-1:123456789012:function:rotate"

[[secrets]]
name = "production/rds_managed"
value = "value-of-a-managed-secret"
owning_service = "rds"

[[secrets]]
name = "production/bluegreen_key"
value = "value-of-a-bluegreen-secret"

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
  { name = "BLUEGREEN_KEY", valueFrom = "/aws/reference/secretsmanager/production/bluegreen_key" },
]

[[services]]
cluster = "production-online-lpa"
serviceName = "bluegreen"
taskDefinition = "production-bluegreen"
desiredCount = 1
launchType = "FARGATE"
deploymentController = { type = "CODE_DEPLOY" }
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }

[[sts.roles]]
arn = "arn:aws:iam::123456789012:role/operator"
"#;

const CONFIG: &str = r#"
[environments.production]
region = "eu-west-1"
account_id = "123456789012"
clusters = ["production-online-lpa"]
secret_prefix = "production/"

[environments.elsewhere]
region = "eu-west-1"
account_id = "999999999999"
clusters = ["production-online-lpa"]
"#;

struct BadInput {
    name: &'static str,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    env: Vec<(&'static str, String)>,
    remove_env: Vec<&'static str>,
    code: i32,
    /// Words the error line must contain.
    says: &'static str,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &'static str) -> BadInput {
    BadInput {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: None,
        env: Vec::new(),
        remove_env: Vec::new(),
        code,
        says,
    }
}

impl BadInput {
    fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = Some(bytes.to_vec());
        self
    }
    fn env(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.env.push((k, v.into()));
        self
    }
    fn without(mut self, k: &'static str) -> Self {
        self.remove_env.push(k);
        self
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_with_one_line_and_a_hint_and_write_nothing() {
    let mut text_scenario = sandbox::scenario::SAMPLE_TOML.to_string();
    text_scenario.push_str(EXTRA_SCENARIO);
    let scenario = Scenario::from_toml(&text_scenario).expect("scenario");
    let env = start_with(scenario, 2000.0).await;
    let config = env.dir.path().join("good.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let broken = env.dir.path().join("broken.toml");
    std::fs::write(&broken, "[environments.production\nregion = ").unwrap();
    let value_file = env.dir.path().join("value.txt");
    std::fs::write(&value_file, "a-fine-new-value").unwrap();
    let cfg = config.to_str().unwrap().to_string();
    let newline_file = env.dir.path().join("pw.txt");
    std::fs::write(&newline_file, "a-fine-new-value\n").unwrap();
    let versions_before: Vec<(String, usize)> = env.state()["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["versions"].as_array().unwrap().len(),
            )
        })
        .collect();
    let current_value = "ops-alerts@example.com,lpa-team@example.com";
    // A role session that has since expired (as after a laptop's sleep).
    let sts = aws_sdk_sts::Client::new(&common::sdk_config(&env.sandbox.endpoint()).await);
    let assumed = sts
        .assume_role()
        .role_arn("arn:aws:iam::123456789012:role/operator")
        .role_session_name("bad-inputs")
        .send()
        .await
        .expect("assume role");
    let session = assumed.credentials().expect("credentials").clone();
    env.sandbox.world().lock().unwrap().expire_sessions();
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::minutes(5))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    const R: &str = "replace";
    const C: &str = "--cluster";
    let cases = vec![
        case(
            "mfa code and value both on stdin",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-stdin",
                "--mfa-code-stdin",
                "--yes",
            ],
            2,
            "would both read stdin",
        ),
        case(
            "unknown environment",
            &[R, "x", "--env", "nope", "--generate", "--yes"],
            2,
            "unknown environment nope",
        )
        .env("SECRET_ROLLOUT_CONFIG", cfg.clone()),
        case(
            "unknown secret",
            &[
                R,
                "production/no_such_secret",
                C,
                CLUSTER,
                "--generate",
                "--yes",
            ],
            2,
            "no_such_secret",
        ),
        case(
            "empty value",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "empty",
        )
        .stdin(b""),
        case(
            "value too large",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "65536",
        )
        .stdin(&vec![b'a'; 65_537]),
        case(
            "json key on a non-JSON secret",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-stdin",
                "--json-key",
                "password",
                "--yes",
            ],
            2,
            "json",
        )
        .stdin(b"a-new-password"),
        case(
            "json key whose new value is not of the key's type (text for a number)",
            &[
                R,
                "production/api_rds_credentials",
                C,
                CLUSTER,
                "--value-stdin",
                "--json-key",
                "port",
                "--yes",
            ],
            2,
            "--json-key port: the key holds a number and the new value is not a number",
        )
        .stdin(b"abc"),
        case(
            "value equal to the current one",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "equals the current",
        )
        .stdin(current_value.as_bytes()),
        case(
            "unknown cluster",
            &[R, SHARED, C, "no-such-cluster", "--generate", "--yes"],
            2,
            "no-such-cluster",
        ),
        case(
            "wrong account",
            &[
                R,
                "opg_lpa_common_account_cleanup_notification_recipients",
                "--env",
                "elsewhere",
                "--generate",
                "--yes",
            ],
            3,
            "999999999999",
        )
        .env("SECRET_ROLLOUT_CONFIG", cfg.clone()),
        case(
            "expired credentials",
            &[R, SHARED, C, CLUSTER, "--generate", "--yes"],
            3,
            "expired",
        )
        .env("AWS_CREDENTIAL_EXPIRATION", "2020-01-01T00:00:00Z"),
        case(
            "credentials expiring before --timeout",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--generate",
                "--yes",
                "--timeout",
                "30m",
            ],
            3,
            "expire in",
        )
        .env("AWS_CREDENTIAL_EXPIRATION", soon),
        case(
            "expired STS session",
            &[R, SHARED, C, CLUSTER, "--generate", "--yes"],
            3,
            "session has expired",
        )
        .env("AWS_ACCESS_KEY_ID", session.access_key_id())
        .env("AWS_SECRET_ACCESS_KEY", session.secret_access_key())
        .env("AWS_SESSION_TOKEN", session.session_token()),
        case(
            "no region",
            &[R, SHARED, C, CLUSTER, "--generate", "--yes"],
            2,
            "region",
        )
        .without("AWS_REGION"),
        case(
            "closed stdin",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "empty",
        ),
        case(
            "unreadable value file",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-file",
                "/nonexistent/value",
                "--yes",
            ],
            2,
            "/nonexistent/value",
        ),
        case(
            "malformed config",
            &[R, SHARED, "--env", "production", "--generate", "--yes"],
            2,
            "broken.toml",
        )
        .env("SECRET_ROLLOUT_CONFIG", broken.to_str().unwrap()),
        case(
            "value on argv",
            &[R, SHARED, C, CLUSTER, "--value", "hunter2-on-argv", "--yes"],
            2,
            "--value",
        ),
        case(
            "secret-string on argv",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--secret-string=hunter2-on-argv",
                "--yes",
            ],
            2,
            "--secret-string",
        ),
        case(
            "unknown --services name",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--services",
                "nosuch",
                "--generate",
                "--yes",
            ],
            2,
            "nosuch",
        ),
        case(
            "no cluster",
            &[R, SHARED, "--generate", "--yes"],
            2,
            "cluster",
        ),
        case(
            "CODE_DEPLOY consumer",
            &[
                R,
                "production/bluegreen_key",
                C,
                CLUSTER,
                "--generate",
                "--yes",
            ],
            4,
            "bluegreen",
        ),
        case(
            "scheduled for deletion",
            &[
                R,
                "production/being_deleted",
                C,
                CLUSTER,
                "--generate",
                "--yes",
            ],
            4,
            "scheduled for deletion",
        ),
        case(
            "rotation enabled",
            &[
                R,
                "production/auto_rotated",
                C,
                CLUSTER,
                "--generate",
                "--yes",
            ],
            4,
            "rotation enabled",
        ),
        case(
            "managed by another service",
            &[
                R,
                "production/rds_managed",
                C,
                CLUSTER,
                "--generate",
                "--yes",
            ],
            4,
            "managed by rds",
        ),
        case(
            "no confirmation without a terminal",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-file",
                value_file.to_str().unwrap(),
            ],
            4,
            "not confirmed",
        ),
        case(
            "--value-stdin with two secrets",
            &[
                R,
                SHARED,
                "production/api_rds_password",
                C,
                CLUSTER,
                "--value-stdin",
                "--yes",
            ],
            2,
            "several secrets",
        )
        .stdin(b"one-value"),
        case(
            "one --value-file for two secrets",
            &[
                R,
                SHARED,
                "production/api_rds_password",
                C,
                CLUSTER,
                "--value-file",
                value_file.to_str().unwrap(),
                "--yes",
            ],
            2,
            "--value-file",
        ),
        case(
            "resume with nothing to resume",
            &["resume", "--yes"],
            2,
            "no unfinished rotation",
        ),
        // Issue 11: numbers out of range, values a store or ECS cannot hold, configuration
        // that cannot form an endpoint, flags that would be ignored.
        case(
            "zero timeout",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--generate",
                "--yes",
                "--timeout",
                "0s",
            ],
            2,
            "the timeout must be from 10s to 7days",
        ),
        case(
            "huge timeout",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--generate",
                "--yes",
                "--timeout",
                "18446744073709551616s",
            ],
            2,
            "the timeout must be from 10s to 7days",
        ),
        case(
            "80 KB of valid utf-8",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "65536-byte limit",
        )
        .stdin("é".repeat(40_000).as_bytes()),
        case(
            "a NUL byte in the value",
            &[R, SHARED, C, CLUSTER, "--value-stdin", "--yes"],
            2,
            "NUL byte",
        )
        .stdin(b"hunter2\0x"),
        case(
            "a value file ending in a newline",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-file",
                newline_file.to_str().unwrap(),
                "--yes",
            ],
            2,
            "ends with a newline",
        ),
        case(
            "--trim-newline with --generate",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--generate",
                "--trim-newline",
                "--yes",
            ],
            2,
            "--trim-newline applies to --value-stdin and --value-file only",
        ),
        case(
            "--length with --value-stdin",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--value-stdin",
                "--length",
                "8",
                "--yes",
            ],
            2,
            "--length applies to --generate only",
        )
        .stdin(b"hunter2-new"),
        case(
            "a blank service name",
            &["redeploy", C, CLUSTER, "--services", "", "--yes"],
            2,
            "a service name is empty",
        ),
        case(
            "an endpoint that is not a url",
            &[
                R,
                SHARED,
                C,
                CLUSTER,
                "--generate",
                "--yes",
                "--endpoint-url",
                "not a url::",
            ],
            2,
            "is not an http(s) URL",
        ),
        case(
            "a region that cannot be one",
            &[R, SHARED, C, CLUSTER, "--generate", "--yes"],
            2,
            "is not an AWS region name",
        )
        .env("AWS_REGION", "mars-1;rm"),
        case(
            "rollback of an unknown rotation",
            &["rollback", "0123abcd-0000-0000-0000-000000000000", "--yes"],
            2,
            "no rotation",
        ),
    ];
    // Every case above is run: a list that lost some by mistake fails here.
    assert_eq!(cases.len(), 40);
    let runs = cases.into_iter().map(|c| {
        let mut cmd = env.cli();
        cmd.args(&c.args)
            .args(["--output", "json", "--max-poll", "50ms"]);
        for (k, v) in &c.env {
            cmd.env(k, v);
        }
        for k in &c.remove_env {
            cmd.env_remove(k);
        }
        let stdin = c.stdin.clone();
        async move { (c, run_cmd(cmd, stdin).await) }
    });
    let mut failures = Vec::new();
    for (c, out) in futures::future::join_all(runs).await {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        let lines: Vec<&str> = err
            .lines()
            .filter(|l| !l.starts_with("warning: "))
            .collect();
        let problem = if out.status.code() != Some(c.code) {
            Some(format!("exit {:?}, wanted {}", out.status.code(), c.code))
        } else if !lines.first().is_some_and(|l| l.starts_with("error: ")) {
            Some("first line is not `error: ...`".to_string())
        } else if !lines[0].to_lowercase().contains(&c.says.to_lowercase()) {
            Some(format!("error line does not say {:?}", c.says))
        } else if !lines.get(1).is_some_and(|l| l.starts_with("  hint: ")) {
            Some("no hint line".to_string())
        } else if !error_document(&out.stdout, lines[0], c.code) {
            // Issue 21, item 9: with --output json the error is a JSON document on stdout
            // too (never a report), saying what the stderr line says.
            Some(format!(
                "stdout is not the error document: {}",
                String::from_utf8_lossy(&out.stdout)
            ))
        } else if err.contains("hunter2")
            || String::from_utf8_lossy(&out.stdout).contains("hunter2")
        {
            Some("echoed the value".to_string())
        } else {
            None
        };
        if let Some(p) = problem {
            failures.push(format!("{}: {p}\n{err}", c.name));
        }
    }
    for op in [
        "PutSecretValue",
        "UpdateSecretVersionStage",
        "UpdateService",
    ] {
        assert!(env.calls_of(op).is_empty(), "{op} was called");
    }
    for (name, n) in versions_before {
        assert_eq!(env.version_count(&name), n, "{name} versions changed");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Whether `stdout` is the `--output json` document of the error whose stderr line is
/// `line`, with exit code `code`, and not a report.
fn error_document(stdout: &[u8], line: &str, code: i32) -> bool {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(stdout) else {
        return false;
    };
    doc.get("rotation_id").is_none()
        && doc["exit_code"] == code
        && doc["outcome"].is_string()
        && Some(line.trim_start_matches("error: ")) == doc["error"].as_str()
}

/// The PRIMARY deployment id of each reader, from the ground truth.
fn primaries(env: &TestEnv) -> std::collections::BTreeMap<String, String> {
    env.state()["ecs"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| READERS.contains(&s["name"].as_str().unwrap_or_default()))
        .map(|s| {
            let primary = s["deployments"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["status"] == "PRIMARY")
                .map(|d| d["id"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            (s["name"].as_str().unwrap().to_string(), primary)
        })
        .collect()
}

/// `kill -9` while two UpdateService calls are in flight: AWS may still start those
/// deployments, but the journal never hears of them. `resume` must find and follow them
/// instead of deploying those services a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_redeploys_in_flight_then_resume_adopts_them() {
    let env = start(2000.0).await;
    let before = primaries(&env);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = spawn(&env, &replace_args(&["--generate"]), None, "first");
    let held = env
        .wait_held(&mut child, "the redeploys at the gate", READERS.len())
        .await;
    let first = service_of(&env.release_where(|c| c.id == held[0].id)).to_string();
    wait_for("one redeploy journalled", || {
        count_records_so_far(&env, "redeployed") == 1
    })
    .await;
    kill_9(&mut child, "two redeploys in flight");
    // AWS acts on the two requests it received though their sender died.
    let in_flight: Vec<String> = env
        .release(Which::All, Release::Run)
        .iter()
        .map(|c| service_of(c).to_string())
        .collect();
    assert_eq!(in_flight.len(), 2, "{in_flight:?}");
    assert!(!in_flight.contains(&first), "{first} {in_flight:?}");
    env.open_gate();
    wait_for("the orphaned deployments started", || {
        let now = primaries(&env);
        READERS.iter().all(|s| now.get(*s) != before.get(*s))
    })
    .await;
    assert_eq!(
        count_records(&env, "redeployed"),
        1,
        "the journal knows one"
    );
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = env.current_version(SHARED);
    assert_eq!(env.version_count(SHARED), 2);
    // Every UpdateService ran (none was dropped): one deployment each, none repeated.
    let deployed = deployments_per_service(&env);
    for svc in READERS {
        assert_eq!(deployed.get(svc), Some(&1), "{svc}: {deployed:?}");
        assert_eq!(env.versions_read(svc, SHARED), [after.clone()].into());
    }
}

/// Successful UpdateService calls per service before and after the accepted stage move.
fn deployments_per_phase(
    env: &TestEnv,
) -> (
    std::collections::BTreeMap<String, usize>,
    std::collections::BTreeMap<String, usize>,
) {
    let calls: Vec<Value> = env.state()["calls"].as_array().cloned().unwrap();
    let restore_at = calls
        .iter()
        .position(|c| c["operation"] == "UpdateSecretVersionStage" && c["error"].is_null())
        .unwrap_or(usize::MAX);
    let (mut rollout, mut restore) = (
        std::collections::BTreeMap::new(),
        std::collections::BTreeMap::new(),
    );
    for (i, c) in calls.iter().enumerate() {
        if c["operation"] == "UpdateService" && c["error"].is_null() {
            let svc = c["subject"]["service"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            *if i < restore_at {
                &mut rollout
            } else {
                &mut restore
            }
            .entry(svc)
            .or_insert(0) += 1;
        }
    }
    (rollout, restore)
}

/// A failing rollout killed in its restore, at two points; `resume` finishes the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_restore_then_resume_finishes_it() {
    for before_the_move in [true, false] {
        let env = start(2000.0).await;
        let before = env.current_version(SHARED);
        let bad = "a-value-the-apps-reject-resumed";
        env.sandbox
            .world()
            .lock()
            .unwrap()
            .set_health_rules(vec![bad_value_rule(bad)]);
        if before_the_move {
            env.gate(vec![FaultRule::gate(
                "secretsmanager",
                "UpdateSecretVersionStage",
            )]);
        } else {
            env.gate(vec![
                FaultRule::gate("secretsmanager", "UpdateSecretVersionStage"),
                FaultRule::gate("ecs", "DescribeServices"),
            ]);
        }
        let mut child = spawn(
            &env,
            &replace_args(&["--value-stdin"]),
            Some(bad.as_bytes()),
            "first",
        );
        if before_the_move {
            env.wait_held(&mut child, "the stage move at the gate", 1)
                .await;
            assert_eq!(count_records(&env, "restored"), 0);
        } else {
            // The previous version is current again, and the restore's first look at the
            // services (before its redeploys) waits.
            let held = env
                .advance_until(&mut child, "restored", |env, _| {
                    count_records_so_far(env, "restored") == 1
                })
                .await;
            assert_eq!(held[0].operation, "DescribeServices", "{held:?}");
            assert_eq!(env.current_version(SHARED), before);
        }
        kill_9(&mut child, "in the restore");
        env.release(Which::All, Release::Drop);
        env.open_gate();
        assert_eq!(count_records(&env, "finished"), 0, "killed before the end");
        let out = env
            .run(
                &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
                None,
            )
            .await;
        assert_eq!(out.status.code(), Some(8), "{}", text(&out));
        assert_eq!(env.current_version(SHARED), before);
        assert_eq!(env.version_count(SHARED), 2);
        let (rollout, restore) = deployments_per_phase(&env);
        for svc in READERS {
            assert_eq!(rollout.get(svc), Some(&1), "rollout {rollout:?}");
            assert_eq!(
                restore.get(svc),
                Some(&1),
                "before the move: {before_the_move}, restore {restore:?}\n{}\n{}\n{}",
                serde_json::to_string_pretty(&journal_records(&env)).unwrap(),
                serde_json::to_string(
                    &env.state()["calls"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|c| c["operation"] != "DescribeTaskDefinition")
                        .collect::<Vec<_>>()
                )
                .unwrap(),
                text(&out)
            );
            assert_eq!(env.versions_read(svc, SHARED), [before.clone()].into());
        }
    }
}

/// As [`kill_9_with_redeploys_in_flight_then_resume_adopts_them`], in the restore: one
/// of the restore's redeploys is journalled, two are in flight at the kill.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_restore_redeploys_in_flight_then_resume_adopts_them() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let bad = "a-value-the-apps-reject-in-flight";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = spawn(
        &env,
        &replace_args(&["--value-stdin"]),
        Some(bad.as_bytes()),
        "first",
    );
    env.wait_held(&mut child, "the rollout's redeploys", READERS.len())
        .await;
    assert_eq!(count_records_so_far(&env, "restored"), 0, "the rollout's");
    env.release(Which::All, Release::Run);
    let held = env
        .wait_held(&mut child, "the restore's redeploys", READERS.len())
        .await;
    assert_eq!(
        count_records(&env, "restored"),
        1,
        "the restore's: {held:?}"
    );
    env.release_where(|c| c.id == held[0].id);
    wait_for("one restore redeploy journalled", || {
        records_so_far(&env)
            .iter()
            .filter(|r| r["type"] == "redeployed" && r["phase"] == "restore")
            .count()
            == 1
    })
    .await;
    let primaries_then = primaries(&env);
    kill_9(&mut child, "two restore redeploys in flight");
    // AWS acts on the two requests it received.
    let in_flight = env.release(Which::All, Release::Run);
    assert_eq!(in_flight.len(), 2, "{in_flight:?}");
    env.open_gate();
    wait_for("the orphaned deployments started", || {
        let now = primaries(&env);
        in_flight
            .iter()
            .all(|c| now.get(service_of(c)) != primaries_then.get(service_of(c)))
    })
    .await;
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before);
    let per_service = deployments_per_service(&env);
    for svc in READERS {
        assert_eq!(
            per_service.get(svc),
            Some(&2),
            "one per phase: {per_service:?}"
        );
        assert_eq!(env.versions_read(svc, SHARED), [before.clone()].into());
    }
}

/// `--timeout` passes mid-rollout: exit 7, the journal says so, and `resume` follows the
/// same deployments to the end without deploying anything again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_then_resume_follows_the_same_deployments() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    // Slow ECS right down: the rollout cannot finish within the timeout.
    env.sandbox.world().lock().unwrap().set_speed(1.0).unwrap();
    let out = env
        .run(&replace_args(&["--generate", "--timeout", "10s"]), None)
        .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "timeout");
    let finished: Vec<Value> = journal_records(&env)
        .into_iter()
        .filter(|r| r["type"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0]["outcome"], "timeout");
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let after = env.current_version(SHARED);
    assert_ne!(after, before);
    assert_eq!(env.version_count(SHARED), 2);
    let deployed = deployments_per_service(&env);
    for svc in READERS {
        assert_eq!(deployed.get(svc), Some(&1), "{deployed:?}");
        assert_eq!(env.versions_read(svc, SHARED), [after.clone()].into());
    }
    // Finished now: resuming again is refused.
    let again = env.run(&["resume", "--yes"], None).await;
    assert_ne!(again.status.code(), Some(0), "{}", text(&again));
}

/// `rollback ROTATION_ID` restores that rotation's previous version, but refuses once
/// AWSCURRENT has moved on, unless `--force`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_a_rotation_refuses_when_the_secret_moved_on_unless_forced() {
    let env = start(2000.0).await;
    let original = env.current_version(SHARED);
    let first = env.run(&replace_args(&["--generate"]), None).await;
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let first_id = json(&first)["rotation_id"].as_str().unwrap().to_string();
    let v1 = env.current_version(SHARED);
    let second = env.run(&replace_args(&["--generate"]), None).await;
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let updates = env.calls_of("UpdateService").len();
    let refused = env
        .run(
            &["rollback", &first_id, "--yes", "--max-poll", "50ms"],
            None,
        )
        .await;
    assert_eq!(refused.status.code(), Some(4), "{}", text(&refused));
    assert!(text(&refused).contains("--force"), "{}", text(&refused));
    assert!(env.calls_of("UpdateSecretVersionStage").is_empty());
    assert_eq!(env.calls_of("UpdateService").len(), updates);
    let forced = env
        .run(
            &[
                "rollback",
                &first_id,
                "--force",
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    assert_eq!(env.current_version(SHARED), original);
    assert_ne!(original, v1);
    for svc in READERS {
        assert_eq!(env.versions_read(svc, SHARED), [original.clone()].into());
    }
    assert_eq!(env.version_count(SHARED), 3, "a rollback writes no version");
}

/// A death mid-append (power loss) leaves a torn last line: `resume` still reads the
/// journal, cuts the fragment off and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_last_journal_line_does_not_stop_resume() {
    let env = start(2000.0).await;
    let mut child = spawn(&env, &replace_args(&["--generate"]), None, "first");
    bring_to(&env, &mut child, Moment::AfterTheWrite, 0).await;
    kill_9(&mut child, "after the write");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    assert_eq!(count_records(&env, "written"), 1);
    let journal = std::fs::read_dir(env.state_dir().join("rotations"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("a journal");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&journal)
            .unwrap();
        f.write_all(br#"{"type":"redeployed","phase":"rollout","clus"#)
            .unwrap();
    }
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.version_count(SHARED), 2);
    let text_now = std::fs::read_to_string(&journal).unwrap();
    for line in text_now.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|_| panic!("bad line {line}"));
    }
    assert!(text_now.contains(r#""outcome":"verified""#));
}

/// Someone else changes AWSCURRENT between the plan and the write: the run stops, writes
/// nothing, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awscurrent_moved_between_plan_and_write_stops_before_writing() {
    let env = start(2000.0).await;
    // Hold the write's own look at the versions (the first after the rotation is
    // journalled as started; the plan's comes before) while someone else rotates.
    env.gate(vec![FaultRule::gate(
        "secretsmanager",
        "ListSecretVersionIds",
    )]);
    let mut child = spawn(&env, &replace_args(&["--generate"]), None, "first");
    env.advance_until(&mut child, "the write's check", |env, _| {
        count_records_so_far(env, "started") == 1
    })
    .await;
    assert!(env.calls_of("PutSecretValue").is_empty(), "not written yet");
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("someone-else-rotated-it")
        .send()
        .await
        .expect("someone else's put");
    let theirs = env.current_version(SHARED);
    env.open_gate();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let (_, err) = read_tag(&env, "first");
    assert_eq!(out.status.code(), Some(4), "{err}");
    assert!(err.contains("moved from"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(env.calls_of("PutSecretValue").len(), 1, "only theirs");
    assert!(env.calls_of("UpdateService").is_empty());
    assert_eq!(env.current_version(SHARED), theirs);
    let finished: Vec<Value> = journal_records(&env)
        .into_iter()
        .filter(|r| r["type"] == "finished")
        .collect();
    assert_eq!(finished[0]["outcome"], "aborted");
}

/// Ctrl-C while the restore is being followed: exit 130, and `resume` finishes the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_the_restore_then_resume_finishes_it() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let bad = "a-value-the-apps-reject-ctrl-c";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    // The rollout's redeploys go through; the restore's wait at the gate.
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = spawn(
        &env,
        &replace_args(&["--value-stdin"]),
        Some(bad.as_bytes()),
        "first",
    );
    env.wait_held(&mut child, "the rollout's redeploys", READERS.len())
        .await;
    assert_eq!(count_records_so_far(&env, "restored"), 0, "the rollout's");
    env.release(Which::All, Release::Run);
    env.wait_held(&mut child, "the restore's redeploys", READERS.len())
        .await;
    assert_eq!(count_records(&env, "restored"), 1, "in the restore");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let (_, err) = read_tag(&env, "first");
    assert_eq!(out.status.code(), Some(130), "{err}");
    // The held redeploys never reached AWS.
    assert_eq!(env.release(Which::All, Release::Drop).len(), READERS.len());
    env.open_gate();
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before);
    let per_service = deployments_per_service(&env);
    for svc in READERS {
        assert_eq!(per_service.get(svc), Some(&2), "{per_service:?}");
        assert_eq!(env.versions_read(svc, SHARED), [before.clone()].into());
    }
}

/// A rotation that timed out can be undone with `rollback ID` instead of resumed; after
/// that it no longer blocks the secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_rotation_rolled_back_no_longer_blocks_the_secret() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    env.sandbox.world().lock().unwrap().set_speed(1.0).unwrap();
    let out = env
        .run(&replace_args(&["--generate", "--timeout", "10s"]), None)
        .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    let id = json(&out)["rotation_id"].as_str().unwrap().to_string();
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let out = env
        .run(&["rollback", &id, "--yes", "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before);
    let closed: Vec<Value> = journal_records(&env)
        .into_iter()
        .filter(|r| r["type"] == "finished" && r["outcome"] == "failed_restored")
        .collect();
    assert_eq!(closed.len(), 1, "the undone rotation is closed");
    assert!(closed[0]["message"]
        .as_str()
        .unwrap()
        .starts_with("rolled back by rotation"));
    let again = env.run(&replace_args(&["--generate"]), None).await;
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let resume = env.run(&["resume", "--yes"], None).await;
    assert_eq!(
        resume.status.code(),
        Some(2),
        "nothing left to resume: {}",
        text(&resume)
    );
}

/// `resume` without `--on-failure` does what the interrupted run was told: here `keep`, so
/// a bad value found after the resume is kept (exit 5), not restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_keeps_the_on_failure_choice_of_the_interrupted_run() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let bad = "a-value-the-apps-reject-after-resume";
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![bad_value_rule(bad)]);
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    let out = env
        .run(
            &replace_args(&["--value-stdin", "--on-failure", "keep", "--timeout", "10s"]),
            Some(bad.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out));
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert_ne!(
        env.current_version(SHARED),
        before,
        "the new version is kept"
    );
    assert!(
        env.calls_of("UpdateSecretVersionStage").is_empty(),
        "no restore"
    );
}
