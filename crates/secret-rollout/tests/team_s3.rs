//! The team state in S3 (moto server) through the real binary, with the sandbox for
//! Secrets Manager and ECS: two machines (two state directories) share one lock and one
//! journal; a lost lease stops a run before its next write (an `--approve-hooks` answer to a
//! PAUSE hook and our failure detector's StopServiceDeployment included); records S3 did not
//! take are pushed later; bad state settings are refused before any write.
//!
//! Leases are short here (`SECRET_ROLLOUT_LOCK_LEASE`, `SECRET_ROLLOUT_LOCK_RENEW`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultRule, Release, Which};
use sandbox::Scenario;
use serde_json::Value;

use common::moto::Moto;
use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};

const BUCKET: &str = "team-state";
const READERS: [&str; 3] = ["front", "api", "admin"];

struct Team {
    env: TestEnv,
    moto: Moto,
    /// Where the tool sends S3 calls (moto, or a proxy in front of it).
    s3_endpoint: String,
    s3: aws_sdk_s3::Client,
    lease: (&'static str, &'static str),
}

async fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    let sdk = common::sdk_config(endpoint).await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
}

fn write_config(env: &TestEnv, state: &str) {
    std::fs::write(
        env.dir.path().join("secret-rollout.toml"),
        format!(
            "[environments.production]\nregion = \"eu-west-1\"\nclusters = [\"production-online-lpa\"]\nstate = \"{state}\"\n"
        ),
    )
    .unwrap();
}

async fn team(lease: (&'static str, &'static str)) -> Team {
    team_on(start(2000.0).await, lease).await
}

/// A team (moto, its bucket, the config) around a sandbox already started.
async fn team_on(env: TestEnv, lease: (&'static str, &'static str)) -> Team {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let s3 = s3_client(&moto.endpoint).await;
    s3.create_bucket()
        .bucket(BUCKET)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("bucket created on moto");
    write_config(&env, &format!("s3://{BUCKET}/rollout"));
    Team {
        s3_endpoint: moto.endpoint.clone(),
        env,
        moto,
        s3,
        lease,
    }
}

impl Team {
    fn state(&self, machine: &str) -> PathBuf {
        let dir = self.env.dir.path().join(format!("state-{machine}"));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The binary on `machine` (its own state directory), S3 on moto.
    fn cli(&self, machine: &str) -> Command {
        let mut cmd = self.env.cli();
        cmd.env("SECRET_ROLLOUT_STATE_DIR", self.state(machine))
            .env("AWS_ENDPOINT_URL_S3", &self.s3_endpoint)
            .env("SECRET_ROLLOUT_LOCK_LEASE", self.lease.0)
            .env("SECRET_ROLLOUT_LOCK_RENEW", self.lease.1);
        cmd
    }

    async fn run(&self, machine: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.cli(machine);
        cmd.args(args);
        let input = stdin.map(<[u8]>::to_vec);
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            cmd.stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("binary starts");
            if let Some(bytes) = input {
                let _ = child.stdin.take().expect("stdin").write_all(&bytes);
            }
            child.wait_with_output().expect("binary finishes")
        })
        .await
        .unwrap()
    }

    fn spawn(&self, machine: &str, args: &[&str], stdin: &[u8]) -> Child {
        let mut cmd = self.cli(machine);
        let dir = self.env.dir.path();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(std::fs::File::create(dir.join(format!("{machine}.out"))).unwrap())
            .stderr(std::fs::File::create(dir.join(format!("{machine}.err"))).unwrap());
        let mut child = cmd.spawn().expect("binary starts");
        use std::io::Write;
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child
    }

    fn output_of(&self, machine: &str) -> String {
        let dir = self.env.dir.path();
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(dir.join(format!("{machine}.out"))).unwrap(),
            std::fs::read_to_string(dir.join(format!("{machine}.err"))).unwrap()
        )
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let out = self
            .s3
            .list_objects_v2()
            .bucket(BUCKET)
            .prefix(prefix)
            .send()
            .await
            .expect("list");
        let mut keys: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect();
        keys.sort();
        keys
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        let out = self
            .s3
            .get_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("get");
        out.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// The journal records in the bucket, in order.
    async fn bucket_records(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for key in self.keys("rollout/journal/").await {
            out.push(serde_json::from_slice(&self.get(&key).await).unwrap());
        }
        out
    }

    async fn lock_keys(&self) -> Vec<String> {
        self.keys("rollout/locks/").await
    }
}

/// The local journal records of `state`, in file order (a torn last line skipped). None
/// before the first rotation made the directory: callers wait on it or compare exact counts
/// or the bucket's records, so an absent directory fails them.
fn local_records(state: &Path) -> Vec<Value> {
    let dir = state.join("rotations");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        for line in std::fs::read_to_string(&p).unwrap().lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                out.push(v);
            }
        }
    }
    out
}

fn count(records: &[Value], kind: &str) -> usize {
    records.iter().filter(|r| r["type"] == kind).count()
}

/// UpdateService calls ECS accepted (a call dropped at the gate is logged with an error).
fn deployed(env: &TestEnv) -> usize {
    env.calls_of("UpdateService")
        .iter()
        .filter(|c| c["error"].is_null())
        .count()
}

/// Journal records of `kind` in a machine's state directory.
fn local_count(state: &Path, kind: &str) -> usize {
    count(&local_records(state), kind)
}

fn replace_args(value_source: &str) -> Vec<&str> {
    vec![
        "replace",
        SHARED,
        "--env",
        "production",
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        "json",
        value_source,
    ]
}

fn rotation_ids(history: &Output) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&history.stdout)
        .unwrap_or_else(|_| panic!("history json: {}", text(history)));
    v["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn assert_readers_hold(env: &TestEnv, version: &str) {
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [version.to_string()].into(),
            "{svc} runs the new value"
        );
    }
}

/// Two machines, one bucket: the second is refused before any write while the first holds
/// the lock, naming the holder; after a `kill -9` of the first and once its lease ran out,
/// the second resumes the rotation; `history` on both shows the same rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_machine_is_refused_then_resumes_after_kill_9() {
    let t = team(("8s", "2s")).await;
    let env = &t.env;
    let before = env.current_version(SHARED);
    // The first run stops after its write: its redeploys (UpdateService) wait at the
    // gate, and the journal says written.
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let value = b"team-state-first-value";
    let mut first = t.spawn("a", &replace_args("--value-stdin"), value);
    let state_a = t.state("a");
    env.wait_held(&mut first, "the redeploys at the gate", READERS.len())
        .await;
    assert_eq!(local_count(&state_a, "written"), 1, "held after the write");
    let t0 = Instant::now();
    while t.bucket_records().await.len() < 2 {
        assert!(t0.elapsed() < Duration::from_secs(30), "records pushed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rotation = local_records(&state_a)[0]["rotation_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t.lock_keys().await.len(), 1, "the lock is in the bucket");

    let puts = env.calls_of("PutSecretValue").len();
    // The held calls are in the log already (a dropped one gets its error when dropped).
    let updates = deployed(env);
    assert_eq!(updates, READERS.len(), "the first run's redeploys, held");
    // Even told to go on despite other deployments: the lock is not a deployment.
    let mut args = replace_args("--generate");
    args.push("--allow-concurrent-deploy");
    let second = t.run("b", &args, None).await;
    assert_eq!(second.status.code(), Some(4), "{}", text(&second));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.starts_with("error: another secret-rollout holds the lock of"),
        "{err}"
    );
    assert!(err.contains(&format!("rotation {rotation}")), "{err}");
    assert!(err.contains("arn:aws:"), "the caller: {err}");
    assert!(err.contains(&format!("(pid {})", first.id())), "{err}");
    assert!(err.contains("last renewed"), "the age: {err}");
    // Its hint names the holder's rotation and carries the options that reach the
    // environment; the resume below is the one it prints.
    let arn = env.secret(SHARED)["arn"].as_str().expect("arn").to_string();
    assert!(
        err.contains(&format!("\n  hint: wait for it to finish or for its lease to run out, then `secret-rollout resume {rotation} --env production`; if its holder is gone for good, `secret-rollout unlock {arn} --env production`")),
        "{err}"
    );
    assert_eq!(
        env.calls_of("PutSecretValue").len(),
        puts,
        "nothing written"
    );
    assert_eq!(deployed(env), updates, "nothing deployed");
    assert_eq!(env.version_count(SHARED), 2);

    first.kill().unwrap();
    assert_eq!(first.wait().unwrap().code(), None, "killed by a signal");
    // The held redeploys never reached ECS.
    env.release(Which::All, Release::Drop);
    env.open_gate();
    assert_eq!(deployed(env), 0, "nothing deployed by the first run");

    // Right after the kill the lease still runs: resume is refused too, writing nothing.
    let early = t
        .run(
            "b",
            &[
                "resume",
                "--env",
                "production",
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(early.status.code(), Some(4), "{}", text(&early));
    assert!(
        String::from_utf8_lossy(&early.stderr).contains(&format!("rotation {rotation}")),
        "{}",
        text(&early)
    );
    assert_eq!(deployed(env), 0, "nothing deployed by the refused resume");

    tokio::time::sleep(Duration::from_secs(9)).await;
    let resumed = t
        .run(
            "b",
            &[
                "resume",
                &rotation,
                "--env",
                "production",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    let report: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["outcome"], "verified");
    assert_eq!(report["rotation_id"], rotation.as_str());
    let after = env.current_version(SHARED);
    assert_ne!(after, before);
    assert_eq!(env.version_count(SHARED), 2, "exactly one new version");
    assert_readers_hold(env, &after);
    assert!(t.lock_keys().await.is_empty(), "the lock is released");

    let on_a = t
        .run(
            "a",
            &["history", "--env", "production", "--output", "json"],
            None,
        )
        .await;
    let on_b = t
        .run(
            "b",
            &["history", "--env", "production", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(on_a.status.code(), Some(0), "{}", text(&on_a));
    assert_eq!(
        rotation_ids(&on_a),
        vec![(rotation.clone(), "verified".into())]
    );
    assert_eq!(rotation_ids(&on_a), rotation_ids(&on_b));
    // Both local copies are now the bucket's, record for record.
    let bucket = t.bucket_records().await;
    assert_eq!(local_records(&state_a), bucket);
    assert_eq!(local_records(&t.state("b")), bucket);
    assert!(!serde_json::to_string(&bucket)
        .unwrap()
        .contains("team-state-first-value"));
}

/// The lock object's bytes and ETag, straight from the bucket.
async fn lock_object(t: &Team, key: &str) -> (Vec<u8>, String) {
    let head =
        t.s3.head_object()
            .bucket(BUCKET)
            .key(key)
            .send()
            .await
            .expect("head");
    (
        t.get(key).await,
        head.e_tag().unwrap_or_default().to_string(),
    )
}

fn plan_locks(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}", text(o)));
    let locks = doc["locks"].as_array().expect("locks").clone();
    assert_eq!(locks.len(), 1, "one per secret: {locks:?}");
    locks[0].clone()
}

const PLAN: [&str; 6] = ["plan", SHARED, "--env", "production", "--output", "json"];

fn redeploy_args() -> Vec<&'static str> {
    vec![
        "redeploy",
        "--secret",
        SHARED,
        "--env",
        "production",
        "--yes",
        "--max-poll",
        "50ms",
    ]
}

/// A second machine's `plan` names the holder of the lock in the bucket and the rotation
/// it has open, with the refusal's hint, and leaves the lock object exactly as it was;
/// its `redeploy --secret` is refused with the same hint and deploys nothing. Once the
/// lock is removed the unfinished rotation is what plan names (and what refuses the
/// redeploy); once it is resumed, `redeploy --secret` holds the secret's lock in the
/// bucket while it deploys and removes it at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_the_team_lock_untouched_and_redeploy_secret_takes_it() {
    // A lease far longer than the test's reads: no renewal between them.
    let t = team(("120s", "60s")).await;
    let env = &t.env;
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut first = t.spawn("a", &replace_args("--value-stdin"), b"team-plan-value");
    env.wait_held(&mut first, "the redeploys at the gate", READERS.len())
        .await;
    let rotation = local_records(&t.state("a"))[0]["rotation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let keys = t.lock_keys().await;
    assert_eq!(keys.len(), 1, "the lock is in the bucket");
    let before = lock_object(&t, &keys[0]).await;
    let arn = env.secret(SHARED)["arn"].as_str().expect("arn").to_string();
    let held_hint = format!("wait for it to finish or for its lease to run out, then `secret-rollout resume {rotation} --env production`; if its holder is gone for good, `secret-rollout unlock {arn} --env production`");

    let l = plan_locks(&t.run("b", &PLAN, None).await);
    assert_eq!(l["replace_refuses"], true, "{l}");
    assert_eq!(l["local"]["held"], false, "not on this machine: {l}");
    assert_eq!(l["team"]["rotation_id"], rotation.as_str(), "{l}");
    assert_eq!(l["team"]["pid"], first.id(), "{l}");
    assert_eq!(l["team"]["expired"], false, "{l}");
    assert!(l["team"]["last_renewed_secs_ago"].is_u64(), "{l}");
    assert_eq!(
        l["unfinished"]["rotation_id"],
        rotation.as_str(),
        "synced: {l}"
    );
    assert_eq!(l["hint"], held_hint.as_str(), "{l}");
    let o = t.run("b", &PLAN[..4], None).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!(
            "  warning: {SHARED}: locked in the team state: held by "
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "(pid {}), rotation {rotation}, started ",
            first.id()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(": replace refuses now; {held_hint}\n")),
        "{out}"
    );
    // The lock object is exactly as it was: not taken, renewed or removed by plan.
    assert_eq!(t.lock_keys().await, keys);
    assert_eq!(
        lock_object(&t, &keys[0]).await,
        before,
        "lock object unchanged"
    );

    let updates = env.calls_of("UpdateService").len();
    assert_eq!(updates, READERS.len(), "the first run's redeploys, held");
    let o = t.run("b", &redeploy_args(), None).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("error: another secret-rollout holds the lock of"),
        "{err}"
    );
    assert!(err.contains(&format!("\n  hint: {held_hint}")), "{err}");
    assert_eq!(
        env.calls_of("UpdateService").len(),
        updates,
        "no UpdateService from the refused redeploy"
    );
    assert_eq!(
        lock_object(&t, &keys[0]).await,
        before,
        "lock object unchanged"
    );

    // The holder is gone for good: kill -9, its held calls dropped, its lock removed.
    first.kill().unwrap();
    assert_eq!(first.wait().unwrap().code(), None, "killed by a signal");
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let o = t
        .run(
            "b",
            &["unlock", SHARED, "--env", "production", "--yes"],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(t.lock_keys().await.is_empty());
    let unfinished_hint = format!("finish it with `secret-rollout resume {rotation} --env production` (or roll it back with `secret-rollout rollback {rotation} --env production`)");
    let l = plan_locks(&t.run("b", &PLAN, None).await);
    assert!(l["team"].is_null(), "{l}");
    assert_eq!(l["unfinished"]["rotation_id"], rotation.as_str(), "{l}");
    assert_eq!(l["hint"], unfinished_hint.as_str(), "{l}");
    let o = t.run("b", &redeploy_args(), None).await;
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("\n  hint: {unfinished_hint}")),
        "{}",
        text(&o)
    );
    assert_eq!(deployed(env), 0, "nothing deployed");
    assert!(
        t.lock_keys().await.is_empty(),
        "the refused redeploy left no lock"
    );

    let o = t
        .run(
            "b",
            &[
                "resume",
                &rotation,
                "--env",
                "production",
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let l = plan_locks(&t.run("b", &PLAN, None).await);
    assert_eq!(l["replace_refuses"], false, "{l}");

    // redeploy --secret holds the secret's lock in the bucket while it deploys.
    let deployed_before = deployed(env);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut redeploy = t.spawn("b", &redeploy_args(), b"");
    env.wait_held(&mut redeploy, "the redeploys at the gate", READERS.len())
        .await;
    let keys = t.lock_keys().await;
    assert_eq!(keys.len(), 1, "the redeploy's lock");
    let holder: Value = serde_json::from_slice(&t.get(&keys[0]).await).unwrap();
    assert_eq!(holder["secret_arn"], arn.as_str());
    assert_ne!(holder["rotation_id"], rotation.as_str(), "its own rotation");
    assert_eq!(holder["pid"], redeploy.id());
    env.open_gate();
    let status = tokio::task::spawn_blocking(move || redeploy.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", t.output_of("b"));
    assert_eq!(deployed(env), deployed_before + READERS.len());
    assert_readers_hold(env, &env.current_version(SHARED));
    assert!(t.lock_keys().await.is_empty(), "the lock is released");
}

/// `unlock` from another machine shows the holder and removes the lock; the run that held
/// it loses its lease and stops before its next write (exit 13), keeping its journal;
/// `resume` then finishes the rotation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_is_lost_stops_before_its_next_write() {
    let t = team(("3s", "1s")).await;
    let env = &t.env;
    // Held after the write, in its look before redeploying (DescribeServices), which
    // comes before the lease check of its next write (UpdateService). Not the
    // UpdateService itself: a call held there has passed the check already.
    env.gate(vec![FaultRule::gate("ecs", "DescribeServices")]);
    let value = b"lease-lost-new-value";
    let mut first = t.spawn("a", &replace_args("--value-stdin"), value);
    let state_a = t.state("a");
    env.advance_until(&mut first, "the look after the write", |_, _| {
        local_count(&state_a, "written") == 1
    })
    .await;
    let rotation = local_records(&state_a)[0]["rotation_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Without a terminal or --yes, nothing is removed.
    let asked = t
        .run("b", &["unlock", SHARED, "--env", "production"], None)
        .await;
    assert_eq!(asked.status.code(), Some(4), "{}", text(&asked));
    assert_eq!(t.lock_keys().await.len(), 1);
    let unlocked = t
        .run(
            "b",
            &["unlock", SHARED, "--env", "production", "--yes"],
            None,
        )
        .await;
    assert_eq!(unlocked.status.code(), Some(0), "{}", text(&unlocked));
    let err = String::from_utf8_lossy(&unlocked.stderr);
    assert!(err.contains(&format!("rotation {rotation}")), "{err}");
    assert!(err.contains("last renewed"), "{err}");
    assert!(err.contains("removed the lock"), "{err}");
    assert!(t.lock_keys().await.is_empty());
    // The lease is kept on the real clock: once the lock is gone the run's renewal fails,
    // and a lease (3s) after its last renewal it has run out whatever the renewal saw. Only
    // then may the held look go on: this wait is the lease's, not a timing assertion.
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.open_gate();

    let status = tokio::task::spawn_blocking(move || first.wait().unwrap())
        .await
        .unwrap();
    let out = t.output_of("a");
    assert_eq!(status.code(), Some(13), "{out}");
    assert!(out.contains("error: lost the lock on"), "{out}");
    assert!(
        out.contains(&format!("secret-rollout resume {rotation}")),
        "{out}"
    );
    assert!(
        env.calls_of("UpdateService").is_empty(),
        "no redeploy after the loss"
    );
    let local = local_records(&state_a);
    assert_eq!(count(&local, "finished"), 0, "{local:?}");
    assert_eq!(count(&local, "written"), 1);
    assert_eq!(
        t.bucket_records().await,
        local,
        "nothing pushed after the loss"
    );

    let resumed = t
        .run(
            "a",
            &[
                "resume",
                "--env",
                "production",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert_eq!(env.version_count(SHARED), 2);
    assert_readers_hold(env, &env.current_version(SHARED));
    assert_eq!(t.bucket_records().await, local_records(&state_a));
}

/// The secret of [`hooked_scenario`], read by its one service, [`HOOKED_SERVICE`].
const HOOKED: &str = "production/hooked-key";
const HOOKED_SERVICE: &str = "web";
/// Desired tasks of [`HOOKED_SERVICE`].
const HOOKED_DESIRED: usize = 2;

/// One blue/green service in the sample's cluster (so [`write_config`] fits), whose every
/// deployment waits at a `PAUSE` hook after green scaled up, before production traffic
/// moves; the hook's timeout (20160 minutes: 10 real minutes at 2000 virtual seconds per
/// real one) is far beyond the test, so only an answer moves it on.
fn hooked_scenario() -> Scenario {
    Scenario::from_toml(&format!(
        r#"
region = "eu-west-1"
account = "123456789012"
seed = 13

[[secrets]]
name = "{HOOKED}"
value = "old-value-Lm9XvN4pR8sT1wY6zB3e7Hq2"

[[clusters]]
clusterName = "{CLUSTER}"

[[task_definitions]]
family = "hooked-web"
[[task_definitions.containerDefinitions]]
name = "app"
image = "example/web:1"
essential = true
secrets = [{{ name = "KEY", valueFrom = "/aws/reference/secretsmanager/{HOOKED}" }}]

[[services]]
cluster = "{CLUSTER}"
serviceName = "{HOOKED_SERVICE}"
taskDefinition = "hooked-web"
desiredCount = {HOOKED_DESIRED}

[services.deploymentConfiguration]
strategy = "BLUE_GREEN"
bakeTimeInMinutes = 10
lifecycleHooks = [{{ targetType = "PAUSE", lifecycleStages = ["POST_SCALE_UP"], timeoutConfiguration = {{ timeoutInMinutes = 20160, action = "ROLLBACK" }} }}]
"#
    ))
    .expect("scenario")
}

/// The service deployment ARN and hook id of the `PAUSE` hook `AWAITING_ACTION` in the
/// sandbox, if one waits (the state lists the service deployments; their hooks are read
/// back through DescribeServiceDeployments).
async fn awaiting_hook(env: &TestEnv) -> Option<(String, String)> {
    let arns: Vec<String> = env.state()["ecs"]["services"][0]["serviceDeployments"]
        .as_array()?
        .iter()
        .filter_map(|d| d["arn"].as_str().map(str::to_string))
        .collect();
    if arns.is_empty() {
        return None;
    }
    let records =
        secret_rollout_core::aws::ecs::describe_service_deployments(&env.clients.ecs, &arns)
            .await
            .expect("DescribeServiceDeployments");
    records.into_iter().find_map(|r| {
        r.hooks
            .iter()
            .find(|h| h.target_type == "PAUSE" && h.status == "AWAITING_ACTION")
            .map(|h| (r.arn.clone(), h.id.clone()))
    })
}

/// The sandbox's status of the service deployment `arn`.
fn sd_status(env: &TestEnv, arn: &str) -> Value {
    env.state()["ecs"]["services"][0]["serviceDeployments"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["arn"] == arn).cloned())
        .unwrap_or_else(|| panic!("service deployment {arn} in the sandbox"))["status"]
        .clone()
}

/// Calls of `operation` ECS accepted (one dropped at a gate is logged with an error).
fn accepted(env: &TestEnv, operation: &str) -> usize {
    env.calls_of(operation)
        .iter()
        .filter(|c| c["error"].is_null())
        .count()
}

/// `--approve-hooks`' answer to a PAUSE hook is a write like any other: a run whose lease
/// was lost (another machine ran `unlock`) while it proved green's tasks answers nothing,
/// neither CONTINUE nor ROLLBACK, leaves the hook waiting and stops with exit 13, keeping
/// its journal; `resume --approve-hooks` then continues the hook once and finishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_is_lost_answers_no_pause_hook() {
    let t = team_on(start_with(hooked_scenario(), 2000.0).await, ("3s", "1s")).await;
    let env = &t.env;
    // The scenario's own first deployment waits at the hook too: continued here (the one
    // ContinueServiceDeployment before the run), and the service is steady for the tool.
    let (arn, hook) = wait_hook(env).await;
    env.clients
        .ecs
        .continue_service_deployment()
        .service_deployment_arn(&arn)
        .hook_id(&hook)
        .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Continue)
        .send()
        .await
        .expect("ContinueServiceDeployment");
    common::gate::wait_for("the first deployment to succeed", || {
        sd_status(env, &arn) == "SUCCESSFUL"
    })
    .await;
    let before = env.current_version(HOOKED);

    // Held at the DescribeTasks by which `--approve-hooks` lists green's tasks, once the
    // deployment waits at its hook: after it come only reads of the secret, then the lease
    // check and the answer. Every DescribeTasks before (the look before the write) goes on.
    // In a healthy rollout nothing else lists tasks while a hook waits.
    env.gate(vec![FaultRule::gate("ecs", "DescribeTasks")]);
    let mut args = replace_args("--value-stdin");
    args[1] = HOOKED;
    args.extend(["--approve-hooks", "--timeout", "30m"]);
    let mut first = t.spawn("a", &args, b"hooked-new-value-Tq7Wm2Rz9Kd4");
    let state_a = t.state("a");
    let (waiting_arn, waiting_hook) = loop {
        let held = env
            .wait_held(&mut first, "the tool's look at green's tasks", 1)
            .await;
        if local_count(&state_a, "redeployed") == 1 {
            if let Some(found) = awaiting_hook(env).await {
                assert_eq!(held.len(), 1, "{held:?}");
                break found;
            }
        }
        env.release(Which::Oldest(1), Release::Run);
    };
    assert_ne!(waiting_arn, arn, "the rotation's own deployment waits");
    let now = env.current_version(HOOKED);
    assert_ne!(now, before, "the new version is current");
    let rotation = local_records(&state_a)[0]["rotation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let continued_before = accepted(env, "ContinueServiceDeployment");
    assert_eq!(continued_before, 1, "only the test's own");

    let unlocked = t
        .run(
            "b",
            &["unlock", HOOKED, "--env", "production", "--yes"],
            None,
        )
        .await;
    assert_eq!(unlocked.status.code(), Some(0), "{}", text(&unlocked));
    assert!(t.lock_keys().await.is_empty());
    // As in the test above: the lease (3s) runs out on the real clock once the lock is
    // gone. This wait is the lease's, not a timing assertion.
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.open_gate();

    let status = tokio::task::spawn_blocking(move || first.wait().unwrap())
        .await
        .unwrap();
    let out = t.output_of("a");
    assert_eq!(status.code(), Some(13), "{out}");
    assert!(out.contains("error: lost the lock on"), "{out}");
    assert!(
        out.contains(&format!("secret-rollout resume {rotation}")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "PAUSE hook {waiting_hook} at POST_SCALE_UP left waiting, not answered: lost the lock"
        )),
        "{out}"
    );
    // Ground truth: no answer reached ECS, and the deployment still waits at its hook.
    assert_eq!(
        accepted(env, "ContinueServiceDeployment"),
        continued_before,
        "no CONTINUE after the loss\n{out}"
    );
    assert_eq!(
        env.calls("StopServiceDeployment"),
        0,
        "no ROLLBACK after the loss\n{out}"
    );
    assert_eq!(
        awaiting_hook(env).await,
        Some((waiting_arn.clone(), waiting_hook.clone())),
        "the hook still waits"
    );
    assert_eq!(sd_status(env, &waiting_arn), "IN_PROGRESS");
    let local = local_records(&state_a);
    assert_eq!(count(&local, "finished"), 0, "{local:?}");
    assert_eq!(count(&local, "redeployed"), 1, "{local:?}");
    assert_eq!(
        t.bucket_records().await,
        local,
        "nothing pushed after the loss"
    );

    let resumed = t
        .run(
            "a",
            &[
                "resume",
                "--env",
                "production",
                "--yes",
                "--approve-hooks",
                "--timeout",
                "30m",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(resumed.status.code(), Some(0), "{}", text(&resumed));
    assert_eq!(
        accepted(env, "ContinueServiceDeployment"),
        continued_before + 1,
        "resume continued the hook, once"
    );
    assert_eq!(env.calls("StopServiceDeployment"), 0);
    assert_eq!(sd_status(env, &waiting_arn), "SUCCESSFUL");
    assert_eq!(awaiting_hook(env).await, None);
    assert_eq!(deployed(env), 1, "resume deployed nothing again");
    assert_eq!(env.current_version(HOOKED), now);
    assert_eq!(env.version_count(HOOKED), 2);
    assert_eq!(env.running_tasks(HOOKED_SERVICE).len(), HOOKED_DESIRED);
    assert_eq!(
        env.versions_read(HOOKED_SERVICE, HOOKED),
        [now.clone()].into(),
        "every running task resolved the new version"
    );
    assert_eq!(t.bucket_records().await, local_records(&state_a));
    assert!(t.lock_keys().await.is_empty(), "the lock is released");
}

/// Waits (bounded) until a PAUSE hook waits in the sandbox.
async fn wait_hook(env: &TestEnv) -> (String, String) {
    let t0 = Instant::now();
    loop {
        if let Some(found) = awaiting_hook(env).await {
            return found;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never reached: a PAUSE hook waiting"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The secret of [`detector_scenario`], read by its one service, [`DETECTED_SERVICE`].
const DETECTED: &str = "production/detector-key";
const DETECTED_SERVICE: &str = "worker";
/// Desired tasks of [`DETECTED_SERVICE`].
const DETECTED_DESIRED: usize = 4;
/// The value [`reject_detected_bad_value`]'s health rule rejects (made up).
const DETECTED_BAD: &str = "rejected-value-8Wm3Kq9LxV2nP5rT7sY1zB4c";

/// One rolling service without a circuit breaker in the sample's cluster (so
/// [`write_config`] fits): its failing tasks are for our own failure detector to count.
fn detector_scenario() -> Scenario {
    Scenario::from_toml(&format!(
        r#"
region = "eu-west-1"
account = "123456789012"
seed = 13

[[secrets]]
name = "{DETECTED}"
value = "old-value-Pz4Rk8Lm2XvN6sT9wY1bQ7e3"

[[clusters]]
clusterName = "{CLUSTER}"

[[task_definitions]]
family = "detector-worker"
[[task_definitions.containerDefinitions]]
name = "app"
image = "example/worker:1"
essential = true
secrets = [{{ name = "KEY", valueFrom = "/aws/reference/secretsmanager/{DETECTED}" }}]

[[services]]
cluster = "{CLUSTER}"
serviceName = "{DETECTED_SERVICE}"
taskDefinition = "detector-worker"
desiredCount = {DETECTED_DESIRED}

[services.deploymentConfiguration]
minimumHealthyPercent = 50
"#
    ))
    .expect("scenario")
}

/// New tasks of [`DETECTED_SERVICE`] that read [`DETECTED_BAD`] exit at start ("the
/// application rejects the value"): without a circuit breaker ECS relaunches them until
/// someone stops the deployment.
fn reject_detected_bad_value(env: &TestEnv) {
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: Some(DETECTED_SERVICE.into()),
            secret: Some(DETECTED.into()),
            value: Some(DETECTED_BAD.into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
}

/// The secret's versions by id, each with its stages: no value, so a failed comparison
/// prints none.
fn stages_of(env: &TestEnv, name: &str) -> Vec<(String, Value)> {
    env.secret(name)["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap_or_default().to_string(),
                v["stages"].clone(),
            )
        })
        .collect()
}

/// Our failure detector's StopServiceDeployment (ROLLBACK) is a write like any other: a
/// run whose lease was lost (another machine ran `unlock`) while its new tasks failed on a
/// service without a circuit breaker stops nothing, says so, still counts the service as
/// failed, and the run stops with exit 13 once the follow ends, before it journals the
/// rollout's end or writes anything; `resume` then restores, ending failed_restored (exit 8) with
/// every running task on the previous version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lease_is_lost_stops_no_failed_deployment() {
    // Slow enough that the follow's first poll, right after the redeploy, sees no task
    // failed yet (a failed launch takes 25 virtual seconds, 250 ms here), and that the
    // lease's wait below relaunches tens of tasks, not thousands.
    let t = team_on(start_with(detector_scenario(), 100.0).await, ("3s", "1s")).await;
    let env = &t.env;
    reject_detected_bad_value(env);
    let before = env.current_version(DETECTED);

    // Held at the follow's DescribeServices once the journal shows the redeploy and the
    // follow knows the service deployment to stop (it has described it: the second poll
    // on, whose DescribeServiceDeployments goes before DescribeServices). What this
    // DescribeServices answers once let go counts the failed tasks; then come only reads
    // (ListTasks and DescribeTasks for the stopped reasons), our detector, and its
    // StopServiceDeployment: the next write. Not the first poll's: the follow does not
    // know the service deployment yet and would stop nothing, lease or not (so the test
    // could not tell the check from its absence). The looks before the write go on,
    // released one at a time.
    env.gate(vec![FaultRule::gate("ecs", "DescribeServices")]);
    let mut args = replace_args("--value-stdin");
    args[1] = DETECTED;
    args.extend(["--max-task-failures", "1", "--timeout", "30m"]);
    let mut first = t.spawn("a", &args, DETECTED_BAD.as_bytes());
    let state_a = t.state("a");
    let held = env
        .advance_until(
            &mut first,
            "the follow's look with its deployment known",
            |e, _| {
                local_count(&state_a, "redeployed") == 1
                    && e.calls("DescribeServiceDeployments") > 0
            },
        )
        .await;
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(common::gate::service_of(&held[0]), DETECTED_SERVICE);
    // Still the rollout's follow: no phase finished, nothing restored, one redeploy.
    let local = local_records(&state_a);
    assert_eq!(count(&local, "phase_finished"), 0, "{local:?}");
    assert_eq!(deployed(env), 1, "our redeploy only");
    let now = env.current_version(DETECTED);
    assert_ne!(now, before, "the new version is current");
    let written = stages_of(env, DETECTED);
    let moves = env.calls("UpdateSecretVersionStage");
    let rotation = local[0]["rotation_id"].as_str().unwrap().to_string();
    let journaled = local;

    let unlocked = t
        .run(
            "b",
            &["unlock", DETECTED, "--env", "production", "--yes"],
            None,
        )
        .await;
    assert_eq!(unlocked.status.code(), Some(0), "{}", text(&unlocked));
    assert!(t.lock_keys().await.is_empty());
    // As in the tests above: the lease (3s) runs out on the real clock once the lock is
    // gone. This wait is the lease's, not a timing assertion; the new tasks keep failing
    // meanwhile, so the look let go below counts at least one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    env.open_gate();

    let status = tokio::task::spawn_blocking(move || first.wait().unwrap())
        .await
        .unwrap();
    let out = t.output_of("a");
    // Ground truth: the detector stopped nothing, and the restore wrote nothing.
    assert_eq!(
        env.calls("StopServiceDeployment"),
        0,
        "no ROLLBACK after the loss\n{out}"
    );
    assert_eq!(
        stages_of(env, DETECTED),
        written,
        "AWSCURRENT not moved back\n{out}"
    );
    assert_eq!(env.calls("UpdateSecretVersionStage"), moves);
    assert_eq!(deployed(env), 1, "no restore redeploy");
    // Stopped once the follow ended, before journaling its end or the restore's write.
    assert_eq!(status.code(), Some(13), "{out}");
    assert!(out.contains("error: lost the lock on"), "{out}");
    assert!(
        out.contains(&format!("secret-rollout resume {rotation}")),
        "{out}"
    );
    // The detector counted the failures (the service failed all the same) and said why
    // it stopped nothing.
    assert!(
        out.lines().any(|l| l.contains(&format!("{DETECTED_SERVICE}: "))
            && l.contains("of the new deployment's tasks failed (threshold 1; --max-task-failures sets it): its service deployment not stopped: ")),
        "{out}"
    );
    // Nothing journaled nor pushed after the loss: the run stops right after the follow,
    // before the rollout's end is journaled, and the bucket holds what it held.
    let local = local_records(&state_a);
    assert_eq!(local, journaled, "nothing journaled after the loss");
    assert_eq!(
        t.bucket_records().await,
        journaled,
        "nothing pushed after the loss"
    );

    let resumed = t
        .run(
            "a",
            &[
                "resume",
                "--env",
                "production",
                "--yes",
                "--max-poll",
                "50ms",
                "--timeout",
                "30m",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(
        resumed.status.code(),
        Some(secret_rollout_core::error::exit::FAILED_RESTORED),
        "{}",
        text(&resumed)
    );
    let report: Value = serde_json::from_slice(&resumed.stdout).unwrap();
    assert_eq!(report["outcome"], "failed_restored", "{}", text(&resumed));
    assert_eq!(report["rotation_id"], rotation.as_str());
    assert_eq!(
        env.current_version(DETECTED),
        before,
        "AWSCURRENT moved back"
    );
    assert_eq!(env.version_count(DETECTED), 2);
    assert_eq!(env.running_tasks(DETECTED_SERVICE).len(), DETECTED_DESIRED);
    assert_eq!(
        env.versions_read(DETECTED_SERVICE, DETECTED),
        [before.clone()].into(),
        "every running task resolved the previous version"
    );
    let local = local_records(&state_a);
    assert_eq!(count(&local, "finished"), 1, "{local:?}");
    assert_eq!(t.bucket_records().await, local);
    assert!(t.lock_keys().await.is_empty(), "the lock is released");
}

/// A TCP proxy in front of moto that can be cut: S3 unreachable on demand.
struct Cut {
    endpoint: String,
    down: Arc<AtomicBool>,
}

async fn cut_proxy(target: &str) -> Cut {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let target = target.trim_start_matches("http://").to_string();
    let down = Arc::new(AtomicBool::new(false));
    let flag = down.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            if flag.load(Ordering::SeqCst) {
                continue; // dropped: connection closed
            }
            let target = target.clone();
            let flag = flag.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let cut = async {
                    while !flag.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut => {}
                }
            });
        }
    });
    Cut { endpoint, down }
}

/// S3 unreachable in the middle of a rotation: its records stay local, the rotation goes
/// on, and the next record once S3 is back pushes them all; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_made_while_s3_is_unreachable_are_pushed_by_the_next_record() {
    unreachable_mid_rotation(true).await;
}

/// S3 still unreachable when the rotation ends: the next command (`history`) pushes what
/// the run kept locally.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_kept_locally_at_exit_are_pushed_by_the_next_command() {
    unreachable_mid_rotation(false).await;
}

async fn unreachable_mid_rotation(back_before_the_end: bool) {
    let mut t = team(("30s", "1s")).await;
    let cut = cut_proxy(&t.s3_endpoint).await;
    t.s3_endpoint = cut.endpoint.clone();
    let env = &t.env;
    // After the write the redeploys wait at the gate: S3 goes down there (the started
    // and written records are in the bucket). The redeploys then go on, and the follow's
    // first poll waits at the gate with the three redeploys journalled locally: S3 comes
    // back there (or not, until the run ended).
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut run = t.spawn("a", &replace_args("--generate"), b"");
    let state_a = t.state("a");
    env.wait_held(&mut run, "the redeploys at the gate", READERS.len())
        .await;
    let t0 = Instant::now();
    while t.bucket_records().await.len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{}",
            t.output_of("a")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        count(&t.bucket_records().await, "written"),
        1,
        "the write reached the bucket before S3 went down"
    );
    cut.down.store(true, Ordering::SeqCst);
    env.gate(vec![FaultRule::gate("ecs", "DescribeServices")]);
    env.release(Which::All, Release::Run);
    env.advance_until(
        &mut run,
        "following, redeployed while S3 is down",
        |_, _| local_count(&state_a, "redeployed") == READERS.len(),
    )
    .await;
    let during = t.bucket_records().await;
    assert_eq!(
        count(&during, "redeployed"),
        0,
        "S3 was unreachable: {during:?}"
    );
    if back_before_the_end {
        cut.down.store(false, Ordering::SeqCst);
    }
    env.open_gate();
    let status = tokio::task::spawn_blocking(move || run.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", t.output_of("a"));
    let local = local_records(&state_a);
    assert_eq!(count(&local, "finished"), 1);
    if !back_before_the_end {
        assert_eq!(
            t.bucket_records().await,
            during,
            "nothing reached S3 while down"
        );
        cut.down.store(false, Ordering::SeqCst);
        let history = t
            .run(
                "a",
                &["history", "--env", "production", "--output", "json"],
                None,
            )
            .await;
        assert_eq!(history.status.code(), Some(0), "{}", text(&history));
    }
    assert_eq!(
        t.bucket_records().await,
        local,
        "every record reached the bucket"
    );
    assert_readers_hold(env, &env.current_version(SHARED));
}

/// A fake S3 that denies everything (moto does not enforce IAM by default).
fn denying_s3() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 65536];
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut buf);
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>1</RequestId></Error>";
            let _ = write!(
                s,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    endpoint
}

/// Bad state settings: one error line naming the fix, exit 2 or 3, nothing written to
/// Secrets Manager or ECS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_state_settings_are_refused_before_any_write() {
    let mut t = team(("8s", "2s")).await;
    let deny = denying_s3();
    for (state, endpoint, code, says) in [
        ("s3://", None, 2, "has no bucket name"),
        ("s3:///prefix", None, 2, "has no bucket name"),
        ("https://team-state/x", None, 2, "is not an s3:// URL"),
        (
            "s3://no-such-bucket/x",
            None,
            2,
            "the state bucket no-such-bucket of environment production does not exist",
        ),
        (
            "s3://team-state/x",
            Some(deny.clone()),
            3,
            "access denied to the state bucket s3://team-state/x/",
        ),
    ] {
        write_config(&t.env, state);
        if let Some(e) = &endpoint {
            t.s3_endpoint = e.clone();
        }
        let out = t.run("a", &replace_args("--generate"), None).await;
        assert_eq!(out.status.code(), Some(code), "{state}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(errors.len(), 1, "{state}: {err}");
        assert!(errors[0].contains(says), "{state}: {err}");
        assert!(err.contains("\n  hint: "), "{state}: {err}");
        assert!(t.env.calls_of("PutSecretValue").is_empty(), "{state}");
        assert!(t.env.calls_of("UpdateService").is_empty(), "{state}");
        assert_eq!(t.env.version_count(SHARED), 1, "{state}");
    }
    // history and status say the same for a missing bucket.
    write_config(&t.env, "s3://no-such-bucket/x");
    t.s3_endpoint = t.moto.endpoint.clone();
    let out = t.run("a", &["history", "--env", "production"], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}
