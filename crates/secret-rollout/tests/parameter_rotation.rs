//! Parameter Store parameters through the real binary, against the sandbox: `replace
//! ssm:NAME` (or its ARN) redeploys every service whose task definition reads it (by name
//! or ARN), proves every task resolved our version; a bad value is restored as a new
//! version; `rollback` writes the previous value again; `kill -9` at each step and `resume`
//! end with exactly one new version, never a second `PutParameter`. Ground truth from the
//! sandbox's state (each task's resolved parameter version) and its call log.

mod common;

use std::process::{Child, Output, Stdio};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultRule, Release, Which};
use sandbox::Scenario;
use serde_json::Value;

use common::gate::wait_for;
use common::{start_with, text, TestEnv};

const PARAM: &str = "/production/web/api_key";
const READERS: [&str; 2] = ["web", "worker"];

const SCENARIO: &str = r#"
[[parameters]]
name = "/production/web/api_key"
value = "second-api-key-value"
versions = ["first-api-key-value"]
key_id = "alias/production"
tier = "Advanced"

[[parameters]]
name = "/production/web/plain"
value = "a-clear-text-setting"
type = "String"

[[clusters]]
clusterName = "params"

[[task_definitions]]
family = "web"
[[task_definitions.containerDefinitions]]
name = "app"
image = "nginx:1"
essential = true
secrets = [{ name = "API_KEY", valueFrom = "/production/web/api_key" }]

[[task_definitions]]
family = "worker"
[[task_definitions.containerDefinitions]]
name = "app"
image = "nginx:1"
essential = true
secrets = [{ name = "API_KEY", valueFrom = "arn:aws:ssm:eu-west-1:123456789012:parameter/production/web/api_key" }]

[[task_definitions]]
family = "static"
[[task_definitions.containerDefinitions]]
name = "app"
image = "nginx:1"
essential = true
secrets = [{ name = "PLAIN", valueFrom = "/production/web/plain" }]

[[services]]
cluster = "params"
serviceName = "web"
taskDefinition = "web"
desiredCount = 2
deploymentConfiguration = { minimumHealthyPercent = 50, maximumPercent = 200, deploymentCircuitBreaker = { enable = true, rollback = true } }

[[services]]
cluster = "params"
serviceName = "worker"
taskDefinition = "worker"
desiredCount = 1
deploymentConfiguration = { minimumHealthyPercent = 0, maximumPercent = 200, deploymentCircuitBreaker = { enable = true, rollback = true } }

[[services]]
cluster = "params"
serviceName = "static"
taskDefinition = "static"
desiredCount = 1
"#;

const CONFIG: &str = r#"
[environments.production]
region = "eu-west-1"
clusters = ["params"]
secret_prefix = "production/"
parameter_prefix = "/production/"
"#;

async fn start() -> TestEnv {
    let env = start_with(Scenario::from_toml(SCENARIO).expect("scenario"), 2000.0).await;
    std::fs::write(env.dir.path().join("secret-rollout.toml"), CONFIG).expect("config");
    env
}

fn args<'a>(cmd: &'a str, target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        cmd,
        target,
        "--env",
        "production",
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

/// The parameter's versions in the sandbox: (number, key, tier, writer), oldest first.
fn versions(env: &TestEnv) -> Vec<Value> {
    let state = env.state();
    let p = state["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == PARAM)
        .expect("the parameter")
        .clone();
    p["versions"].as_array().expect("versions").clone()
}

fn latest(env: &TestEnv) -> u64 {
    versions(env)
        .last()
        .and_then(|v| v["version"].as_u64())
        .expect("a version")
}

/// The parameter versions the running tasks of `service` resolved.
fn resolved(env: &TestEnv, service: &str) -> Vec<u64> {
    let tasks = env.running_tasks(service);
    assert!(!tasks.is_empty(), "{service} runs tasks");
    tasks
        .iter()
        .map(|t| {
            let p = t["parameters"].as_array().expect("parameters");
            assert_eq!(p.len(), 1, "{service}: one parameter read: {t}");
            assert_eq!(p[0]["name"], PARAM);
            p[0]["version"].as_u64().expect("a version")
        })
        .collect()
}

/// UpdateService calls the sandbox accepted, per service.
fn deployments(env: &TestEnv, service: &str) -> usize {
    env.calls_of("UpdateService")
        .iter()
        .filter(|c| c["error"].is_null() && c["subject"]["service"] == service)
        .count()
}

fn puts(env: &TestEnv) -> usize {
    env.calls_of("PutParameter").len()
}

async fn value_of(env: &TestEnv, version: u64) -> String {
    env.clients
        .ssm
        .get_parameter()
        .name(format!("{PARAM}:{version}"))
        .with_decryption(true)
        .send()
        .await
        .expect("GetParameter")
        .parameter()
        .and_then(|p| p.value())
        .expect("a value")
        .to_string()
}

/// Every journal record, oldest rotation first.
fn records(env: &TestEnv) -> Vec<Value> {
    let dir = env.state_dir().join("rotations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .expect("journal")
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn kinds(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .map(|r| r["type"].as_str().unwrap_or("?").to_string())
        .filter(|t| t != "redeployed")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_by_name_redeploys_every_reader_by_name_or_arn_and_proves_it() {
    let env = start().await;
    let out = env
        .run(
            &args("replace", "ssm:web/api_key", &["--value-stdin"]),
            Some(b"third-api-key-value"),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "verified", "{report}");
    assert_eq!(puts(&env), 1, "one PutParameter");
    let v = versions(&env);
    assert_eq!(v.len(), 3);
    let ours = &v[2];
    assert_eq!(ours["version"], 3);
    // The overwrite kept the key and tier.
    assert_eq!(ours["key_id"], "alias/production", "{ours}");
    assert_eq!(ours["tier"], "Advanced", "{ours}");
    assert_eq!(value_of(&env, 3).await, "third-api-key-value");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 3).count(),
            0,
            "{svc}"
        );
        assert_eq!(deployments(&env, svc), 1, "{svc} deployed once");
    }
    assert_eq!(
        deployments(&env, "static"),
        0,
        "a reader of another parameter is left alone"
    );
    // The journal: the intent (previous version, caller) before the write.
    let r = records(&env);
    assert_eq!(
        kinds(&r),
        ["started", "intent", "written", "phase_finished", "finished"]
    );
    let intent = &r[1];
    assert_eq!(intent["previous_version_id"], "2");
    assert_eq!(intent["phase"], "rollout");
    assert!(intent["caller_arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:"));
    assert_eq!(
        r.iter().find(|x| x["type"] == "written").unwrap()["version_id"],
        "3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_by_arn_and_rollback_writes_the_previous_value_again() {
    let env = start().await;
    let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/production/web/api_key";
    let out = env
        .run(
            &args("replace", arn, &["--value-stdin"]),
            Some(b"third-api-key-value"),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let id = json(&out)["rotation_id"].as_str().unwrap().to_string();
    let out = env.run(&args("rollback", &id, &[]), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified", "{}", text(&out));
    assert_eq!(puts(&env), 2, "one write each");
    assert_eq!(latest(&env), 4);
    assert_eq!(value_of(&env, 4).await, "second-api-key-value");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 4).count(),
            0,
            "{svc}"
        );
        assert_eq!(deployments(&env, svc), 2, "{svc}: rollout and rollback");
    }
    let restored: Vec<Value> = records(&env)
        .into_iter()
        .filter(|r| r["type"] == "restored")
        .collect();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["version_id"], "4");
    assert_eq!(restored[0]["value_of"], "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_value_is_restored_as_a_new_version_and_proven() {
    let env = start().await;
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .ecs
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: Some("web".into()),
            secret: Some(PARAM.into()),
            value: Some("a-bad-api-key-value".into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
    let out = env
        .run(
            &args("replace", "ssm:/production/web/api_key", &["--value-stdin"]),
            Some(b"a-bad-api-key-value"),
        )
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "failed_restored");
    assert_eq!(puts(&env), 2, "the new value, then the previous one again");
    assert_eq!(latest(&env), 4);
    assert_eq!(value_of(&env, 4).await, "second-api-key-value");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 4).count(),
            0,
            "{svc}"
        );
    }
    let r = records(&env);
    let intents: Vec<&Value> = r.iter().filter(|x| x["type"] == "intent").collect();
    assert_eq!(intents.len(), 2);
    assert_eq!(intents[1]["phase"], "restore");
    assert_eq!(intents[1]["previous_version_id"], "3");
    let restored: Vec<&Value> = r.iter().filter(|x| x["type"] == "restored").collect();
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["version_id"], "4");
    assert_eq!(restored[0]["value_of"], "2");
}

fn spawn(env: &TestEnv, args: &[&str], stdin: &[u8]) -> Child {
    let mut cmd = env.cli();
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(env.dir.path().join("spawned.err")).expect("stderr file"));
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

/// Waits until `n` calls are held; a tool that ended first fails the test with its stderr.
async fn wait_held(env: &TestEnv, child: &mut Child, what: &str, n: usize) {
    wait_for(what, || {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the tool ended ({status}) before {what}: {}",
                std::fs::read_to_string(env.dir.path().join("spawned.err")).unwrap_or_default()
            );
        }
        env.held().len() >= n
    })
    .await;
}

fn kill_9(child: &mut Child) {
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    assert_eq!(status.code(), None, "killed by a signal");
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Moment {
    /// The intent journaled, PutParameter held and never run.
    WriteNeverArrived,
    /// The intent journaled, PutParameter run by AWS after the tool died (its answer lost).
    WriteAnswerLost,
    /// The write journaled, the redeploys held.
    AfterTheWrite,
    /// Every redeploy journaled, following.
    WhileFollowing,
}

async fn kill_at(moment: Moment) {
    let env = start().await;
    let value = b"kill-nine-api-key-value";
    let replace = args("replace", "ssm:web/api_key", &["--value-stdin"]);
    let mut child = match moment {
        Moment::WriteNeverArrived | Moment::WriteAnswerLost => {
            env.gate(vec![FaultRule::gate("ssm", "PutParameter")]);
            let mut child = spawn(&env, &replace, value);
            wait_held(&env, &mut child, "the write at the gate", 1).await;
            child
        }
        Moment::AfterTheWrite => {
            env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
            let mut child = spawn(&env, &replace, value);
            wait_for("the redeploys at the gate", || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "the tool ended ({status}): {}",
                        std::fs::read_to_string(env.dir.path().join("spawned.err"))
                            .unwrap_or_default()
                    );
                }
                env.held().len() >= READERS.len()
            })
            .await;
            child
        }
        Moment::WhileFollowing => {
            env.gate(vec![FaultRule::gate("ecs", "DescribeServices")]);
            let mut child = spawn(&env, &replace, value);
            env.advance_until(&mut child, "following", |env, _| {
                env.state_dir().join("rotations").is_dir()
                    && records(env)
                        .iter()
                        .filter(|r| r["type"] == "redeployed")
                        .count()
                        == READERS.len()
            })
            .await;
            child
        }
    };
    kill_9(&mut child);
    let how = if moment == Moment::WriteAnswerLost {
        Release::Run
    } else {
        Release::Drop
    };
    env.release(Which::All, how);
    env.open_gate();
    let r = records(&env);
    assert_eq!(
        r.iter().filter(|x| x["type"] == "intent").count(),
        1,
        "{moment:?}: {r:?}"
    );
    let written_journaled = matches!(moment, Moment::AfterTheWrite | Moment::WhileFollowing);
    assert_eq!(
        r.iter().filter(|x| x["type"] == "written").count(),
        usize::from(written_journaled),
        "{moment:?}"
    );
    let written = moment != Moment::WriteNeverArrived;
    if written {
        wait_for("the held write ran", || latest(&env) == 3).await;
    }
    assert_eq!(latest(&env), 2 + u64::from(written), "{moment:?}");
    let before = puts(&env);
    let mut resume = vec!["resume", "--yes", "--max-poll", "50ms", "--output", "json"];
    if !written {
        // The value was never stored: it is asked for again.
        resume.push("--value-stdin");
    }
    let out = env.run(&resume, (!written).then_some(&value[..])).await;
    assert_eq!(out.status.code(), Some(0), "{moment:?}: {}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified");
    assert_eq!(latest(&env), 3, "{moment:?}: exactly one new version");
    assert_eq!(
        puts(&env) - before,
        usize::from(!written),
        "{moment:?}: no second PutParameter"
    );
    assert_eq!(value_of(&env, 3).await, "kill-nine-api-key-value");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 3).count(),
            0,
            "{moment:?}: {svc}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_the_write_held_then_resume_asks_the_value_again() {
    kill_at(Moment::WriteNeverArrived).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_the_answer_of_the_write_lost_then_resume_finds_it_in_the_history() {
    kill_at(Moment::WriteAnswerLost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_after_the_write_then_resume() {
    kill_at(Moment::AfterTheWrite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_following_then_resume() {
    kill_at(Moment::WhileFollowing).await;
}

/// The situation `resume` cannot place: a `replace` killed with its `PutParameter` held,
/// which AWS then runs (version 3, ours), and the same credentials write once more
/// (version 4): two candidates after the intent's version 2.
async fn two_candidate_writes(env: &TestEnv) {
    env.gate(vec![FaultRule::gate("ssm", "PutParameter")]);
    let replace = args("replace", "ssm:web/api_key", &["--value-stdin"]);
    let mut child = spawn(env, &replace, b"kill-nine-api-key-value");
    wait_held(env, &mut child, "the write at the gate", 1).await;
    kill_9(&mut child);
    env.release(Which::All, Release::Run);
    env.open_gate();
    wait_for("the held write ran", || latest(env) == 3).await;
    // The same credentials write once more (a colleague on the same role, a script).
    let spec = secret_rollout_core::parameter::WriteSpec {
        kind: "SecureString".into(),
        key_id: Some("alias/production".into()),
        tier: "Advanced".into(),
        data_type: "text".into(),
    };
    secret_rollout_core::aws::ssm::put(
        &env.clients.ssm,
        PARAM,
        &spec,
        &secret_rollout_core::value::SecretValue::new("another-api-key-value".to_string()),
    )
    .await
    .expect("PutParameter");
}

/// Two versions by the same caller after the intent: the history cannot say which is this
/// rotation's. `resume` stops (exit 6) with a hint, writes nothing, and leaves it open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_history_stops_resume_without_a_write() {
    let env = start().await;
    two_candidate_writes(&env).await;
    let before = puts(&env);
    let out = env
        .run(&["resume", "--yes", "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot tell whether rotation"), "{err}");
    assert!(
        err.contains("aws ssm get-parameter-history --name /production/web/api_key"),
        "{err}"
    );
    assert_eq!(puts(&env), before, "nothing written");
    assert_eq!(latest(&env), 4);
    assert!(
        records(&env).iter().all(|r| r["type"] != "finished"),
        "the rotation stays open"
    );
}

/// The rotation id journaled in the state directory (the one rotation there).
fn rotation_of(env: &TestEnv) -> String {
    let r = records(env);
    let started: Vec<&Value> = r.iter().filter(|r| r["type"] == "started").collect();
    assert_eq!(started.len(), 1, "one rotation: {started:?}");
    started[0]["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string()
}

/// The way out of the ambiguous stop is the command its hint names: pasted with the version
/// the operator picked (4, the latest, the value they want live) it writes nothing,
/// journals the version as named by the operator, redeploys both readers and proves every
/// task resolved 4; the rotation is finished (`history` lists it verified, `plan` reports
/// no unfinished rotation), so the stop does not come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ambiguous_stop_names_resume_written_and_that_command_finishes_it_without_a_write() {
    let env = start().await;
    two_candidate_writes(&env).await;
    let rotation = rotation_of(&env);
    let out = env
        .run(&["resume", "--yes", "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !err.contains("redeploy --secret"),
        "not the refused way: {err}"
    );
    assert!(
        err.contains("if VERSION holds the value you want live"),
        "{err}"
    );
    let pasted = err
        .split('`')
        .find(|c| c.contains("--written VERSION"))
        .unwrap_or_else(|| panic!("the hint names resume --written: {err}"));
    assert!(
        pasted.starts_with(&format!(
            "secret-rollout resume {rotation} --written VERSION"
        )),
        "{pasted}"
    );
    let before_puts = puts(&env);
    let before_deploys: Vec<usize> = READERS.iter().map(|s| deployments(&env, s)).collect();
    let mut argv: Vec<String> = pasted
        .replace("VERSION", "4")
        .split_whitespace()
        .skip(1)
        .map(String::from)
        .collect();
    argv.extend(["--max-poll", "50ms", "--output", "json"].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = env.run(&argv, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified", "{}", text(&out));
    assert_eq!(puts(&env), before_puts, "no PutParameter by the resume");
    assert_eq!(latest(&env), 4);
    for (svc, before) in READERS.iter().zip(before_deploys) {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 4).count(),
            0,
            "{svc}: every running task resolved version 4"
        );
        assert_eq!(deployments(&env, svc), before + 1, "{svc} redeployed once");
    }
    let r = records(&env);
    let written: Vec<&Value> = r.iter().filter(|r| r["type"] == "written").collect();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0]["version_id"], "4");
    assert_eq!(written[0]["operator_named"], true, "{}", written[0]);
    let finished: Vec<&Value> = r.iter().filter(|r| r["type"] == "finished").collect();
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0]["outcome"], "verified");

    let out = env
        .run(
            &["history", "--env", "production", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(listed.contains(&rotation), "{listed}");
    let out = env
        .run(
            &[
                "plan",
                "ssm:web/api_key",
                "--env",
                "production",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = json(&out);
    let locks = plan["locks"].as_array().expect("locks");
    assert!(
        locks.iter().all(|l| l["unfinished"].is_null()),
        "no unfinished rotation: {plan}"
    );
    // Nothing left to resume.
    let out = env.run(&["resume", "--yes"], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("there is no unfinished rotation"),
        "{}",
        text(&out)
    );
}

/// Naming a version that is no longer the latest (3, which this rotation did write, with
/// the colleague's 4 over it): the proof rule stands, ECS runs 4, so the run ends
/// superseded (exit 11), without a write and without restoring over 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_written_with_a_version_no_longer_the_latest_ends_superseded() {
    let env = start().await;
    two_candidate_writes(&env).await;
    let rotation = rotation_of(&env);
    let before = puts(&env);
    let out = env
        .run(
            &[
                "resume",
                &rotation,
                "--written",
                "3",
                "--yes",
                "--max-poll",
                "50ms",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(11), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "superseded", "{}", text(&out));
    assert_eq!(puts(&env), before, "no PutParameter");
    assert_eq!(latest(&env), 4, "nothing restored over 4");
}

/// `--written` names a version this rotation could have written, or nothing happens: one
/// that is not in the history, or not newer than the version the intent overwrote (2), is
/// refused with exit 2 and one line, before any write or redeploy; the rotation stays open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_written_refuses_a_version_the_rotation_cannot_have_written() {
    let env = start().await;
    two_candidate_writes(&env).await;
    let rotation = rotation_of(&env);
    let before = puts(&env);
    for (version, says) in [
        ("9", "has no version 9 in its history"),
        ("2", "is not newer than 2"),
        ("1", "is not newer than 2"),
    ] {
        let out = env
            .run(
                &[
                    "resume",
                    &rotation,
                    "--written",
                    version,
                    "--yes",
                    "--max-poll",
                    "50ms",
                ],
                None,
            )
            .await;
        assert_eq!(out.status.code(), Some(2), "{version}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains(says), "{version}: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "one error line: {err}"
        );
    }
    assert_eq!(puts(&env), before, "nothing written");
    assert!(env.calls_of("UpdateService").is_empty(), "no redeploy");
    assert!(
        records(&env)
            .iter()
            .all(|r| r["type"] != "finished" && r["type"] != "written"),
        "the rotation stays open, nothing journaled as written"
    );
}

/// A parameter rotation whose write never arrived is not stuck on an ambiguous write (the
/// history says it never happened): `--written` is refused (exit 2) with the plain `resume`
/// it needs, nothing written, no redeploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_written_refuses_a_rotation_not_stuck_on_an_ambiguous_write() {
    let env = start().await;
    env.gate(vec![FaultRule::gate("ssm", "PutParameter")]);
    let replace = args("replace", "ssm:web/api_key", &["--value-stdin"]);
    let mut child = spawn(&env, &replace, b"never-arrived-api-key-value");
    wait_held(&env, &mut child, "the write at the gate", 1).await;
    kill_9(&mut child);
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let rotation = rotation_of(&env);
    // Refused as not stuck before the version is looked at.
    let out = env
        .run(
            &[
                "resume",
                &rotation,
                "--written",
                "2",
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("is not stuck on a parameter write the history cannot place"),
        "{err}"
    );
    assert!(
        err.contains(&format!("secret-rollout resume {rotation}`")),
        "the hint: resume without --written: {err}"
    );
    assert_eq!(latest(&env), 2, "nothing written");
    assert!(env.calls_of("UpdateService").is_empty(), "no redeploy");
    assert!(records(&env).iter().all(|r| r["type"] != "written"));
}

/// `--written` is for Parameter Store only: on a Secrets Manager rotation (killed before its
/// write) it is refused with exit 2, nothing written, no redeploy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_written_refuses_a_secrets_manager_rotation() {
    let scenario = format!(
        "{SCENARIO}\n[[secrets]]\nname = \"production/other_key\"\nvalue = \"the-other-key-value\"\n"
    );
    let env = start_with(Scenario::from_toml(&scenario).expect("scenario"), 2000.0).await;
    std::fs::write(env.dir.path().join("secret-rollout.toml"), CONFIG).expect("config");
    env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
    let replace = args("replace", "production/other_key", &["--value-stdin"]);
    let mut child = spawn(&env, &replace, b"a-new-other-key-value");
    wait_held(&env, &mut child, "the write at the gate", 1).await;
    kill_9(&mut child);
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let rotation = rotation_of(&env);
    let before = env.calls_of("PutSecretValue").len();
    let out = env
        .run(
            &[
                "resume",
                &rotation,
                "--written",
                "1",
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        err.contains("rotates Secrets Manager secret production/other_key"),
        "{err}"
    );
    assert_eq!(
        env.calls_of("PutSecretValue").len(),
        before,
        "nothing written"
    );
    assert_eq!(puts(&env), 0);
    assert!(env.calls_of("UpdateService").is_empty(), "no redeploy");
}

/// Killed while the restore's write (the previous value again) waits, after AWS ran it:
/// `resume` finds that version by the restore's intent, writes nothing, and proves it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_the_restore_write_then_resume_finishes_the_restore_without_a_write() {
    let env = start().await;
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .ecs
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: Some("web".into()),
            secret: Some(PARAM.into()),
            value: Some("a-bad-api-key-value".into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
    env.gate(vec![FaultRule::gate("ssm", "PutParameter")]);
    let replace = args("replace", "ssm:web/api_key", &["--value-stdin"]);
    let mut child = spawn(&env, &replace, b"a-bad-api-key-value");
    wait_held(&env, &mut child, "the rollout's write at the gate", 1).await;
    env.release(Which::All, Release::Run);
    // The rollout fails on the bad value; the restore journals its intent and writes.
    wait_held(&env, &mut child, "the restore's write at the gate", 1).await;
    let intents: Vec<Value> = records(&env)
        .into_iter()
        .filter(|r| r["type"] == "intent")
        .collect();
    assert_eq!(intents.len(), 2, "{intents:?}");
    assert_eq!(intents[1]["phase"], "restore");
    kill_9(&mut child);
    env.release(Which::All, Release::Run);
    env.open_gate();
    wait_for("the held restore write ran", || latest(&env) == 4).await;
    assert_eq!(puts(&env), 2);
    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "failed_restored");
    assert_eq!(puts(&env), 2, "no second write of the previous value");
    assert_eq!(latest(&env), 4, "exactly one restore version");
    assert_eq!(value_of(&env, 4).await, "second-api-key-value");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 4).count(),
            0,
            "{svc}"
        );
    }
    let restored: Vec<Value> = records(&env)
        .into_iter()
        .filter(|r| r["type"] == "restored")
        .collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    assert_eq!(restored[0]["version_id"], "4");
    assert_eq!(restored[0]["value_of"], "2");
}

/// `plan`, `status` and `history` take a parameter: the plan names both readers (by name
/// and by ARN) and writes nothing; after a write outside the tool `status` counts every
/// running task stale (exit 1); `history` lists the versions, the latest marked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_status_and_history_accept_a_parameter() {
    let env = start().await;
    let ro = |cmd: &'static str| {
        vec![
            cmd,
            "ssm:web/api_key",
            "--env",
            "production",
            "--output",
            "json",
        ]
    };
    let out = env.run(&ro("plan"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(plan["secrets"][0]["name"], "ssm:/production/web/api_key");
    assert_eq!(plan["secrets"][0]["current_version"], "2");
    let mut redeploy: Vec<&str> = plan["redeploy"]
        .as_array()
        .expect("redeploy")
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    redeploy.sort_unstable();
    assert_eq!(redeploy, READERS);
    let out = env.run(&ro("status"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["stale"], 0);
    assert_eq!(puts(&env), 0, "plan and status write nothing");

    // Someone writes a new version outside the tool: every running task is stale.
    let spec = secret_rollout_core::parameter::WriteSpec {
        kind: "SecureString".into(),
        key_id: Some("alias/production".into()),
        tier: "Advanced".into(),
        data_type: "text".into(),
    };
    secret_rollout_core::aws::ssm::put(
        &env.clients.ssm,
        PARAM,
        &spec,
        &secret_rollout_core::value::SecretValue::new("outside-api-key-value".to_string()),
    )
    .await
    .expect("PutParameter");
    let out = env.run(&ro("status"), None).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let running: usize = READERS.iter().map(|s| env.running_tasks(s).len()).sum();
    assert_eq!(running, 3);
    assert_eq!(json(&out)["stale"], running, "{}", text(&out));
    assert_eq!(json(&out)["secrets"][0]["current"], "3");

    let out = env.run(&ro("history"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let h = json(&out);
    let versions: Vec<(&str, Vec<&str>)> = h["secret"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap(),
                v["stages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [("1", vec![]), ("2", vec![]), ("3", vec!["latest"])]
    );

    // `redeploy --secret` rolls the outside version out and proves it; status is clean.
    let out = env
        .run(
            &[
                "redeploy",
                "--secret",
                "ssm:web/api_key",
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified");
    for svc in READERS {
        assert_eq!(
            resolved(&env, svc).iter().filter(|&&x| x != 3).count(),
            0,
            "{svc}"
        );
    }
    assert_eq!(deployments(&env, "static"), 0);
    let out = env.run(&ro("status"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(puts(&env), 1, "only the outside write");
}

/// Every value a parameter rotation touches (the new one, the previous one it reads and
/// writes again on restore, the one a rollback writes) stays off stdout, stderr and the
/// state directory at `RUST_LOG=trace`, and under the spellings that aim at the SSM SDK
/// and its HTTP stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_rotation_shows_no_value_even_at_trace() {
    let env = start().await;
    const PREVIOUS: &str = "second-api-key-value";
    const BAD: &str = "leak-canary-bad-3e7a0c9d5b21";
    const GOOD: &str = "leak-canary-good-9f2c6b1e8a40";
    let values = [PREVIOUS, BAD, GOOD, "first-api-key-value"];
    let clean = |what: &str, o: &Output| {
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            let s = String::from_utf8_lossy(bytes);
            for v in values {
                assert!(!s.contains(v), "{what}: a value is on {stream}");
            }
        }
    };
    env.sandbox
        .world()
        .lock()
        .expect("world")
        .ecs
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: Some("web".into()),
            secret: Some(PARAM.into()),
            value: Some(BAD.into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
    let traced = |args: &[&str], log: &str| {
        let mut cmd = env.cli();
        cmd.args(args).env("RUST_LOG", log);
        cmd
    };
    let run = |mut cmd: std::process::Command, stdin: Option<&'static str>| async move {
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
            if let Some(v) = stdin {
                let _ = child.stdin.take().expect("stdin").write_all(v.as_bytes());
            }
            child.wait_with_output().expect("finishes")
        })
        .await
        .expect("join")
    };
    // A bad value: written, rejected, the previous value read and written again.
    let out = run(
        traced(
            &args("replace", "ssm:web/api_key", &["--value-stdin"]),
            "trace",
        ),
        Some(BAD),
    )
    .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PutParameter") && err.contains("DEBUG"),
        "trace logging reached the SDK"
    );
    clean("replace (restored)", &out);
    // A good value, then its rollback (the previous value read and written again).
    for log in [
        "aws_sdk_ssm=trace",
        "[{rpc.method=PutParameter}]=trace,aws_smithy_runtime=trace",
    ] {
        let out = run(
            traced(&args("replace", "ssm:web/api_key", &["--value-stdin"]), log),
            Some(GOOD),
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{log}: {}", text(&out));
        clean(log, &out);
        let id = json(&out)["rotation_id"].as_str().unwrap().to_string();
        let out = run(traced(&args("rollback", &id, &[]), log), None).await;
        assert_eq!(out.status.code(), Some(0), "{log}: {}", text(&out));
        clean(log, &out);
    }
    for cmd in ["plan", "status", "history"] {
        let out = run(
            traced(&[cmd, "ssm:web/api_key", "--env", "production"], "trace"),
            None,
        )
        .await;
        assert_eq!(out.status.code(), Some(0), "{cmd}: {}", text(&out));
        clean(cmd, &out);
    }
    // bad, restore, (good, rollback) twice: six writes, each value once per write.
    assert_eq!(puts(&env), 6);
    assert_eq!(latest(&env), 8);
    let mut checked = 0;
    let mut dirs = vec![env.state_dir()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("readable") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let s = String::from_utf8_lossy(&std::fs::read(&p).expect("readable")).to_string();
            for v in values {
                assert!(!s.contains(v), "{} holds a value", p.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 5, "the journals were written: {checked} files");
}

/// The demo's environment has a service reading a SecureString parameter; its rotation
/// there redeploys that service alone and proves both its tasks on the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_environment_rotates_its_parameter() {
    let env = start_with(Scenario::demo(), 2000.0).await;
    const NOTIFY: &str = "/production/notify/api_key";
    let out = env
        .run(
            &[
                "replace",
                "ssm:/production/notify/api_key",
                "--cluster",
                "production-online-lpa",
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified");
    assert_eq!(puts(&env), 1);
    let tasks = env.running_tasks("notify");
    assert_eq!(tasks.len(), 2);
    for t in &tasks {
        assert_eq!(t["parameters"][0]["name"], NOTIFY, "{t}");
        assert_eq!(t["parameters"][0]["version"], 3, "{t}");
    }
    let updated: Vec<String> = env
        .calls_of("UpdateService")
        .iter()
        .map(|c| c["subject"]["service"].as_str().unwrap_or("?").to_string())
        .collect();
    assert_eq!(updated, ["notify"]);
}

/// A `String` parameter (stored unencrypted) is refused, exit 2, by `plan`, `--dry-run`
/// and `replace`, before any write, saying why; `--allow-plaintext` lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_parameter_is_refused_unless_allowed() {
    let env = start().await;
    for a in [
        vec!["plan", "ssm:web/plain", "--env", "production"],
        vec![
            "replace",
            "ssm:web/plain",
            "--env",
            "production",
            "--generate",
            "--dry-run",
        ],
        args("replace", "ssm:web/plain", &["--generate"]),
    ] {
        let out = env.run(&a, None).await;
        assert_eq!(out.status.code(), Some(2), "{a:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("error: parameter ssm:/production/web/plain is a String: its value is stored and shown unencrypted"),
            "{a:?}: {err}"
        );
        assert!(err.contains("--allow-plaintext"), "{a:?}: {err}");
    }
    assert_eq!(puts(&env), 0);
    assert!(env.calls_of("UpdateService").is_empty());
    let out = env
        .run(
            &args(
                "replace",
                "ssm:web/plain",
                &["--generate", "--allow-plaintext"],
            ),
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(json(&out)["outcome"], "verified");
    assert_eq!(puts(&env), 1);
    assert_eq!(deployments(&env, "static"), 1);
    for t in env.running_tasks("static") {
        assert_eq!(t["parameters"][0]["version"], 2, "{t}");
    }
}
