//! The fault matrix: every fault kind on every operation `replace` calls, at the first, a
//! middle and the last call of that operation in a clean run. Each case runs the CLI's
//! `replace` in-process (sign-in, GetCallerIdentity, then the core's `rotation::replace`:
//! plan, write, redeploy, follow, verify) against its own sandbox, and must end either verified or as
//! a clean failure with the previous version restored; never with two new versions, and
//! never with a service redeployed twice in one phase (ground truth: the sandbox's call
//! log, where a successful UpdateService is exactly one deployment).
//!
//! Two matrices: a good value (every case must verify) and a value the apps reject (every
//! case must end restored, so the faults also land on the restore: the stage move back,
//! the second round of UpdateService, following and verifying the restore).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultKind, FaultRule};
use secret_rollout_core::clients::Clients;
use secret_rollout_core::config::Target;
use secret_rollout_core::credentials::{self, AwsOptions, EnvVars, MfaCodeSource};
use secret_rollout_core::error::Result;
use secret_rollout_core::journal::Outcome;
use secret_rollout_core::progress::{Event, Reporter, Silent};
use secret_rollout_core::rotation::{
    self, Caller, Context, OnFailure, ReplaceRequest, Report, Settings, Unattended,
};
use secret_rollout_core::value::SecretValue;
use serde_json::Value;
use uuid::Uuid;

use common::{start, TestEnv, CLUSTER, SHARED};

/// The CLI's `replace` in-process: sign-in, GetCallerIdentity, then the same core use case
/// (plan, merge and check the value, write, redeploy, follow, verify, restore), confirmed
/// as with `--yes`.
async fn replace_in_process(env: &TestEnv, new_value: &str) -> Result<Report> {
    replace_reporting(env, new_value, &Silent).await
}

/// [`replace_in_process`], with progress sent to `reporter`.
async fn replace_reporting(
    env: &TestEnv,
    new_value: &str,
    reporter: &dyn Reporter,
) -> Result<Report> {
    let opts = AwsOptions {
        region: Some("eu-west-1".into()),
        profile: None,
        endpoint_url: Some(env.sandbox.endpoint()),
        mfa_code: MfaCodeSource::Prompt,
        expected_account: None,
        max_attempts: None,
        ..AwsOptions::default()
    };
    let vars = EnvVars::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIDTEST"),
        ("AWS_SECRET_ACCESS_KEY", "secret"),
        ("AWS_REGION", "eu-west-1"),
    ]);
    let ctx = credentials::load_with_env(&opts, &vars).await?;
    let who = credentials::caller(&ctx).await?;
    let clients = Clients::new(&ctx.sdk_config);
    let target = Target {
        environment: None,
        region: "eu-west-1".into(),
        profile: None,
        account_id: None,
        clusters: vec![CLUSTER.into()],
        services: None,
        secret_prefix: None,
    };
    let settings = Settings {
        timeout: Duration::from_secs(60),
        max_poll: Duration::from_millis(50),
        on_failure: OnFailure::Rollback,
        state_dir: env.state_dir(),
        consistency_margin: Duration::from_millis(50),
        concurrent: Default::default(),
        state: Default::default(),
        max_task_failures: None,
        approve_hooks: false,
        until_traffic: false,
        reach: Default::default(),
        allow_image_change: false,
    };
    let caller = Caller {
        account: who.account,
        arn: who.arn,
    };
    let ctx = Context {
        clients: &clients,
        caller: &caller,
        settings: &settings,
        reporter,
        rotation_id: Uuid::new_v4(),
    };
    let request = ReplaceRequest {
        secrets: vec![SHARED.to_string()],
        values: vec![SecretValue::new(new_value.to_string())],
        json_key: None,
        only_services: Vec::new(),
        allow_rotation: false,
    };
    rotation::replace(&ctx, &target, request, &Unattended).await
}

/// Calls per operation in the call log.
fn counts(calls: &[Value]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for c in calls {
        *out.entry(c["operation"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    out
}

fn service_of(call: &Value) -> String {
    call["subject"]["service"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The checks every case must pass; returns a description of what is wrong, if anything.
fn judge(env: &TestEnv, before: &str, result: &Result<Report>) -> Option<String> {
    let state = env.state();
    let calls: Vec<Value> = state["calls"].as_array().cloned().unwrap_or_default();
    let versions = env.version_count(SHARED);
    let current = env.current_version(SHARED);
    // Phases in the call log: the restore starts at the first accepted stage move.
    let restore_at = calls
        .iter()
        .position(|c| c["operation"] == "UpdateSecretVersionStage" && c["error"].is_null());
    let mut per_phase: BTreeMap<(bool, String), u32> = BTreeMap::new();
    for (i, c) in calls.iter().enumerate() {
        if c["operation"] == "UpdateService" && c["error"].is_null() {
            let restore = restore_at.is_some_and(|r| i > r);
            *per_phase.entry((restore, service_of(c))).or_default() += 1;
        }
    }
    if let Some(((restore, svc), n)) = per_phase.iter().find(|(_, n)| **n > 1) {
        return Some(format!(
            "{svc} redeployed {n} times in the {} phase",
            if *restore { "restore" } else { "rollout" }
        ));
    }
    if versions > 2 {
        return Some(format!(
            "{versions} versions: a second new version was made"
        ));
    }
    match result {
        Ok(r) if r.outcome == Outcome::Verified => {
            if versions != 2 || current == before {
                return Some("verified but the new version is not current".into());
            }
            for svc in ["front", "api", "admin"] {
                if env.versions_read(svc, SHARED) != [current.clone()].into() {
                    return Some(format!("verified but {svc} runs an old value"));
                }
            }
            None
        }
        Ok(r) if r.outcome == Outcome::FailedRestored => {
            if current != before {
                return Some("reported restored but the previous version is not current".into());
            }
            for svc in ["front", "api", "admin"] {
                if env.versions_read(svc, SHARED) != [before.to_string()].into() {
                    return Some(format!(
                        "restored but {svc} does not run the previous value"
                    ));
                }
            }
            None
        }
        // A failure before the write must leave nothing behind.
        Ok(r) if r.outcome == Outcome::Aborted => (versions != 1 || current != before)
            .then(|| "aborted but a version was written".to_string()),
        Err(_) => {
            let moved = calls.iter().any(|c| {
                c["error"].is_null()
                    && matches!(
                        c["operation"].as_str(),
                        Some("PutSecretValue" | "UpdateSecretVersionStage" | "UpdateService")
                    )
            });
            moved.then(|| "failed with an error after writing something".to_string())
        }
        Ok(r) => Some(format!("ended {:?}: {:?}", r.outcome, r.message)),
    }
}

/// Tasks that read this value fail to start: "the database does not accept it yet".
const REJECTED: &str = "a-value-the-apps-reject";

/// A sandbox for one case: with `rejecting`, new tasks fail on [`REJECTED`].
async fn case_env(rejecting: bool) -> TestEnv {
    let env = start(2000.0).await;
    if rejecting {
        env.sandbox
            .world()
            .lock()
            .expect("world")
            .set_health_rules(vec![HealthRule {
                cluster: None,
                service: None,
                secret: Some(SHARED.into()),
                value: Some(REJECTED.into()),
                version_id: None,
                probability: None,
                effect: HealthEffect::AppRejectsValue,
            }]);
    }
    env
}

/// Runs the matrix over the operations of a clean run of the same kind (a good value
/// that verifies, or a rejected one that is restored) and checks every case ends as that
/// clean run did.
async fn matrix(rejecting: bool) {
    let (value, expected) = if rejecting {
        (REJECTED, Outcome::FailedRestored)
    } else {
        ("a-brand-new-value-for-the-matrix", Outcome::Verified)
    };
    // A clean run: which operations replace calls, and how often.
    let clean = case_env(rejecting).await;
    let before = clean.current_version(SHARED);
    let r = replace_in_process(&clean, value).await;
    assert_eq!(judge(&clean, &before, &r), None);
    assert_eq!(r.as_ref().map(|r| r.outcome).ok(), Some(expected));
    let clean_calls: Vec<Value> = clean.state()["calls"].as_array().cloned().unwrap();
    let per_op = counts(&clean_calls);
    for op in [
        "DescribeSecret",
        "ListSecretVersionIds",
        "GetSecretValue",
        "PutSecretValue",
        "ListServices",
        "DescribeServices",
        "DescribeTaskDefinition",
        "UpdateService",
        "ListTasks",
        "DescribeTasks",
        "GetCallerIdentity",
    ]
    .into_iter()
    .chain(rejecting.then_some("UpdateSecretVersionStage"))
    {
        assert!(
            per_op.contains_key(op),
            "a clean replace calls {op}: {per_op:?}"
        );
    }
    drop(clean);

    let service_of_op = |op: &str| -> &'static str {
        match op {
            "GetCallerIdentity" => "sts",
            "DescribeSecret"
            | "ListSecretVersionIds"
            | "GetSecretValue"
            | "PutSecretValue"
            | "UpdateSecretVersionStage" => "secretsmanager",
            "BatchGetImage" => "ecr",
            _ => "ecs",
        }
    };
    let mut cases = Vec::new();
    for (op, &n) in &per_op {
        let mut at: Vec<u64> = vec![1, n.div_ceil(2), n];
        at.dedup();
        for nth in at {
            for kind in [
                FaultKind::Throttling,
                FaultKind::Internal,
                FaultKind::Unavailable,
                FaultKind::Latency,
                FaultKind::Drop,
            ] {
                cases.push(FaultRule {
                    service: Some(service_of_op(op).to_string()),
                    operation: Some(op.clone()),
                    resource: None,
                    kind,
                    probability: None,
                    nth: Some(vec![nth]),
                    count: None,
                    latency_ms: Some(700),
                });
            }
        }
    }
    // No count of cases is asserted: it follows from the clean run's call counts, polls
    // included, whose number depends on real time. What must hold is that every operation
    // the clean run calls is in the matrix, each at its first and last call.
    for (op, &n) in &per_op {
        for nth in [1, n] {
            assert_eq!(
                cases
                    .iter()
                    .filter(|c| c.operation.as_deref() == Some(op.as_str())
                        && c.nth.as_deref() == Some(&[nth][..]))
                    .count(),
                5,
                "{op} call {nth}: one case per fault kind"
            );
        }
    }

    // Each case its own sandbox. Cases mostly wait (retry backoff, latency, the simulated
    // rollout), so many run at once; the CPU per case is small (~0.2 s in a debug build).
    let gate = Arc::new(tokio::sync::Semaphore::new(24));
    let mut handles = Vec::new();
    for rule in cases {
        let gate = gate.clone();
        handles.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore");
            let env = case_env(rejecting).await;
            let before = env.current_version(SHARED);
            env.sandbox
                .world()
                .lock()
                .expect("world")
                .set_faults(vec![rule.clone()])
                .expect("valid rule");
            let r = replace_in_process(&env, value).await;
            let op = rule.operation.as_deref().unwrap_or_default();
            let state = env.state();
            let of_op: Vec<&Value> = state["calls"]
                .as_array()
                .map(|c| c.iter().filter(|x| x["operation"] == op).collect())
                .unwrap_or_default();
            let fired = of_op.iter().any(|x| !x["error"].is_null());
            // How many calls of the operation this run made: a fault on a call that never
            // came cannot land.
            let seen = of_op.len() as u64;
            // A single transient fault never changes how the run ends.
            let verdict = judge(&env, &before, &r).or_else(|| match &r {
                Ok(rep) if rep.outcome == expected => None,
                Ok(rep) => Some(format!(
                    "ended {:?}, a clean run ends {expected:?}",
                    rep.outcome
                )),
                Err(e) => Some(format!("failed: {}", e.message)),
            });
            let outcome = match &r {
                Ok(rep) => format!("{:?}", rep.outcome),
                Err(e) => format!("error: {}", e.message),
            };
            (rule, verdict, outcome, fired, seen)
        }));
    }
    let mut failures = Vec::new();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    let mut errors_injected = 0;
    let mut unfired = Vec::new();
    for h in handles {
        let (rule, verdict, outcome, fired, seen) = h.await.expect("case runs");
        errors_injected += usize::from(fired);
        if !fired && rule.kind != FaultKind::Latency {
            unfired.push((rule.clone(), seen));
        }
        *outcomes
            .entry(outcome.split(':').next().unwrap_or_default().to_string())
            .or_default() += 1;
        if let Some(v) = verdict {
            failures.push(format!(
                "{:?} on {} call {:?}: {v} ({outcome})",
                rule.kind,
                rule.operation.unwrap_or_default(),
                rule.nth.unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every error and drop lands: a transient fault adds calls (retries), it never takes
    // one away. Except the late calls of a polled operation: how many polls a run makes
    // depends on real time (a retry's backoff lets the deployments settle in fewer), so
    // those calls may never come. The follow polls DescribeServices; following a failing
    // deployment it also reads its tasks (ListTasks, DescribeTasks). The watch reads the
    // secret at every poll (DescribeSecret), and the service deployments it learnt at an
    // earlier poll (DescribeServiceDeployments).
    let polled: &[&str] = if rejecting {
        &[
            "DescribeServices",
            "DescribeServiceDeployments",
            "DescribeSecret",
            "ListTasks",
            "DescribeTasks",
        ]
    } else {
        &[
            "DescribeServices",
            "DescribeServiceDeployments",
            "DescribeSecret",
        ]
    };
    // A polled operation's call may also never come at all when the run ends sooner (a
    // failing rollout can fail at its first poll, before the service deployments are read);
    // what must never happen is a call that came and was not faulted.
    let unexpected: Vec<String> = unfired
        .iter()
        .filter(|(r, seen)| {
            let op = r.operation.as_deref().unwrap_or_default();
            let nth = r
                .nth
                .as_deref()
                .and_then(|n| n.first())
                .copied()
                .unwrap_or(1);
            !polled.contains(&op) || *seen >= nth
        })
        .map(|(r, seen)| {
            format!(
                "{:?} on {:?} call {:?} ({seen} such calls made)",
                r.kind, r.operation, r.nth
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "faults that never landed: {unexpected:#?}"
    );
    eprintln!(
        "calls: {per_op:?}\noutcomes: {outcomes:?}, {errors_injected} hit, {} last polls not reached",
        unfired.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_on_every_call_ends_verified() {
    matrix(false).await;
}

/// The restore path under faults: the new value is rejected by the apps, and each fault
/// lands on the rollout or the restore (UpdateSecretVersionStage included).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_fault_on_every_call_of_a_failing_rollout_ends_restored() {
    matrix(true).await;
}

fn rule(service: &str, op: &str, kind: FaultKind, nth: std::ops::RangeInclusive<u64>) -> FaultRule {
    FaultRule {
        service: Some(service.to_string()),
        operation: Some(op.to_string()),
        resource: None,
        kind,
        probability: None,
        nth: Some(nth.collect()),
        count: None,
        latency_ms: None,
    }
}

/// Faults that outlast the retries: the run must still end verified, restored, or stopped
/// before any write, and the restore path (UpdateSecretVersionStage) is reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn persistent_faults_end_restored_or_stopped_cleanly() {
    use FaultKind::*;
    let cases: Vec<(Vec<FaultRule>, &[Outcome], bool)> = vec![
        // Every UpdateService attempt of the rollout fails (3 services x 4 attempts):
        // nothing was redeployed, the previous version is restored and rolled out.
        (
            vec![rule("ecs", "UpdateService", Internal, 1..=12)],
            &[Outcome::FailedRestored],
            true,
        ),
        (
            vec![rule("ecs", "UpdateService", Drop, 1..=12)],
            &[Outcome::FailedRestored],
            true,
        ),
        (
            vec![rule("ecs", "UpdateService", Throttling, 1..=12)],
            &[Outcome::FailedRestored],
            true,
        ),
        // ... and the restore's stage move meets a transient error the SDK retries.
        (
            vec![
                rule("ecs", "UpdateService", Unavailable, 1..=12),
                rule(
                    "secretsmanager",
                    "UpdateSecretVersionStage",
                    Unavailable,
                    1..=1,
                ),
            ],
            &[Outcome::FailedRestored],
            true,
        ),
        (
            vec![
                rule("ecs", "UpdateService", Unavailable, 1..=12),
                rule("secretsmanager", "UpdateSecretVersionStage", Drop, 1..=2),
            ],
            &[Outcome::FailedRestored],
            true,
        ),
        // Verification cannot list tasks (every attempt of the rollout's checks fails; the
        // plan's image check lists each of the three services once before).
        (
            vec![rule("ecs", "ListTasks", Internal, 4..=18)],
            &[Outcome::FailedRestored],
            true,
        ),
        // Following rides out a long DescribeServices outage.
        (
            vec![rule("ecs", "DescribeServices", Unavailable, 2..=25)],
            &[Outcome::Verified],
            false,
        ),
        // The write never gets through: nothing is written.
        (
            vec![rule("secretsmanager", "PutSecretValue", Internal, 1..=5)],
            &[],
            false,
        ),
        (
            vec![rule("secretsmanager", "PutSecretValue", Drop, 1..=5)],
            &[],
            false,
        ),
        // No identity: stopped before anything.
        (
            vec![rule("sts", "GetCallerIdentity", Unavailable, 1..=5)],
            &[],
            false,
        ),
    ];
    let mut handles = Vec::new();
    for (rules, expected, restores) in cases {
        handles.push(tokio::spawn(async move {
            let env = start(2000.0).await;
            let before = env.current_version(SHARED);
            env.sandbox
                .world()
                .lock()
                .expect("world")
                .set_faults(rules.clone())
                .expect("valid rules");
            let r = replace_in_process(&env, "a-brand-new-value-for-the-matrix").await;
            let verdict = judge(&env, &before, &r);
            let outcome = r.as_ref().ok().map(|r| r.outcome);
            let stage_moves = env
                .calls_of("UpdateSecretVersionStage")
                .iter()
                .filter(|c| c["error"].is_null())
                .count();
            (
                rules,
                expected,
                restores,
                verdict,
                outcome,
                stage_moves,
                r.err(),
            )
        }));
    }
    let mut failures = Vec::new();
    for h in handles {
        let (rules, expected, restores, verdict, outcome, moves, err) = h.await.expect("case");
        let what = format!(
            "{:?}",
            rules
                .iter()
                .map(|r| format!(
                    "{:?} {}",
                    r.kind,
                    r.operation.as_deref().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
        );
        if let Some(v) = verdict {
            failures.push(format!("{what}: {v}"));
        }
        match (expected.is_empty(), outcome) {
            // Stopped before any write: an error, or a report saying aborted.
            (true, None) | (true, Some(Outcome::Aborted)) => {}
            (false, Some(o)) if expected.contains(&o) => {}
            _ => failures.push(format!(
                "{what}: ended {outcome:?} {err:?}, wanted {expected:?}"
            )),
        }
        if restores != (moves == 1) {
            failures.push(format!("{what}: {moves} stage moves"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Keeps every event.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<Event>>);

impl Reporter for Recorder {
    fn report_at(&self, _: time::OffsetDateTime, event: &Event) {
        self.0.lock().expect("events").push(event.clone());
    }
}

/// ECS cannot describe the services just before the redeploy (every attempt of that one
/// DescribeServices call fails; the plan's own call is the first): the run says so with a
/// warning naming the services, deploys each once all the same, and still proves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_not_described_before_the_redeploy_are_deployed_once_with_a_warning() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let attempts = u64::from(secret_rollout_core::aws::DEFAULT_MAX_ATTEMPTS);
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .set_faults(vec![rule(
            "ecs",
            "DescribeServices",
            FaultKind::Unavailable,
            2..=1 + attempts,
        )])
        .expect("valid rule");
    let events = Recorder::default();
    let r = replace_reporting(&env, "a-brand-new-value-for-the-matrix", &events).await;
    assert_eq!(judge(&env, &before, &r), None);
    assert_eq!(r.as_ref().map(|r| r.outcome).ok(), Some(Outcome::Verified));
    let events = events.0.into_inner().expect("events");
    let warnings: Vec<&String> = events
        .iter()
        .filter_map(|e| match e {
            Event::Warning { text } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for svc in ["front", "api", "admin"] {
        assert!(warnings[0].contains(svc), "{}", warnings[0]);
    }
    assert!(warnings[0].contains("deployed twice"), "{}", warnings[0]);
}

/// Verification of the rollout cannot list the tasks (every attempt of each service's
/// ListTasks fails): that is a verification error of its own, not a retry, nothing is
/// proven, the report says why, and the previous version is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verification_that_cannot_list_tasks_is_reported_as_such_and_restored() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let attempts = u64::from(secret_rollout_core::aws::DEFAULT_MAX_ATTEMPTS);
    // Three services, each one ListTasks call with its retries, after the plan's image
    // check (issue 18) listed each once.
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .set_faults(vec![rule(
            "ecs",
            "ListTasks",
            FaultKind::Internal,
            4..=3 + 3 * attempts,
        )])
        .expect("valid rule");
    let events = Recorder::default();
    let r = replace_reporting(&env, "a-brand-new-value-for-the-matrix", &events).await;
    assert_eq!(judge(&env, &before, &r), None);
    let report = r.expect("a report");
    assert_eq!(report.outcome, Outcome::FailedRestored);
    let rollout = report.rollout.as_ref().expect("a rollout phase");
    assert!(rollout.verify_error.is_some(), "{rollout:?}");
    assert!(
        report
            .message
            .as_deref()
            .is_some_and(|m| m.contains("verification could not finish")),
        "{:?}",
        report.message
    );
    let events = events.0.into_inner().expect("events");
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::VerifyError {
                phase: secret_rollout_core::progress::Phase::Rollout,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Retrying { what, .. } if what.contains("verif"))),
        "{events:?}"
    );
}
