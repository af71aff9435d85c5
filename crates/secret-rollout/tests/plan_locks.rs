//! `plan` says when `replace` would be refused for a secret's lock or an unfinished
//! rotation of it, without touching the lock; `redeploy --secret` takes the secret's lock
//! and is refused, before any UpdateService, while someone else's rotation holds it or is
//! unfinished. Through the real binary against the sandbox, with the local state
//! directory (the team state's side is in tests/team_s3.rs).

mod common;

use std::path::PathBuf;
use std::process::{Child, Output, Stdio};

use sandbox::faults::{FaultRule, Release, Which};
use serde_json::Value;

use common::{start, text, TestEnv, CLUSTER, SHARED};

const READERS: [&str; 3] = ["front", "api", "admin"];
const LOCAL_HINT: &str =
    "wait for it to finish; the lock goes away by itself when that process exits";

fn spawn_replace(env: &TestEnv, value: &[u8]) -> Child {
    let mut cmd = env.cli();
    cmd.args([
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "50ms",
        "--value-stdin",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    let mut child = cmd.spawn().expect("binary starts");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(value).unwrap();
    child
}

async fn plan(env: &TestEnv, json: bool) -> Output {
    let mut args = vec!["plan", SHARED, "--cluster", CLUSTER];
    if json {
        args.extend(["--output", "json"]);
    }
    env.run(&args, None).await
}

/// The one entry of `locks` in a plan's JSON.
fn locks_of(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    let doc: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("plan json: {}", text(o)));
    let locks = doc["locks"].as_array().expect("locks").clone();
    assert_eq!(locks.len(), 1, "one per secret: {locks:?}");
    locks[0].clone()
}

async fn redeploy_secret(env: &TestEnv) -> Output {
    env.run(
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
    .await
}

/// The lock files of the state directory.
fn lock_files(env: &TestEnv) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(env.state_dir().join("locks")) else {
        return Vec::new();
    };
    entries.map(|e| e.unwrap().path()).collect()
}

/// The first record of the one rotation journalled.
fn rotation_id(env: &TestEnv) -> String {
    let dir = env.state_dir().join("rotations");
    let mut ids: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .map(|p| {
            let first = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(first.lines().next().unwrap()).unwrap();
            v["rotation_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one rotation: {ids:?}");
    ids.pop().unwrap()
}

/// A `replace` held after its write (its redeploys wait at the gate) holds the lock:
/// `plan` names the holder's pid and the hint, and leaves the lock file exactly as it was;
/// `redeploy --secret` is refused with replace's hint and sends no UpdateService. Killed
/// with `-9`, the lock goes but the rotation stays unfinished: `plan` says so with the
/// `resume` to run, and `redeploy --secret` is refused for it. Once resumed,
/// `redeploy --secret` redeploys every reader onto the current version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_a_held_lock_and_an_unfinished_rotation_and_redeploy_secret_waits_its_turn() {
    let env = start(2000.0).await;
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut first = spawn_replace(&env, b"plan-locks-first-value");
    env.wait_held(&mut first, "the redeploys at the gate", READERS.len())
        .await;
    let rotation = rotation_id(&env);
    let files = lock_files(&env);
    assert_eq!(files.len(), 1, "one lock file: {files:?}");
    let bytes = std::fs::read(&files[0]).unwrap();
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&bytes).trim(),
        first.id().to_string(),
        "the holder's pid"
    );

    // plan, JSON: the holder and the rotation it has open, and what to do.
    let o = plan(&env, true).await;
    let l = locks_of(&o);
    assert_eq!(l["replace_refuses"], true, "{l}");
    assert_eq!(l["local"]["held"], true, "{l}");
    assert_eq!(l["local"]["pid"], first.id(), "{l}");
    assert_eq!(l["unfinished"]["rotation_id"], rotation.as_str(), "{l}");
    assert_eq!(l["hint"], LOCAL_HINT, "{l}");
    // replace --dry-run is the same plan.
    let o = env
        .run(
            &[
                "replace",
                SHARED,
                "--dry-run",
                "--generate",
                "--cluster",
                CLUSTER,
                "--output",
                "json",
            ],
            None,
        )
        .await;
    let l = locks_of(&o);
    assert_eq!(l["replace_refuses"], true, "{l}");
    assert_eq!(l["local"]["pid"], first.id(), "{l}");
    assert_eq!(l["hint"], LOCAL_HINT, "{l}");
    // plan, text: one warning line with it.
    let o = plan(&env, false).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let line = format!(
        "  warning: {SHARED}: locked: another secret-rollout is rotating it here (pid {}, taken ",
        first.id()
    );
    assert!(out.contains(&line), "{out}");
    assert!(
        out.contains(&format!("; rotation {rotation} (replace) started ")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "is unfinished: replace refuses now; {LOCAL_HINT}\n"
        )),
        "{out}"
    );
    // Nothing touched the lock: same file, same bytes, same time; the holder runs on.
    assert_eq!(lock_files(&env), files);
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified
    );
    assert!(first.try_wait().unwrap().is_none(), "the holder still runs");

    // redeploy --secret: refused before any deployment, with replace's words.
    let updates = env.calls_of("UpdateService").len();
    assert_eq!(updates, READERS.len(), "the held redeploys, logged");
    let o = redeploy_secret(&env).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: another secret-rollout is rotating "),
        "{err}"
    );
    assert!(err.contains(&format!("(pid {})", first.id())), "{err}");
    assert!(err.contains(&format!("\n  hint: {LOCAL_HINT}")), "{err}");
    assert_eq!(
        env.calls_of("UpdateService").len(),
        updates,
        "no UpdateService from the refused redeploy"
    );
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes, "lock untouched");

    // kill -9: the OS frees the lock, the journal keeps the rotation open.
    first.kill().unwrap();
    assert_eq!(first.wait().unwrap().code(), None, "killed by a signal");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let resume = format!("secret-rollout resume {rotation} --cluster {CLUSTER}");
    let hint = format!(
        "finish it with `{resume}` (or roll it back with `secret-rollout rollback {rotation} --cluster {CLUSTER}`)"
    );
    let l = locks_of(&plan(&env, true).await);
    assert_eq!(l["replace_refuses"], true, "{l}");
    assert_eq!(l["local"]["held"], false, "{l}");
    assert_eq!(l["unfinished"]["rotation_id"], rotation.as_str(), "{l}");
    assert_eq!(l["unfinished"]["kind"], "replace", "{l}");
    assert_eq!(l["hint"], hint.as_str(), "{l}");
    let o = plan(&env, false).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "  warning: {SHARED}: rotation {rotation} (replace) started "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(" is unfinished: replace refuses now; {hint}\n")),
        "{out}"
    );

    let before = env.calls_of("UpdateService").len();
    let o = redeploy_secret(&env).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("has an unfinished rotation {rotation}")),
        "{err}"
    );
    assert!(err.contains(&format!("\n  hint: {hint}")), "{err}");
    assert_eq!(
        env.calls_of("UpdateService").len(),
        before,
        "nothing deployed"
    );

    // Finished, nothing is in the way: plan is clear, redeploy --secret runs.
    let o = env
        .run(
            &[
                "resume",
                &rotation,
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let l = locks_of(&plan(&env, true).await);
    assert_eq!(l["replace_refuses"], false, "{l}");
    assert_eq!(l["local"]["held"], false, "{l}");
    assert!(l["unfinished"].is_null(), "{l}");
    assert!(l["line"].is_null() && l["hint"].is_null(), "{l}");
    let o = plan(&env, false).await;
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("replace refuses now"),
        "{}",
        text(&o)
    );
    let before = env.calls_of("UpdateService").len();
    let o = redeploy_secret(&env).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let current = env.current_version(SHARED);
    let new: Vec<Value> = env.calls_of("UpdateService")[before..].to_vec();
    assert_eq!(new.len(), READERS.len(), "one redeploy per reader: {new:?}");
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [current.clone()].into(),
            "{svc} holds the current version"
        );
    }
    // And it left no lock: a replace takes it at once.
    let o = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--generate",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// `redeploy` of services by name takes no secret's lock: it runs while a replace holds
/// one, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_of_services_by_name_takes_no_secret_lock() {
    let env = start(2000.0).await;
    env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
    let mut first = spawn_replace(&env, b"plan-locks-second-value");
    env.wait_held(&mut first, "the write at the gate", 1).await;
    assert_eq!(lock_files(&env).len(), 1);
    let o = env
        .run(
            &[
                "redeploy",
                "--services",
                "front",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The subject is the name or ARN the tool sent: keep the name.
    let services: Vec<String> = env
        .calls_of("UpdateService")
        .iter()
        .map(|c| {
            let s = c["subject"]["service"].as_str().unwrap_or_default();
            s.rsplit('/').next().unwrap_or(s).to_string()
        })
        .collect();
    assert_eq!(services, ["front"], "front redeployed");
    first.kill().unwrap();
    let _ = first.wait();
    env.release(Which::All, Release::Drop);
    env.open_gate();
}
