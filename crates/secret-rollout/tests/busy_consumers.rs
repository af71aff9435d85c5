//! Issue 10 item 3: a consumer in the middle of a deployment the tool did not start (someone
//! deploying, or another rotation sharing it) stops `replace` before it writes, exit 4,
//! naming the service and since when; `--allow-concurrent-deploy` goes on; `--wait` waits
//! for it to settle, then goes on; `plan` warns. And two tool processes with their own
//! state directories (so no local lock is shared): the second refuses because the first's
//! deployments are under way, and the secret gets exactly one new version.
//!
//! Every deployment "by someone else" is started with the SDK on the sandbox, and kept in
//! progress by a service timing that holds new tasks in PENDING for a virtual day.
//! Assertions are on the sandbox's state (versions, calls, what tasks resolved).

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{start, text, TestEnv, CLUSTER, SHARED};
use sandbox::ecs::Timing;
use secret_rollout_core::error::exit;
use serde_json::Value;

/// Fast enough that a normal rollout takes well under a second of real time.
const SPEED: f64 = 2000.0;
/// The consumer someone else deploys (it reads `SHARED`, as front and admin do).
const SERVICE: &str = "api";
/// New tasks stay PENDING this long (virtual seconds, the sandbox's largest phase): 43 s
/// of real time at `SPEED`, longer than any of these tests waits.
const STUCK: f64 = 86_400.0;

fn set_timing(env: &TestEnv, service: &str, timing: Timing) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_timing(Some(CLUSTER), Some(service), timing)
        .expect("service exists");
}

/// New tasks of `service` stay PENDING for a virtual day.
fn slow(env: &TestEnv, service: &str) {
    set_timing(
        env,
        service,
        Timing {
            pending: STUCK,
            ..Timing::default()
        },
    );
}

/// Lets every deployment held by [`slow`] finish: normal timing, and a virtual day passes.
fn settle(env: &TestEnv, service: &str) {
    set_timing(env, service, Timing::default());
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .advance_clock(STUCK + 3_600.0)
        .expect("clock advances");
}

/// Someone else forces a new deployment of `service` (the SDK, as the aws CLI would).
async fn deploy_by_someone_else(env: &TestEnv, service: &str) -> String {
    let out = env
        .clients
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service(service)
        .force_new_deployment(true)
        .send()
        .await
        .expect("UpdateService");
    let primary = out
        .service()
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .expect("a PRIMARY deployment")
        .to_string();
    assert_eq!(deployments(env, service), 2, "{service} is mid-deployment");
    primary
}

/// How many deployments ECS lists for `service`.
fn deployments(env: &TestEnv, service: &str) -> usize {
    env.state()["ecs"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == service)
        .and_then(|s| s["deployments"].as_array().map(Vec::len))
        .expect("service in the state")
}

/// `replace SHARED --generate` on the sample cluster, non-interactive.
fn replace_args(extra: &[&'static str]) -> Vec<&'static str> {
    let mut args = vec![
        "replace",
        SHARED,
        "--generate",
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        "ndjson",
    ];
    args.extend(extra);
    args
}

/// The ndjson lines of a run.
fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{}", text(out))))
        .collect()
}

/// The refusal: exit 4, the service and deployment named, since when, nothing written
/// and no deployment started by the tool.
fn assert_refused(env: &TestEnv, out: &Output, deployment: &str, versions: usize, updates: usize) {
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(out));
    let error = lines(out)
        .into_iter()
        .find(|l| l["type"] == "error")
        .unwrap_or_else(|| panic!("an error line\n{}", text(out)));
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains(&format!(
            "service {SERVICE} is in the middle of a deployment"
        )),
        "{message}"
    );
    assert!(message.contains(deployment), "{message}");
    assert!(message.contains(" since 2"), "since when: {message}");
    assert!(!message.contains('\n'), "one line: {message}");
    let hint = error["hint"].as_str().expect("hint");
    assert!(
        hint.contains("--wait") && hint.contains("--allow-concurrent-deploy"),
        "{hint}"
    );
    assert_eq!(env.version_count(SHARED), versions, "no new version");
    assert_eq!(env.calls("PutSecretValue"), 0, "nothing written");
    assert_eq!(env.calls("UpdateService"), updates, "no deployment started");
}

/// Every running task of every reader of `SHARED` resolved its current version.
fn assert_all_read_current(env: &TestEnv) {
    let current = env.current_version(SHARED);
    for service in ["front", "api", "admin"] {
        assert!(!env.running_tasks(service).is_empty(), "{service} runs");
        assert_eq!(
            env.versions_read(service, SHARED),
            [current.clone()].into(),
            "{service} holds the new version"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_deployment_refuses_and_plan_warns_and_allow_goes_on() {
    let env = start(SPEED).await;
    let versions = env.version_count(SHARED);
    slow(&env, SERVICE);
    let theirs = deploy_by_someone_else(&env, SERVICE).await;

    let out = env.run(&replace_args(&[]), None).await;
    assert_refused(&env, &out, &theirs, versions, 1);
    // The same for rollback and redeploy: both would write or deploy.
    let out = env
        .run(
            &[
                "redeploy",
                "--services",
                "front,api",
                "--cluster",
                CLUSTER,
                "--yes",
                "--output",
                "ndjson",
            ],
            None,
        )
        .await;
    assert_refused(&env, &out, &theirs, versions, 1);

    // plan and --dry-run warn and refuse nothing.
    let out = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
    let busy = plan["busy"].as_array().expect("busy in the plan");
    assert_eq!(busy.len(), 1, "{plan}");
    assert_eq!(busy[0]["service"], SERVICE);
    assert_eq!(busy[0]["deployment"], theirs.as_str());
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--generate",
                "--dry-run",
                "--cluster",
                CLUSTER,
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!(
            "warning: mid-deployment: {SERVICE} (cluster {CLUSTER}): deployment {theirs}"
        )),
        "{shown}"
    );
    assert_eq!(env.version_count(SHARED), versions, "a plan writes nothing");

    // --allow-concurrent-deploy goes on, says so, and proves every task.
    set_timing(&env, SERVICE, Timing::default());
    let out = env
        .run(&replace_args(&["--allow-concurrent-deploy"]), None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let warned = lines(&out).into_iter().any(|l| {
        l["type"] == "warning"
            && l["text"]
                .as_str()
                .is_some_and(|t| t.contains("--allow-concurrent-deploy") && t.contains(&theirs))
    });
    assert!(warned, "a warning names their deployment\n{}", text(&out));
    assert_eq!(env.version_count(SHARED), versions + 1, "one new version");
    assert_all_read_current(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_waits_for_the_deployment_to_settle_then_goes_on() {
    let env = start(SPEED).await;
    let versions = env.version_count(SHARED);
    slow(&env, SERVICE);
    let theirs = deploy_by_someone_else(&env, SERVICE).await;

    let mut cmd = env.cli();
    cmd.args(replace_args(&["--wait", "--timeout", "5m"]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("binary starts");
    // While their deployment is under way, the run waits and writes nothing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(deployments(&env, SERVICE), 2, "still under way");
    assert_eq!(
        env.version_count(SHARED),
        versions,
        "nothing written while waiting"
    );
    assert_eq!(env.calls("UpdateService"), 1, "no deployment while waiting");
    settle(&env, SERVICE);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("finishes"))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let all = lines(&out);
    let waiting = all
        .iter()
        .position(|l| {
            l["type"] == "waiting"
                && l["service"] == SERVICE
                && l["deployment_id"] == theirs.as_str()
        })
        .unwrap_or_else(|| panic!("a waiting event\n{}", text(&out)));
    let written = all
        .iter()
        .position(|l| l["type"] == "secret_written")
        .unwrap_or_else(|| panic!("a write\n{}", text(&out)));
    assert!(waiting < written, "waited before writing");
    assert!(
        all[waiting]["ecs_since"]
            .as_str()
            .is_some_and(|s| s.starts_with("20") && s.ends_with('Z')),
        "ecs_since is RFC 3339: {}",
        all[waiting]
    );
    assert_eq!(env.version_count(SHARED), versions + 1, "one new version");
    assert_all_read_current(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_gives_up_at_the_timeout_before_writing() {
    let env = start(SPEED).await;
    let versions = env.version_count(SHARED);
    slow(&env, SERVICE);
    let theirs = deploy_by_someone_else(&env, SERVICE).await;
    let out = env
        .run(&replace_args(&["--wait", "--timeout", "10s"]), None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let error = lines(&out)
        .into_iter()
        .find(|l| l["type"] == "error")
        .expect("an error line");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("still deploying after waiting 10s"),
        "{message}"
    );
    assert!(message.contains(&theirs), "{message}");
    assert_eq!(env.version_count(SHARED), versions, "no new version");
    assert_eq!(env.calls("UpdateService"), 1, "no deployment started");
}

/// Two operators, each with local state only (different state directories, so no lock is
/// shared): the second `replace` of the same secret refuses before writing because the
/// first one's deployments are under way. Exactly one new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_tool_process_refuses_while_the_first_deploys() {
    let env = start(SPEED).await;
    let versions = env.version_count(SHARED);
    slow(&env, SERVICE);

    let first_state = env.dir.path().join("first-operator");
    std::fs::create_dir_all(&first_state).unwrap();
    let mut cmd = env.cli();
    cmd.env("SECRET_ROLLOUT_STATE_DIR", &first_state)
        .args(replace_args(&["--timeout", "5m"]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let first = cmd.spawn().expect("first binary starts");
    // Wait until the first has written and deployed all three readers (front, api,
    // admin), its deployment of the slow one still under way.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !(env.version_count(SHARED) == versions + 1
        && env.calls("UpdateService") == 3
        && deployments(&env, SERVICE) == 2)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never got going"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let updates = env.calls("UpdateService");

    // The second, with its own (default) state directory.
    let out = env.run(&replace_args(&[]), None).await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let error = lines(&out)
        .into_iter()
        .find(|l| l["type"] == "error")
        .expect("an error line");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "service {SERVICE} is in the middle of a deployment"
        )),
        "refused for the deployment, not a lock: {message}"
    );
    assert_eq!(
        env.version_count(SHARED),
        versions + 1,
        "exactly one new version"
    );
    assert_eq!(
        env.calls("UpdateService"),
        updates,
        "the second deployed nothing"
    );

    // The first finishes, verified, and its version is the one every task holds.
    settle(&env, SERVICE);
    let out = tokio::task::spawn_blocking(move || first.wait_with_output().expect("finishes"))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(
        env.version_count(SHARED),
        versions + 1,
        "still one new version"
    );
    assert_all_read_current(&env);
}
