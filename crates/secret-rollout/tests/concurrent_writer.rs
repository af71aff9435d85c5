//! Another writer at each moment of a rotation (issue 10): before the write, after the
//! write and before the redeploys, mid-rollout, during verification, during the restore,
//! and between a `kill -9` and `resume`; with a new version (PutSecretValue) and with a
//! staging label move (UpdateSecretVersionStage).
//!
//! Every case checks the tool's report against the sandbox's ground truth (the version
//! each running task resolved): never "verified" (exit 0) unless every running task holds
//! our version; never a restore over the other change (AWSCURRENT is the other writer's
//! version at the end, and the tool moved no label after it); the outcome and exit code
//! documented (11 superseded, 6 not proven, 4 refused before the write); and `status`
//! truthful afterwards. The sandbox's gate holds the tool at the moment while the test
//! writes: the moment is named by what the journal shows (started, written, three
//! redeploys, the restore) and the call the tool waits in, never by the n-th call of an
//! operation (see `tests/common/gate.rs`).

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultRule, Release, Which};
use serde_json::Value;

use common::{start, text, TestEnv, CLUSTER, SHARED};

const READERS: [&str; 3] = ["front", "api", "admin"];

fn replace_args(extra: &[&'static str]) -> Vec<&'static str> {
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
        "--value-stdin",
    ];
    v.extend_from_slice(extra);
    v
}

/// Gates `op` and lets the tool's calls of it through one by one until the journal shows
/// `kind` `n` times while one of them waits: the tool has then journalled that and waits
/// in its next call of `op`. Returns the calls held then.
async fn hold_after(
    env: &TestEnv,
    child: &mut Child,
    service: &str,
    op: &str,
    kind: &str,
    n: usize,
) -> Vec<sandbox::faults::HeldCall> {
    env.gate(vec![FaultRule::gate(service, op)]);
    let what = format!("{op} waiting after {n} {kind} record(s)");
    let held = env
        .advance_until(child, &what, |env, _| count(env, kind) >= n)
        .await;
    assert_eq!(count(env, kind), n, "{what}: {:?}", records(env));
    assert!(
        held.iter().all(|c| c.operation == op),
        "only {op} is gated: {held:?}"
    );
    held
}

fn spawn(env: &TestEnv, args: &[&str], stdin: &[u8], tag: &str) -> Child {
    let mut cmd = env.cli();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(env.dir.path().join(format!("{tag}.out"))).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join(format!("{tag}.err"))).unwrap());
    let mut child = cmd.spawn().expect("binary starts");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin written");
    child
}

/// Waits for the child and returns its exit code, its JSON report and its stderr.
async fn finish(env: &TestEnv, mut child: Child, tag: &str) -> (Option<i32>, Value, String) {
    let status = tokio::task::spawn_blocking(move || child.wait().expect("reaped"))
        .await
        .expect("join");
    let read = |ext: &str| {
        let p = env.dir.path().join(format!("{tag}.{ext}"));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let (out, err) = (read("out"), read("err"));
    // A refusal before any write prints no report, only the error on stderr.
    let report = if out.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("json report ({e}): exit {status:?}\n{out}\n{err}"))
    };
    (status.code(), report, err)
}

/// Every journal record so far, across rotations (a line still being written is skipped).
/// None before the first rotation made the directory: callers wait on it or compare exact
/// counts of records that must be there, so an absent directory fails them.
fn records(env: &TestEnv) -> Vec<Value> {
    let dir = env.state_dir().join("rotations");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn count(env: &TestEnv, kind: &str) -> usize {
    records(env).iter().filter(|r| r["type"] == kind).count()
}

/// The other writer: a new version (PutSecretValue), returning its id.
async fn put_other(env: &TestEnv) -> String {
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("written-by-a-colleague")
        .send()
        .await
        .expect("the other writer's put")
        .version_id()
        .expect("version id")
        .to_string()
}

/// The other writer: moves AWSCURRENT to `to` (a staging label move).
async fn move_current(env: &TestEnv, to: &str) {
    let from = env.current_version(SHARED);
    env.clients
        .sm
        .update_secret_version_stage()
        .secret_id(SHARED)
        .version_stage("AWSCURRENT")
        .move_to_version_id(to)
        .remove_from_version_id(from)
        .send()
        .await
        .expect("the other writer's stage move");
}

/// Successful UpdateSecretVersionStage calls, the tool's and the test's.
fn stage_moves(env: &TestEnv) -> usize {
    env.calls_of("UpdateSecretVersionStage")
        .iter()
        .filter(|c| c["error"].is_null())
        .count()
}

/// Ground truth: the version each running task of the readers resolved.
fn held(env: &TestEnv) -> Vec<String> {
    READERS
        .iter()
        .flat_map(|svc| {
            env.running_tasks(svc)
                .iter()
                .flat_map(|t| t["secrets"].as_array().cloned().unwrap_or_default())
                .filter(|s| s["name"] == SHARED)
                .filter_map(|s| s["version_id"].as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The checks every case shares: exit 0 and "verified" only when every running task
/// holds the version written, and `status` afterwards calls exactly the tasks that hold
/// another version than AWSCURRENT stale (the clock is stopped first, so nothing moves
/// between the two reads).
async fn check_truth(env: &TestEnv, code: Option<i32>, report: &Value) {
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    let current = env.current_version(SHARED);
    if code == Some(0) || report["outcome"] == "verified" {
        let ours = report["secrets"][0]["new_version"]
            .as_str()
            .unwrap_or("none");
        assert!(
            held(env).iter().all(|v| v == ours),
            "verified, yet running tasks hold {:?}, not {ours}: {report}",
            held(env)
        );
    }
    let out = env
        .run(
            &["status", "--cluster", CLUSTER, "--output", "json", SHARED],
            None,
        )
        .await;
    let doc: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let reported: BTreeSet<String> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["secrets"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["stale_tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    let truth: BTreeSet<String> = READERS
        .iter()
        .flat_map(|svc| env.running_tasks(svc))
        .filter(|t| {
            t["secrets"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|x| x["name"] == SHARED && x["version_id"] != current.as_str())
            })
        })
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let unproven: BTreeSet<String> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["secrets"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["unproven_tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    // Truthful: every task called stale is stale, every task called fresh (neither stale
    // nor "cannot be told") holds the current version.
    assert!(
        reported.is_subset(&truth),
        "a fresh task called stale: {doc}"
    );
    assert!(
        truth
            .iter()
            .all(|t| reported.contains(t) || unproven.contains(t)),
        "a stale task called fresh: truth {truth:?}: {doc}"
    );
    assert_eq!(
        out.status.code(),
        Some(i32::from(!reported.is_empty())),
        "{}",
        text(&out)
    );
}

/// The report's superseded secret: names the other version and what tasks hold.
fn assert_superseded(report: &Value, other: &str, phase: &str) {
    assert_eq!(report["outcome"], "superseded", "{report}");
    let message = report["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(other),
        "the report names {other}: {message}"
    );
    assert!(message.contains("nothing was restored"), "{message}");
    let s = &report[phase]["secrets"][0];
    assert_eq!(s["holding"]["holding"], "superseded", "{report}");
    assert_eq!(s["holding"]["by"], other, "{report}");
    assert!(
        s["other_created"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "created date of {other}: {report}"
    );
    assert!(
        report["manual_restore"].as_array().unwrap().is_empty(),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_before_the_write_refuses_the_write() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    // The rotation is journalled as started and waits in the write's check of the
    // versions (ListSecretVersionIds, right before PutSecretValue): nothing is written.
    let mut child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    hold_after(
        &env,
        &mut child,
        "secretsmanager",
        "ListSecretVersionIds",
        "started",
        1,
    )
    .await;
    assert_eq!(env.calls("PutSecretValue"), 0, "held before the write");
    let other = put_other(&env).await;
    env.open_gate();
    let (code, report, err) = finish(&env, child, "run").await;
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("someone else changed the secret"), "{err}");
    // No report: refused before the write (with `--output json` the error may come as
    // a JSON document on stdout).
    assert!(
        report.is_null() || report["outcome"] == "refused",
        "refused before the write: {report}"
    );
    assert_eq!(
        env.version_count(SHARED),
        2,
        "only the other writer's version"
    );
    assert_eq!(env.current_version(SHARED), other);
    assert_ne!(other, before);
    assert_eq!(env.calls("UpdateService"), 0);
    check_truth(&env, code, &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_after_the_write_before_the_redeploys_is_superseded_with_nothing_deployed() {
    let env = start(2000.0).await;
    // Journalled as written, it waits in its read of the written version's date
    // (ListSecretVersionIds), before the watch's first look and any redeploy.
    let mut child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    hold_after(
        &env,
        &mut child,
        "secretsmanager",
        "ListSecretVersionIds",
        "written",
        1,
    )
    .await;
    assert_eq!(env.calls("UpdateService"), 0, "held before any redeploy");
    let other = put_other(&env).await;
    env.open_gate();
    let (code, report, err) = finish(&env, child, "run").await;
    assert_eq!(code, Some(11), "{err}\n{report}");
    assert_superseded(&report, &other, "rollout");
    assert_eq!(
        env.calls("UpdateService"),
        0,
        "nothing redeployed for a superseded version"
    );
    assert_eq!(
        stage_moves(&env),
        0,
        "nothing restored over the other version"
    );
    assert_eq!(env.current_version(SHARED), other);
    check_truth(&env, code, &report).await;
}

/// Mid-rollout: once every service is redeployed (three `redeployed` records), the
/// follow's first poll (DescribeServices) is held while the other writer acts.
async fn mid_rollout(label_move: bool) {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let mut child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    hold_after(
        &env,
        &mut child,
        "ecs",
        "DescribeServices",
        "redeployed",
        READERS.len(),
    )
    .await;
    let other = if label_move {
        // A colleague moves AWSCURRENT back to the previous version by hand.
        move_current(&env, &before).await;
        before.clone()
    } else {
        put_other(&env).await
    };
    env.open_gate();
    let (code, report, err) = finish(&env, child, "run").await;
    assert_eq!(code, Some(11), "{err}\n{report}");
    assert_superseded(&report, &other, "rollout");
    assert!(report["restore"].is_null(), "no restore phase: {report}");
    assert_eq!(
        stage_moves(&env),
        usize::from(label_move),
        "the tool moved no label"
    );
    assert_eq!(env.current_version(SHARED), other);
    check_truth(&env, code, &report).await;
    let history = env.run(&["history", "--output", "json"], None).await;
    assert!(
        String::from_utf8_lossy(&history.stdout).contains("superseded"),
        "history shows the outcome: {}",
        text(&history)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_mid_rollout_is_superseded_never_verified_never_restored() {
    mid_rollout(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_move_mid_rollout_is_superseded_never_verified_never_restored() {
    mid_rollout(true).await;
}

/// During verification: once every redeploy is journalled, verification's listing of
/// the tasks (ListTasks) is held while AWSCURRENT is moved away and back (or a new
/// version written): the tool cannot prove what tasks hold.
async fn during_verification(change: Change) {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let mut child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    hold_after(
        &env,
        &mut child,
        "ecs",
        "ListTasks",
        "redeployed",
        READERS.len(),
    )
    .await;
    let ours = env.current_version(SHARED);
    assert_ne!(
        ours, before,
        "our version is current when verification starts"
    );
    let (code, report, err) = if change != Change::NewVersion {
        if change == Change::AwayAndBack {
            move_current(&env, &before).await;
            move_current(&env, &ours).await;
        } else {
            env.clients
                .sm
                .tag_resource()
                .secret_id(SHARED)
                .tags(
                    aws_sdk_secretsmanager::types::Tag::builder()
                        .key("owner")
                        .value("a-colleague")
                        .build(),
                )
                .send()
                .await
                .expect("the other writer's tag edit");
        }
        env.open_gate();
        let (code, report, err) = finish(&env, child, "run").await;
        assert_eq!(code, Some(6), "{err}\n{report}");
        assert_eq!(report["outcome"], "verify_failed", "{report}");
        let message = report["message"].as_str().unwrap_or_default();
        assert!(message.contains("not proven"), "{message}");
        assert_eq!(report["rollout"]["secrets"][0]["changed"], true, "{report}");
        let moves = if change == Change::AwayAndBack { 2 } else { 0 };
        assert_eq!(stage_moves(&env), moves, "only the other writer's moves");
        assert_eq!(env.current_version(SHARED), ours);
        (code, report, err)
    } else {
        let other = put_other(&env).await;
        env.open_gate();
        let (code, report, err) = finish(&env, child, "run").await;
        assert_eq!(code, Some(11), "{err}\n{report}");
        assert_superseded(&report, &other, "rollout");
        assert_eq!(stage_moves(&env), 0);
        assert_eq!(env.current_version(SHARED), other);
        // Every task was launched before the other version existed: none holds it.
        let tasks = &report["rollout"]["secrets"][0]["tasks"];
        assert_eq!(tasks["other"], 0, "{report}");
        (code, report, err)
    };
    let _ = err;
    assert!(report["restore"].is_null(), "no restore phase: {report}");
    check_truth(&env, code, &report).await;
}

/// What the other writer does during verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Moves AWSCURRENT to the previous version and back to ours.
    AwayAndBack,
    /// Edits a tag: LastChangedDate moves ("modified in any way"), no label does.
    TagEdit,
    /// Writes a new version.
    NewVersion,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_moved_away_and_back_during_verification_is_not_proven() {
    during_verification(Change::AwayAndBack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_edit_during_verification_is_not_proven() {
    during_verification(Change::TagEdit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_during_verification_is_superseded() {
    during_verification(Change::NewVersion).await;
}

/// A value the apps reject: the rollout fails and the restore runs; the other writer
/// acts once the restore moved AWSCURRENT back, while the restore's redeploys are held.
async fn during_the_restore(label_move: bool) {
    let env = start(2000.0).await;
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: None,
            secret: Some(SHARED.into()),
            value: Some("a-value-the-apps-reject".into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
    // The rollout's redeploys go through; once the journal says restored (AWSCURRENT
    // moved back), the restore's redeploys (UpdateService) are held.
    let mut child = spawn(&env, &replace_args(&[]), b"a-value-the-apps-reject", "run");
    let held = hold_after(&env, &mut child, "ecs", "UpdateService", "restored", 1).await;
    assert_eq!(count(&env, "written"), 1);
    assert_eq!(
        count(&env, "redeployed"),
        READERS.len(),
        "only the rollout's redeploys went through: {held:?}"
    );
    // Ours is the version the rollout wrote, journalled as written.
    let ours = records(&env)
        .iter()
        .find(|r| r["type"] == "written")
        .and_then(|r| r["version_id"].as_str())
        .expect("the written version in the journal")
        .to_string();
    assert_ne!(
        env.current_version(SHARED),
        ours,
        "restored before the hold"
    );
    let other = if label_move {
        // A colleague puts our (rejected) version back, by hand.
        move_current(&env, &ours).await;
        ours.clone()
    } else {
        put_other(&env).await
    };
    env.open_gate();
    let (code, report, err) = finish(&env, child, "run").await;
    assert_eq!(code, Some(11), "{err}\n{report}");
    assert_superseded(&report, &other, "restore");
    assert_eq!(
        stage_moves(&env),
        1 + usize::from(label_move),
        "the tool's one restore, and nothing after the other writer's change"
    );
    assert_eq!(env.current_version(SHARED), other);
    check_truth(&env, code, &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_during_the_restore_is_superseded() {
    during_the_restore(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_move_during_the_restore_is_superseded() {
    during_the_restore(true).await;
}

/// `kill -9` after the write, another writer, then `resume`: superseded, nothing
/// redeployed, and a second `resume` refuses.
async fn between_kill_and_resume(label_move: bool) {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    // Journalled as written and held in its next secretsmanager read, before any
    // redeploy: the kill lands there, and the held call never reaches AWS.
    let mut child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    hold_after(
        &env,
        &mut child,
        "secretsmanager",
        "ListSecretVersionIds",
        "written",
        1,
    )
    .await;
    child.kill().expect("SIGKILL");
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    assert_eq!(env.calls("UpdateService"), 0, "killed before any redeploy");
    let other = if label_move {
        move_current(&env, &before).await;
        before.clone()
    } else {
        put_other(&env).await
    };
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    let report: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    assert_eq!(out.status.code(), Some(11), "{}", text(&out));
    assert_superseded(&report, &other, "rollout");
    assert_eq!(env.calls("UpdateService"), 0, "nothing redeployed");
    assert_eq!(stage_moves(&env), usize::from(label_move));
    assert_eq!(env.current_version(SHARED), other);
    // Superseded is final: resume does not go on blindly.
    let id = report["rotation_id"].as_str().unwrap();
    let again = env.run(&["resume", id, "--yes"], None).await;
    assert_eq!(again.status.code(), Some(4), "{}", text(&again));
    assert!(text(&again).contains("superseded"), "{}", text(&again));
    check_truth(&env, out.status.code(), &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_between_kill_9_and_resume_is_superseded() {
    between_kill_and_resume(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_move_between_kill_9_and_resume_is_superseded() {
    between_kill_and_resume(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_another_writer_replace_is_verified_and_every_task_holds_ours() {
    let env = start(2000.0).await;
    let child = spawn(&env, &replace_args(&[]), b"our-new-value", "run");
    let (code, report, err) = finish(&env, child, "run").await;
    assert_eq!(code, Some(0), "{err}\n{report}");
    assert_eq!(report["outcome"], "verified");
    let s = &report["rollout"]["secrets"][0];
    assert_eq!(s["holding"]["holding"], "holds", "{report}");
    assert_eq!(s["changed"], false);
    let ours = report["secrets"][0]["new_version"].as_str().unwrap();
    assert_eq!(
        held(&env).len(),
        s["tasks"]["ours"].as_u64().unwrap() as usize
    );
    assert!(held(&env).iter().all(|v| v == ours));
    check_truth(&env, code, &report).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_of_a_superseded_run_names_the_other_version_and_claims_nothing() {
    let env = start(2000.0).await;
    let args: Vec<&str> = replace_args(&[])
        .into_iter()
        .filter(|a| *a != "--output" && *a != "json")
        .collect();
    // Journalled as written, held before the watch's first look and any redeploy.
    let mut child = spawn(&env, &args, b"our-new-value", "text");
    hold_after(
        &env,
        &mut child,
        "secretsmanager",
        "ListSecretVersionIds",
        "written",
        1,
    )
    .await;
    let other = put_other(&env).await;
    env.open_gate();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().expect("reaped")
    })
    .await
    .unwrap();
    let out = std::fs::read_to_string(env.dir.path().join("text.out")).unwrap();
    assert_eq!(status.code(), Some(11), "{out}");
    assert!(out.contains("superseded"), "{out}");
    assert!(out.contains(&other), "names the other version: {out}");
    assert!(
        !out.contains("(AWSCURRENT)"),
        "never says ours is current: {out}"
    );
    assert!(!out.contains("proven new"), "claims no proof: {out}");
    assert!(!out.contains("update-secret-version-stage"), "{out}");
}
