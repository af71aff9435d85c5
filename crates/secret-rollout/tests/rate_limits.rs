//! Under AWS's rate limits (the sandbox's token buckets, on the wall clock), a rotation of
//! a world large enough to overflow a bucket at once ends verified, and the client's own
//! limiter keeps every call inside the buckets: the sandbox refuses none. Ground truth from
//! the sandbox: its throttling counts, its call log, every running task's version.

mod common;

use std::collections::BTreeSet;

use common::{start_with, text};
use sandbox::throttle::LimitsSpec;
use sandbox::Scenario;
use serde_json::Value;

/// 60 services: more UpdateService calls at once than AWS's bucket of 50 holds.
const SERVICES: usize = 60;
const CLUSTERS: usize = 3;
const SECRET: &str = "generated/shared";
const SPEED: f64 = 2000.0;

/// Every call the sandbox refused for a rate limit: its own count, and the call log's.
fn throttled(env: &common::TestEnv) -> (u64, usize) {
    let world = env.sandbox.world();
    let mut w = world.lock().unwrap();
    let counted = w.throttle.report()["throttled_total"].as_u64().unwrap();
    let logged = w.snapshot()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["error"] == "ThrottlingException")
        .count();
    (counted, logged)
}

/// Rotates [`SECRET`] on every cluster of a fresh generated world under AWS's limits
/// (`extra`: more options), asserts it ended verified with every running task on the new
/// current version (sandbox ground truth), and returns the environment.
async fn rotate_verified(extra: &[&str]) -> common::TestEnv {
    let mut scenario = Scenario::generated(SERVICES, 1, CLUSTERS);
    scenario.limits = Some(LimitsSpec::aws());
    let env = start_with(scenario, SPEED).await;
    let mut args = vec!["replace", SECRET, "--generate", "--yes", "--output", "json"];
    let clusters: Vec<String> = (0..CLUSTERS).map(|c| format!("cluster-{c}")).collect();
    for c in &clusters {
        args.extend(["--cluster", c.as_str()]);
    }
    // The tool's own short poll: the limiter, not the poll interval, sets the pace.
    args.extend(["--max-poll", "50ms"]);
    args.extend(extra);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    assert_eq!(report["outcome"], "verified", "{}", text(&out));

    let current = env.current_version(SECRET);
    let state = env.state();
    let tasks = state["ecs"]["tasks"].as_array().unwrap();
    for i in 0..SERVICES {
        let group = format!("service:svc-{i}");
        let read: BTreeSet<&str> = tasks
            .iter()
            .filter(|t| t["group"] == group.as_str() && t["desiredStatus"] == "RUNNING")
            .flat_map(|t| t["secrets"].as_array().unwrap().iter())
            .filter(|s| s["name"] == SECRET)
            .filter_map(|s| s["version_id"].as_str())
            .collect();
        assert_eq!(read, BTreeSet::from([current.as_str()]), "svc-{i}");
    }
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_under_aws_limits_is_verified_without_one_throttled_call() {
    let env = rotate_verified(&[]).await;
    // One UpdateService per service, all wanted at once: without the limiter, more than
    // the bucket's 50 in the same instant (see the next test).
    assert_eq!(env.calls("UpdateService"), SERVICES);
    assert_eq!(throttled(&env), (0, 0), "the sandbox refused calls");
}

/// Without the client's limiter the sandbox throttles, and the rotation still ends
/// verified: throttling slows a good rotation, it never fails it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_never_turns_a_good_rotation_into_a_failed_one() {
    let env = rotate_verified(&["--aws-rate", "off"]).await;
    let (counted, logged) = throttled(&env);
    assert!(counted > 0, "the burst was throttled");
    assert_eq!(counted as usize, logged);
    // Every refused UpdateService was tried again: one accepted per service.
    let accepted = env
        .calls_of("UpdateService")
        .iter()
        .filter(|c| c["error"].is_null())
        .count();
    assert_eq!(accepted, SERVICES);
}

/// The second `plan` of an environment reads every task definition revision from the
/// state directory's cache: no DescribeTaskDefinition at all, and the same plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_plan_describes_no_task_definition() {
    let mut scenario = Scenario::generated(SERVICES, 1, CLUSTERS);
    scenario.limits = Some(LimitsSpec::aws());
    let env = start_with(scenario, SPEED).await;
    let mut args = vec!["plan", SECRET, "--output", "json"];
    let clusters: Vec<String> = (0..CLUSTERS).map(|c| format!("cluster-{c}")).collect();
    for c in &clusters {
        args.extend(["--cluster", c.as_str()]);
    }
    let plan = |out: &std::process::Output| -> Value {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        serde_json::from_slice(&out.stdout).expect("plan JSON")
    };
    let first = plan(&env.run(&args, None).await);
    assert_eq!(first["redeploy"].as_array().map(Vec::len), Some(SERVICES));
    // One per service's revision (each service runs its own family).
    assert_eq!(env.calls("DescribeTaskDefinition"), SERVICES);
    let cache = env
        .state_dir()
        .join(secret_rollout_core::state::task_defs::FILE);
    assert!(cache.is_file(), "the cache is in the state directory");

    env.sandbox.world().lock().unwrap().clear_calls();
    let second = plan(&env.run(&args, None).await);
    assert_eq!(env.calls("DescribeTaskDefinition"), 0);
    assert_eq!(second["redeploy"], first["redeploy"]);
    assert_eq!(throttled(&env), (0, 0));
}
