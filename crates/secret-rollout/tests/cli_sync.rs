//! `sync`: values changed outside secret-rollout (a managed rotation, a write by hand) rolled
//! out to exactly the services whose tasks may hold an older one, proven against the
//! sandbox's ground truth; `status` agrees on what is stale.

mod common;

use std::collections::BTreeSet;

use common::{start, text, TestEnv, CLUSTER};
use serde_json::Value;

/// Read by front only.
const CSRF: &str = "production/opg_lpa_front_csrf_salt";
const LAMBDA: &str = "arn:aws:lambda:eu-west-1:123456789012:function:rotate";

fn advance(env: &TestEnv, seconds: f64) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .advance_clock(seconds)
        .unwrap();
}

fn speed(env: &TestEnv, speed: f64) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(speed)
        .unwrap();
}

/// Ids of the running tasks of every service, by service.
fn task_ids(env: &TestEnv, service: &str) -> BTreeSet<String> {
    env.running_tasks(service)
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// Ground truth: ids of running tasks that resolved `secret` to another version than its
/// AWSCURRENT.
fn stale_truth(env: &TestEnv, secret: &str) -> BTreeSet<String> {
    let current = env.current_version(secret);
    env.state()["ecs"]["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["desiredStatus"] == "RUNNING")
        .filter(|t| {
            t["secrets"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|x| x["name"] == secret && x["version_id"] != current.as_str())
            })
        })
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// UpdateService calls by service name.
fn updates(env: &TestEnv) -> Vec<String> {
    env.calls_of("UpdateService")
        .iter()
        .map(|c| {
            c["subject"]["service"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

async fn rotate(env: &TestEnv, secret: &str) -> String {
    env.clients
        .sm
        .rotate_secret()
        .secret_id(secret)
        .rotation_lambda_arn(LAMBDA)
        .send()
        .await
        .unwrap()
        .version_id()
        .unwrap()
        .to_string()
}

async fn sync(env: &TestEnv, extra: &[&str]) -> (Option<i32>, Value, String) {
    let mut args = vec![
        "sync",
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args, None).await;
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), doc, text(&out))
}

fn history(env: &TestEnv) -> Vec<Value> {
    let out = env
        .cli()
        .args(["history", "--cluster", CLUSTER, "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["rotations"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_managed_rotation_is_synced_to_exactly_its_stale_consumers_once() {
    let env = start(0.0).await;
    advance(&env, 10.0);
    let bystanders: Vec<(&str, BTreeSet<String>)> = ["api", "pdf", "admin"]
        .into_iter()
        .map(|s| (s, task_ids(&env, s)))
        .collect();
    let version = rotate(&env, CSRF).await;
    advance(&env, 10.0);
    assert_eq!(env.current_version(CSRF), version, "the rotation finished");
    let stale = stale_truth(&env, CSRF);
    assert_eq!(stale, task_ids(&env, "front"), "every front task is stale");
    assert_eq!(stale.len(), 3);
    env.sandbox.world().lock().unwrap().clear_calls();

    speed(&env, 2000.0);
    let (code, doc, out) = sync(&env, &[]).await;
    speed(&env, 0.0);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(doc["outcome"], "verified", "{doc}");
    assert_eq!(doc["kind"], "sync", "{doc}");
    assert_eq!(updates(&env), ["front"], "only front was redeployed");
    assert!(stale_truth(&env, CSRF).is_empty());
    assert_eq!(
        env.versions_read("front", CSRF),
        BTreeSet::from([version.clone()])
    );
    for (service, before) in &bystanders {
        assert_eq!(&task_ids(&env, service), before, "{service} untouched");
    }
    assert_eq!(env.calls("PutSecretValue"), 0);
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0);
    let rotations = history(&env);
    let syncs: Vec<&Value> = rotations.iter().filter(|r| r["kind"] == "sync").collect();
    assert_eq!(syncs.len(), 1, "{rotations:?}");
    assert_eq!(syncs[0]["outcome"], "verified");

    // Again: nothing to do, no deployment, no journal.
    env.sandbox.world().lock().unwrap().clear_calls();
    let (code, doc, out) = sync(&env, &[]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(doc["outcome"], "nothing_to_do", "{doc}");
    assert_eq!(env.calls("UpdateService"), 0);
    assert_eq!(history(&env).len(), rotations.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_while_the_rotation_was_pending_is_stale_and_synced() {
    let env = start(0.0).await;
    advance(&env, 10.0);
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .hold_rotations(&[CSRF.to_string()], true)
        .unwrap();
    let version = rotate(&env, CSRF).await;
    let old = env.current_version(CSRF);
    assert_ne!(old, version);
    advance(&env, 5.0);
    // front redeployed while the new version is only AWSPENDING: its tasks read the old.
    env.clients
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("front")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    advance(&env, 600.0);
    assert_eq!(
        env.versions_read("front", CSRF),
        BTreeSet::from([old.clone()])
    );
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .hold_rotations(&[CSRF.to_string()], false)
        .unwrap();
    advance(&env, 10.0);
    assert_eq!(env.current_version(CSRF), version);
    let truth = stale_truth(&env, CSRF);
    assert_eq!(truth, task_ids(&env, "front"));
    assert_eq!(truth.len(), 3);
    // Every one of them was created after the new version existed.
    let created = env.secret(CSRF)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == version.as_str())
        .unwrap()["created"]
        .as_f64()
        .unwrap();
    for t in env.running_tasks("front") {
        assert!(t["createdAt"].as_f64().unwrap() > created, "{t}");
    }

    let out = env
        .run(
            &["status", CSRF, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reported: BTreeSet<String> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["secrets"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["stale_tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(reported, truth, "{doc}");

    env.sandbox.world().lock().unwrap().clear_calls();
    speed(&env, 2000.0);
    let (code, doc, out) = sync(&env, &[CSRF]).await;
    speed(&env, 0.0);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(doc["outcome"], "verified", "{doc}");
    assert_eq!(updates(&env), ["front"]);
    assert!(stale_truth(&env, CSRF).is_empty());
    assert_eq!(env.versions_read("front", CSRF), BTreeSet::from([version]));
}

/// A rotation under way (held after its first step): sync leaves the secret for later,
/// says so, and deploys nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_under_way_waits() {
    let env = start(0.0).await;
    advance(&env, 10.0);
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .hold_rotations(&[CSRF.to_string()], true)
        .unwrap();
    rotate(&env, CSRF).await;
    advance(&env, 5.0);
    env.sandbox.world().lock().unwrap().clear_calls();
    let (code, doc, out) = sync(&env, &[CSRF]).await;
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(doc["outcome"], "nothing_to_do", "{doc}");
    let notes = doc["sync"]["notes"].to_string();
    assert!(notes.contains("being rotated"), "{doc}");
    assert_eq!(env.calls("UpdateService"), 0);
}

/// A sync killed (-9) while its redeploy waits: the journal names the rotation, `resume`
/// redeploys, follows and proves it, and history shows one sync, verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_sync_is_finished_by_resume() {
    use sandbox::faults::{FaultRule, Release, Which};
    use std::process::Stdio;
    let env = start(0.0).await;
    advance(&env, 10.0);
    let version = rotate(&env, CSRF).await;
    advance(&env, 10.0);
    speed(&env, 2000.0);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = env
        .cli()
        .args(["sync", "--cluster", CLUSTER, "--yes", "--max-poll", "50ms"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let held = env.wait_held(&mut child, "the sync's redeploy", 1).await;
    assert_eq!(common::gate::service_of(&held[0]), "front");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().code(), None, "killed by a signal");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let open = history(&env);
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["kind"], "sync");
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    speed(&env, 0.0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outcome"], "verified", "{doc}");
    let ran: Vec<Value> = env
        .calls_of("UpdateService")
        .into_iter()
        .filter(|c| c["error"].is_null())
        .collect();
    assert_eq!(ran.len(), 1, "one redeploy ran: {ran:?}");
    assert!(stale_truth(&env, CSRF).is_empty());
    assert_eq!(env.versions_read("front", CSRF), BTreeSet::from([version]));
    let done = history(&env);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["outcome"], "verified", "{done:?}");
}

/// Lines of the watcher's ndjson output so far, of `kind`.
fn lines_of(path: &std::path::Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == kind)
        .collect()
}

/// `sync --watch` at sandbox speed: three rotations in a row and a write by hand are each
/// rolled out to exactly their readers and proven; a held rotation is waited out (nothing
/// deployed while it is pending); SIGTERM while idle stops it cleanly (exit 0).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_rolls_out_rotations_and_writes_and_waits_out_a_held_rotation() {
    use common::gate::wait_for;
    use std::process::Stdio;
    const PDF: &str = "production/opg_lpa_pdf_owner_password";
    let env = start(0.0).await;
    advance(&env, 10.0);
    let bystanders: Vec<(&str, BTreeSet<String>)> = ["api", "admin"]
        .into_iter()
        .map(|s| (s, task_ids(&env, s)))
        .collect();
    speed(&env, 2000.0);
    let out_path = env.dir.path().join("watch.out");
    let mut child = env
        .cli()
        .args([
            "sync",
            "--watch",
            "--interval",
            "50ms",
            "--cluster",
            CLUSTER,
            "--max-poll",
            "20ms",
            "--output",
            "ndjson",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join("watch.err")).unwrap())
        .spawn()
        .unwrap();
    let alive = |child: &mut std::process::Child| {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the watcher ended early"
        );
    };
    wait_for("the first health line", || {
        !lines_of(&out_path, "health").is_empty()
    })
    .await;
    alive(&mut child);
    assert!(
        lines_of(&out_path, "report").is_empty(),
        "nothing to catch up on"
    );

    for i in 1..=3 {
        let version = rotate(&env, CSRF).await;
        wait_for("a sync report", || lines_of(&out_path, "report").len() >= i).await;
        let report = lines_of(&out_path, "report").pop().unwrap();
        assert_eq!(report["outcome"], "verified", "{report}");
        assert_eq!(report["kind"], "sync");
        assert_eq!(env.versions_read("front", CSRF), BTreeSet::from([version]));
    }
    // A write by hand to a secret only pdf reads.
    env.clients
        .sm
        .put_secret_value()
        .secret_id(PDF)
        .secret_string("written-by-hand-in-the-console")
        .send()
        .await
        .unwrap();
    wait_for("the write's sync", || {
        lines_of(&out_path, "report").len() >= 4
    })
    .await;
    let report = lines_of(&out_path, "report").pop().unwrap();
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(
        env.versions_read("pdf", PDF),
        BTreeSet::from([env.current_version(PDF)])
    );

    // A held rotation: the watcher waits, and deploys nothing meanwhile.
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .hold_rotations(&[CSRF.to_string()], true)
        .unwrap();
    let deployed = updates(&env).len();
    let version = rotate(&env, CSRF).await;
    wait_for("a waiting line", || {
        lines_of(&out_path, "waiting")
            .iter()
            .any(|w| w["secret"] == CSRF)
    })
    .await;
    let healths = lines_of(&out_path, "health").len();
    wait_for("two more looks while held", || {
        lines_of(&out_path, "health").len() >= healths + 2
    })
    .await;
    assert_eq!(
        updates(&env).len(),
        deployed,
        "nothing deployed while pending"
    );
    assert_eq!(lines_of(&out_path, "report").len(), 4);
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .hold_rotations(&[CSRF.to_string()], false)
        .unwrap();
    wait_for("the held rotation's sync", || {
        lines_of(&out_path, "report").len() >= 5
    })
    .await;
    assert_eq!(lines_of(&out_path, "report")[4]["outcome"], "verified");
    assert_eq!(env.versions_read("front", CSRF), BTreeSet::from([version]));

    // Exactly one redeploy per change, of exactly its readers.
    let mut by_service = updates(&env);
    by_service.sort();
    assert_eq!(by_service, ["front", "front", "front", "front", "pdf"]);
    for (service, before) in &bystanders {
        assert_eq!(&task_ids(&env, service), before, "{service} untouched");
    }
    assert_eq!(env.calls("PutSecretValue"), 1, "only the test wrote");

    // SIGTERM while idle: a clean stop.
    let healths = lines_of(&out_path, "health").len();
    wait_for("an idle look", || {
        lines_of(&out_path, "health").len() > healths
    })
    .await;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let err = std::fs::read_to_string(env.dir.path().join("watch.err")).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(lines_of(&out_path, "stopped").len(), 1);
    speed(&env, 0.0);
}

/// SIGTERM while the watcher's sync waits at its redeploy: the journal records it as
/// interrupted (exit 130, with the `resume` to run), and `resume` finishes it, verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_watchers_sync_journals_it_for_resume() {
    use sandbox::faults::{FaultRule, Release, Which};
    use std::process::Stdio;
    let env = start(0.0).await;
    advance(&env, 10.0);
    speed(&env, 2000.0);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let out_path = env.dir.path().join("watch.out");
    let mut child = env
        .cli()
        .args([
            "sync",
            "--watch",
            "--interval",
            "50ms",
            "--cluster",
            CLUSTER,
            "--max-poll",
            "20ms",
            "--output",
            "ndjson",
            CSRF,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::gate::wait_for("the first health line", || {
        !lines_of(&out_path, "health").is_empty()
    })
    .await;
    let version = rotate(&env, CSRF).await;
    let held = env.wait_held(&mut child, "the watcher's redeploy", 1).await;
    assert_eq!(common::gate::service_of(&held[0]), "front");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130));
    let stopped = lines_of(&out_path, "stopped");
    assert_eq!(stopped.len(), 1);
    assert!(
        stopped[0]["next_steps"][0]
            .as_str()
            .unwrap()
            .contains("secret-rollout resume"),
        "{stopped:?}"
    );
    let open = history(&env);
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["outcome"], "interrupted", "{open:?}");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    speed(&env, 0.0);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stale_truth(&env, CSRF).is_empty());
    assert_eq!(env.versions_read("front", CSRF), BTreeSet::from([version]));
    assert_eq!(history(&env)[0]["outcome"], "verified");
}
