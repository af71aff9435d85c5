//! Issue 21 item 4: `rollback ROTATION_ID` that finds the version it would restore already
//! AWSCURRENT says so and does nothing (exit 0: no write, no deployment, no `--force`, no
//! question), and records only what it did. When that version is current but not every
//! running task is proven on it, it says so (exit 6, "not proven") and its next step, a
//! `redeploy` of the services the rotation redeployed, runs as printed and proves them.
//! Ground truth: the sandbox's versions and stages, tasks and call log, and the journal.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{start, text, TestEnv, CLUSTER, SHARED};
use secret_rollout_core::error::exit;
use serde_json::Value;

const SPEED: f64 = 2000.0;
const READERS: [&str; 3] = ["front", "api", "admin"];

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("one JSON document: {e}\n{}", text(out)))
}

/// Every journal record of rotation `id`, in order.
fn records(env: &TestEnv, id: &str) -> Vec<Value> {
    let path = env
        .state_dir()
        .join("rotations")
        .join(format!("{id}.jsonl"));
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The calls that change something, by operation.
fn writes(env: &TestEnv) -> [usize; 3] {
    [
        env.calls("PutSecretValue"),
        env.calls("UpdateSecretVersionStage"),
        env.calls("UpdateService"),
    ]
}

/// A verified replace by generated value, then its rollback: returns (rotation id,
/// version before).
async fn replaced_and_rolled_back(env: &TestEnv) -> (String, String) {
    let before = env.current_version(SHARED);
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--generate",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let id = json(&out)["rotation_id"].as_str().unwrap().to_string();
    assert_ne!(env.current_version(SHARED), before);
    let out = env
        .run(&["rollback", &id, "--yes", "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(
        env.current_version(SHARED),
        before,
        "the first rollback restored"
    );
    assert_eq!(
        writes(env),
        [1, 1, 2 * READERS.len()],
        "one write, one stage move, a deployment per reader and phase"
    );
    (id, before)
}

/// The second `rollback ID`: already current, every task proven on it (the first
/// rollback's deployments launched them after the move): exit 0 without `--yes` or
/// `--force` (nothing to confirm), nothing written, nothing deployed, and the journal and
/// `history` say no version was written or moved and no service redeployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_rollback_finds_its_version_current_and_does_nothing() {
    let env = start(SPEED).await;
    let (id, before) = replaced_and_rolled_back(&env).await;
    let calls = writes(&env);

    // No --yes, no terminal: a rollback that changed something would be refused (exit 4).
    let out = env
        .run(&["rollback", &id, "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let head = format!(
        "why: AWSCURRENT of {SHARED} is already {}, the version rollback of rotation {id} restores: nothing was moved or redeployed; every running task of ",
        &before[..8]
    );
    assert!(stdout.contains(&head), "{}", text(&out));
    assert!(stdout.contains(" holds it ("), "{}", text(&out));
    assert!(
        !stdout.contains("next:"),
        "nothing to do next\n{}",
        text(&out)
    );
    assert!(
        !stdout.contains("written") && !stdout.contains("moved back from"),
        "the summary names no version it did not write or move\n{}",
        text(&out)
    );
    assert_eq!(
        writes(&env),
        calls,
        "no write, no stage move, no deployment"
    );
    assert_eq!(env.current_version(SHARED), before);
    for svc in READERS {
        assert_eq!(env.versions_read(svc, SHARED), [before.clone()].into());
    }

    // --force and JSON: the same nothing, and the report says what it did.
    let out = env
        .run(
            &["rollback", &id, "--force", "--yes", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "verified");
    assert_eq!(report["kind"], "rollback");
    assert_eq!(report["secrets"][0]["previous_version"], before.as_str());
    assert!(report["secrets"][0]["new_version"].is_null(), "{report}");
    assert_eq!(report["secrets"][0]["restored"], false);
    assert!(report["rollout"].is_null() && report["restore"].is_null());
    assert_eq!(report["next_steps"], serde_json::json!([]));
    assert_eq!(writes(&env), calls, "still nothing");

    // The journal of that rollback: started (no services), finished verified, nothing
    // between: no write, no restore, no deployment recorded.
    let second = report["rotation_id"].as_str().unwrap();
    let recs = records(&env, second);
    let types: Vec<&str> = recs.iter().map(|r| r["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["started", "finished"], "{recs:?}");
    assert_eq!(recs[0]["kind"], "rollback");
    assert_eq!(recs[0]["rolls_back"], id.as_str());
    assert_eq!(recs[0]["services"], serde_json::json!([]));
    assert_eq!(recs[1]["outcome"], "verified");

    // `history` of the secret: the two no-op rollbacks show no version written or
    // restored and no service.
    let out = env
        .run(
            &["history", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let history = json(&out);
    let rotations = history["rotations"].as_array().unwrap();
    assert_eq!(rotations.len(), 4, "replace, rollback, two no-op rollbacks");
    for r in &rotations[2..] {
        assert_eq!(r["kind"], "rollback");
        assert_eq!(r["rolls_back"], id.as_str());
        assert_eq!(r["outcome"], "verified");
        assert!(r["secrets"][0]["new_version_id"].is_null(), "{r}");
        assert!(r["secrets"][0]["restored_version_id"].is_null(), "{r}");
        assert_eq!(r["services"], serde_json::json!([]), "{r}");
    }
    // The real rollback did move it back, and says so.
    assert_eq!(
        rotations[1]["secrets"][0]["restored_version_id"],
        before.as_str()
    );
}

/// The version is current again because someone moved AWSCURRENT back by hand, without
/// redeploying: the tasks launched by the rotation read the newer version. `rollback ID`
/// moves nothing, says the tasks are not proven (exit 6) and prints the `redeploy` that
/// proves them; pasted as printed, it runs and every reader holds the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_whose_version_is_current_but_not_held_points_to_the_redeploy() {
    let env = start(SPEED).await;
    let before = env.current_version(SHARED);
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--generate",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let id = json(&out)["rotation_id"].as_str().unwrap().to_string();
    let new = env.current_version(SHARED);
    // By hand: the label goes back, nothing is redeployed.
    env.clients
        .sm
        .update_secret_version_stage()
        .secret_id(SHARED)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&before)
        .remove_from_version_id(&new)
        .send()
        .await
        .expect("UpdateSecretVersionStage");
    assert_eq!(env.current_version(SHARED), before);
    for svc in READERS {
        assert_eq!(env.versions_read(svc, SHARED), [new.clone()].into());
    }
    let calls = writes(&env);

    let out = env
        .run(&["rollback", &id, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(
        out.status.code(),
        Some(exit::VERIFY_FAILED),
        "{}",
        text(&out)
    );
    assert_eq!(writes(&env), calls, "nothing moved, nothing deployed");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("but not every running task is proven to hold it"),
        "{}",
        text(&out)
    );
    let next: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("next: "))
        .collect();
    assert_eq!(next.len(), 1, "{}", text(&out));
    let words: Vec<&str> = next[0].split_whitespace().collect();
    assert_eq!(
        words[..4],
        ["secret-rollout", "redeploy", "--secret", SHARED],
        "{}",
        next[0]
    );
    assert_eq!(words[4], "--services");
    let services: BTreeSet<&str> = words[5].split(',').collect();
    assert_eq!(services, READERS.into_iter().collect(), "{}", next[0]);
    assert_eq!(words[6..], ["--cluster", CLUSTER], "{}", next[0]);

    // Pasted as printed (with --yes for the missing terminal).
    let mut args: Vec<&str> = words[1..].to_vec();
    args.extend(["--yes", "--max-poll", "50ms"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before);
    assert_eq!(
        writes(&env),
        [calls[0], calls[1], calls[2] + READERS.len()],
        "one deployment per reader, no write"
    );
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [before.clone()].into(),
            "{svc}"
        );
    }
    // And now the rollback is the no-op one.
    let out = env
        .run(&["rollback", &id, "--cluster", CLUSTER], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
}
