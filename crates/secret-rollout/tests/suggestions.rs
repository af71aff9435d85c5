//! Issue 11: a command never suggests a command that cannot run. The suggestions below are
//! taken from what the tool printed and run as printed (placeholders filled in), against
//! the sandbox, and what they did is checked on its ground truth. The other suggestions
//! are asserted where their errors are tested (see the report of issue 11's sweep).

mod common;

use std::process::{Command, Output, Stdio};

use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::Value;

/// A blue/green service deployed by CodeDeploy that reads the secret the sample's front,
/// api and admin share.
const CODE_DEPLOY_READER: &str = r#"
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
  { name = "RECIPIENTS", valueFrom = "/aws/reference/secretsmanager/production/opg_lpa_common_account_cleanup_notification_recipients" },
]

[[services]]
cluster = "production-online-lpa"
serviceName = "bluegreen"
taskDefinition = "production-bluegreen"
desiredCount = 1
launchType = "FARGATE"
deploymentController = { type = "CODE_DEPLOY" }
networkConfiguration = { awsvpcConfiguration = { subnets = ["subnet-0a1b2c3d"], securityGroups = ["sg-0123456789abcdef0"], assignPublicIp = "DISABLED" } }
"#;

const SPEED: f64 = 2000.0;

/// The aws CLI the tests use (`SECRET_ROLLOUT_TEST_AWS`, else `aws`).
fn aws_cli() -> String {
    std::env::var("SECRET_ROLLOUT_TEST_AWS")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "aws".to_string())
}

/// Runs the aws CLI with `args` against the sandbox, with a clean AWS environment.
async fn aws(env: &TestEnv, args: Vec<String>) -> Output {
    let mut cmd = Command::new(aws_cli());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(&k);
        }
    }
    cmd.args(&args)
        .env("AWS_ENDPOINT_URL", env.sandbox.endpoint())
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_CONFIG_FILE", env.dir.path().join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            env.dir.path().join("aws-credentials"),
        )
        .env("AWS_PAGER", "")
        .stdin(Stdio::null());
    tokio::task::spawn_blocking(move || cmd.output().expect("the aws CLI runs"))
        .await
        .expect("join")
}

/// The `error:` and `hint:` lines of a failed command (text output; the plan or progress
/// lines may come before them on stderr).
fn error_and_hint(out: &Output) -> (String, String) {
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err
        .lines()
        .skip_while(|l| !l.starts_with("error: "))
        .filter(|l| !l.starts_with("warning: "))
        .collect();
    let error = lines
        .first()
        .and_then(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| panic!("an error line\n{}", text(out)));
    let hint = lines
        .get(1)
        .and_then(|l| l.strip_prefix("  hint: "))
        .unwrap_or_else(|| panic!("a hint line\n{}", text(out)));
    (error.to_string(), hint.to_string())
}

/// The words of the command in `hint` that starts with `start` and ends before `end`.
fn command_in(hint: &str, start: &str, end: &[char]) -> Vec<String> {
    let from = hint
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in the hint: {hint}"));
    let rest = &hint[from..];
    let to = rest.find(end).unwrap_or(rest.len());
    rest[..to].split_whitespace().map(str::to_string).collect()
}

/// `rollback SECRET` with no journal when a consumer is deployed by CodeDeploy: refused
/// before any change, and both commands its hint prints (the aws CLI stage move, then the
/// one `redeploy` of the consumers ECS deploys) run as printed and restore the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_a_code_deploy_consumer_and_no_journal_suggests_commands_that_run() {
    let mut toml = sandbox::scenario::SAMPLE_TOML.to_string();
    toml.push_str(CODE_DEPLOY_READER);
    let env = start_with(Scenario::from_toml(&toml).expect("scenario"), SPEED).await;
    let before = env.current_version(SHARED);
    // Someone else wrote a new version (so there is an AWSPREVIOUS to go back to), with
    // no secret-rollout journal behind it.
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("someone-elses-new-value")
        .send()
        .await
        .expect("PutSecretValue");
    let theirs = env.current_version(SHARED);
    assert_ne!(theirs, before);

    let out = env
        .run(&["rollback", SHARED, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(
        error.contains("bluegreen") && error.contains("CODE_DEPLOY"),
        "{error}"
    );
    assert!(!hint.contains("--services\n"), "{hint}");
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0, "nothing moved");
    assert_eq!(env.calls("UpdateService"), 0, "nothing deployed");
    assert_eq!(env.current_version(SHARED), theirs);

    // 1. The stage move, as printed.
    let by_hand = command_in(&hint, "aws secretsmanager", &[')']);
    assert_eq!(
        by_hand,
        [
            "aws",
            "secretsmanager",
            "update-secret-version-stage",
            "--secret-id",
            SHARED,
            "--version-stage",
            "AWSCURRENT",
            "--move-to-version-id",
            before.as_str(),
            "--remove-from-version-id",
            theirs.as_str(),
        ],
        "{hint}"
    );
    let moved = aws(&env, by_hand[1..].to_vec()).await;
    assert!(moved.status.success(), "{}", text(&moved));
    assert_eq!(env.current_version(SHARED), before, "AWSCURRENT is back");

    // 2. The redeploy of the others, as printed (with where and --yes).
    let redeploy = command_in(&hint, "secret-rollout redeploy", &[';', ')']);
    assert_eq!(
        redeploy[..5],
        [
            "secret-rollout",
            "redeploy",
            "--secret",
            SHARED,
            "--services"
        ],
        "{hint}"
    );
    let mut services: Vec<&str> = redeploy[5].split(',').collect();
    services.sort();
    assert_eq!(
        services,
        ["admin", "api", "front"],
        "the ECS consumers: {hint}"
    );
    // It carries the --cluster the rollback was given: nothing to add but --yes.
    assert_eq!(redeploy[6..], ["--cluster", CLUSTER], "{hint}");
    let mut args: Vec<&str> = redeploy[1..].iter().map(String::as_str).collect();
    args.extend(["--yes", "--max-poll", "50ms"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    for service in ["admin", "api", "front"] {
        assert_eq!(
            env.versions_read(service, SHARED),
            [before.clone()].into(),
            "{service} holds the restored version"
        );
    }
    assert_eq!(
        env.calls("PutSecretValue"),
        1,
        "only theirs was ever written"
    );
}

/// Giving the current value again (exit 2, nothing written): the hint's `redeploy --secret`
/// names the secret and carries `--config` and `--env`, and pasted as printed it restarts
/// the three readers onto the current version; then the hints that lead from a redeploy's
/// rotation id to `rollback SECRET`, and from `resume` with nothing to resume to `history`,
/// name commands that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_value_redeploy_rollback_and_resume_hints_name_commands_that_run() {
    let env = start(SPEED).await;
    write_config(&env);
    let current = env
        .clients
        .sm
        .get_secret_value()
        .secret_id(SHARED)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("a string secret")
        .to_string();
    let version = env.current_version(SHARED);
    let tasks_before: Vec<Value> = READERS
        .iter()
        .flat_map(|svc| env.running_tasks(svc))
        .collect();
    let out = env
        .run(
            &with_reach(&["replace", SHORT, "--value-stdin", "--yes"]),
            Some(current.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(
        error.ends_with("the new value equals the current one"),
        "{error}"
    );
    let suggested = backticked(&hint);
    assert_eq!(
        suggested,
        [format!(
            "secret-rollout redeploy --secret {SHARED} --config conf/prod.toml --env production"
        )],
        "{hint}"
    );
    assert_eq!(env.calls("PutSecretValue"), 0, "nothing written");
    assert_eq!(env.calls("UpdateService"), 0, "nothing deployed");

    // Pasted as printed: each reader gets one new deployment, and every task it runs is
    // a new one holding the current version.
    let words = pasted(&suggested[0]);
    let out = run_pasted(
        &env,
        &words,
        &["--yes", "--max-poll", "50ms", "--output", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.calls("UpdateService"), READERS.len(), "one per reader");
    assert_eq!(env.calls("PutSecretValue"), 0, "a redeploy writes nothing");
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [version.clone()].into(),
            "{svc}"
        );
        for task in env.running_tasks(svc) {
            assert!(
                !tasks_before.iter().any(|t| t["arn"] == task["arn"]),
                "{svc} runs only tasks started by the redeploy: {task}"
            );
        }
    }
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let id = report["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string();

    // Rolling back that redeploy by id: it wrote nothing; `history` says what it did.
    let out = env
        .run(&["rollback", &id, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout history", &['`']);
    assert_eq!(
        suggested,
        ["secret-rollout", "history", "--cluster", CLUSTER],
        "{hint}"
    );
    let out = env
        .run(
            &suggested[1..]
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "history lists the redeploy\n{}",
        text(&out)
    );

    // A redeploy of services by name changed no secret: roll back a secret by name.
    let out = env
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
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("report");
    let by_name = report["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string();
    let out = env
        .run(&["rollback", &by_name, "--cluster", CLUSTER, "--yes"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout rollback", &[')']);
    assert_eq!(
        suggested,
        ["secret-rollout", "rollback", "SECRET", "--cluster", CLUSTER],
        "{hint}"
    );
    // As printed, with the secret: the sample's secret has an AWSPREVIOUS, so it restores.
    let previous = env.secret(SHARED)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["stages"]
                .as_array()
                .is_some_and(|s| s.iter().any(|x| x == "AWSPREVIOUS"))
        })
        .and_then(|v| v["id"].as_str().map(str::to_string));
    let mut args: Vec<&str> = suggested[1..].iter().map(String::as_str).collect();
    args[1] = SHARED;
    args.extend(["--yes", "--max-poll", "50ms"]);
    let out = env.run(&args, None).await;
    match previous {
        Some(previous) => {
            assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
            assert_eq!(env.current_version(SHARED), previous);
        }
        None => {
            // No earlier version: a refusal that says so, and not a usage error.
            assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
        }
    }

    // Nothing left to resume: the hint's `secret-rollout history` runs.
    let out = env.run(&["resume", "--yes"], None).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    let suggested = command_in(&hint, "secret-rollout history", &['`']);
    assert_eq!(suggested, ["secret-rollout", "history"], "{hint}");
    let out = env.run(&["history"], None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id[..8]),
        "history lists the redeploy\n{}",
        text(&out)
    );
}

/// The sample's shared secret without its environment's prefix.
const SHORT: &str = "opg_lpa_common_account_cleanup_notification_recipients";

/// The options that reach the environment in the tests below: a config file at a path
/// that is not a default one, and an environment in it. Every command the tool suggests
/// must carry both, or it reaches nothing when pasted.
const REACH: [&str; 4] = ["--config", "conf/prod.toml", "--env", "production"];

/// Writes `conf/prod.toml` (the environment `production` of the sample) in the test's
/// working directory.
fn write_config(env: &TestEnv) {
    let dir = env.dir.path().join("conf");
    std::fs::create_dir_all(&dir).expect("conf dir");
    std::fs::write(
        dir.join("prod.toml"),
        format!(
            "[environments.production]\nregion = \"eu-west-1\"\nclusters = [\"{CLUSTER}\"]\nsecret_prefix = \"production/\"\n"
        ),
    )
    .expect("config written");
}

/// `args` followed by the options that reach the environment.
fn with_reach<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(REACH);
    all
}

/// The words of a printed `secret-rollout ...` command after the program name, checking
/// that it carries the options that reach the environment (at its end).
fn pasted(command: &str) -> Vec<String> {
    let words: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    assert_eq!(words[0], "secret-rollout", "{command}");
    assert_eq!(
        words[words.len() - REACH.len()..],
        REACH,
        "the command carries --config and --env: {command}"
    );
    words[1..].to_vec()
}

/// Every `secret-rollout ...` command between backticks in `text`.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("secret-rollout "))
        .map(str::to_string)
        .collect()
}

/// Runs a pasted command with `extra` (`--yes` where there is no terminal, a short poll).
async fn run_pasted(env: &TestEnv, words: &[String], extra: &[&str]) -> Output {
    let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    env.run(&args, None).await
}

/// A health rule: every reader of the shared secret rejects `value`.
fn rejects(env: &TestEnv, value: &str) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![sandbox::ecs::HealthRule {
            cluster: None,
            service: None,
            secret: Some(SHARED.into()),
            value: Some(value.into()),
            version_id: None,
            probability: None,
            effect: sandbox::ecs::HealthEffect::AppRejectsValue,
        }]);
}

const READERS: [&str; 3] = ["front", "api", "admin"];

/// Issue 21 item 3. `--on-failure keep` keeps a value the readers reject (exit 5): the
/// report's next step is that rotation's rollback, with `--config` and `--env`; `status`
/// then suggests the same rollback, not a redeploy that would relaunch the stale readers
/// onto the bad value; pasted as printed, the rollback restores the value and every reader
/// holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_kept_failure_the_next_step_is_its_rollback_and_it_runs_as_printed() {
    let env = start(SPEED).await;
    write_config(&env);
    let before = env.current_version(SHARED);
    let bad = "a-value-the-readers-reject-kept";
    rejects(&env, bad);
    let out = env
        .run(
            &with_reach(&[
                "replace",
                SHORT,
                "--value-stdin",
                "--on-failure",
                "keep",
                "--yes",
                "--max-poll",
                "50ms",
            ]),
            Some(bad.as_bytes()),
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(exit::DEPLOY_FAILED),
        "{}",
        text(&out)
    );
    let kept = env.current_version(SHARED);
    assert_ne!(kept, before, "the bad value is kept");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let id = stdout
        .lines()
        .find_map(|l| l.split("journal id ").nth(1))
        .unwrap_or_else(|| panic!("a journal id\n{}", text(&out)))
        .trim()
        .to_string();
    let next: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("next: "))
        .collect();
    assert_eq!(
        next,
        [format!(
            "secret-rollout rollback {id} --config conf/prod.toml --env production"
        )],
        "{}",
        text(&out)
    );

    // `status`: the stale readers hold the old value; the suggestion is the rollback.
    let out = env.run(&with_reach(&["status", SHORT]), None).await;
    assert_eq!(out.status.code(), Some(exit::STALE), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let suggested = backticked(&stdout);
    assert_eq!(suggested, [next[0].to_string()], "{}", text(&out));
    assert!(
        !stdout.contains("secret-rollout redeploy"),
        "no redeploy onto the bad value\n{stdout}"
    );

    // As printed (with --yes: no terminal here).
    let stage_moves = env.calls("UpdateSecretVersionStage");
    let out = run_pasted(&env, &pasted(next[0]), &["--yes", "--max-poll", "50ms"]).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before, "restored");
    assert_eq!(env.calls("UpdateSecretVersionStage"), stage_moves + 1);
    assert_eq!(
        env.calls("PutSecretValue"),
        1,
        "only the bad value was written"
    );
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [before.clone()].into(),
            "{svc} holds the restored version"
        );
    }
    let out = env.run(&with_reach(&["status", SHORT]), None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
}

/// Issue 21 item 3. A new version written by someone else leaves every reader stale:
/// `status` suggests a redeploy that carries `--config` and `--env` (it failed with "no
/// region given" without them), and pasted as printed it delivers that version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redeploy_status_suggests_runs_as_printed() {
    let env = start(SPEED).await;
    write_config(&env);
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("someone-elses-new-value")
        .send()
        .await
        .expect("PutSecretValue");
    let theirs = env.current_version(SHARED);
    let out = env.run(&with_reach(&["status", SHORT]), None).await;
    assert_eq!(out.status.code(), Some(exit::STALE), "{}", text(&out));
    let suggested = backticked(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(suggested.len(), 1, "{}", text(&out));
    let words = pasted(&suggested[0]);
    assert_eq!(words[..2], ["redeploy", "--services"], "{}", suggested[0]);
    let services: std::collections::BTreeSet<&str> = words[2].split(',').collect();
    assert_eq!(services, READERS.into_iter().collect(), "{}", suggested[0]);
    let out = run_pasted(&env, &words, &["--yes", "--max-poll", "50ms"]).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.calls("UpdateService"), READERS.len());
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [theirs.clone()].into(),
            "{svc}"
        );
    }
    let out = env.run(&with_reach(&["status", SHORT]), None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
}

/// Ctrl-C once the rotation has started (its redeploys held at the gate): exit 130, and
/// the hint's two commands carry `--config` and `--env`. The resume, pasted as printed,
/// finishes the rotation; the rollback is asserted exactly (after the resume there is
/// nothing of that hint left to undo differently: the rollback path runs in the test of
/// the kept failure above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ctrl_c_hint_resumes_as_printed() {
    use sandbox::faults::{FaultRule, Release, Which};
    let env = start(SPEED).await;
    write_config(&env);
    let before = env.current_version(SHARED);
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = env
        .cli()
        .args(with_reach(&[
            "replace",
            SHORT,
            "--generate",
            "--yes",
            "--max-poll",
            "50ms",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    env.wait_held(&mut child, "the redeploys", READERS.len())
        .await;
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(exit::INTERRUPTED), "{}", text(&out));
    assert_eq!(env.release(Which::All, Release::Drop).len(), READERS.len());
    env.open_gate();
    let new = env.current_version(SHARED);
    assert_ne!(new, before, "written before the interruption");
    let (error, hint) = error_and_hint(&out);
    let id = error
        .strip_prefix("interrupted: rotation ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{error}"))
        .to_string();
    let commands = backticked(&hint);
    assert_eq!(
        commands,
        [
            format!("secret-rollout resume {id} --config conf/prod.toml --env production"),
            format!("secret-rollout rollback {id} --config conf/prod.toml --env production"),
        ],
        "{hint}"
    );
    let out = run_pasted(
        &env,
        &pasted(&commands[0]),
        &["--yes", "--max-poll", "50ms"],
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), new);
    assert_eq!(env.calls("PutSecretValue"), 1);
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [new.clone()].into(),
            "{svc}"
        );
    }

    // Resumed again: it is finished; both commands of the hint run as printed (the
    // placeholder SECRET filled in, the replace as a dry run).
    let out = run_pasted(&env, &pasted(&commands[0]), &["--yes"]).await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(error.contains("already finished"), "{error}");
    let again = backticked(&hint);
    assert_eq!(
        again,
        [
            "secret-rollout replace SECRET --config conf/prod.toml --env production".to_string(),
            commands[1].clone(),
        ],
        "{hint}"
    );
    let mut replace = pasted(&again[0]);
    replace[1] = SHORT.to_string();
    let out = run_pasted(&env, &replace, &["--generate", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let out = run_pasted(&env, &pasted(&again[1]), &["--yes", "--max-poll", "50ms"]).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before, "rolled back");
    assert_eq!(env.calls("PutSecretValue"), 1, "the dry run wrote nothing");
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [before.clone()].into(),
            "{svc}"
        );
    }
}

/// Someone else writes between the plan and the write (the write's look at the versions
/// held at the gate): the run stops before writing (exit 4); both commands of its hint
/// ("check who changed it (...), then plan again (...)") run as printed and show their
/// version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changed_before_the_write_hint_names_history_and_plan_that_run() {
    use sandbox::faults::FaultRule;
    let env = start(SPEED).await;
    write_config(&env);
    env.gate(vec![FaultRule::gate(
        "secretsmanager",
        "ListSecretVersionIds",
    )]);
    let mut child = env
        .cli()
        .args(with_reach(&["replace", SHORT, "--generate", "--yes"]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let rotations = env.state_dir().join("rotations");
    env.advance_until(&mut child, "the write's look at the versions", |_, _| {
        std::fs::read_dir(&rotations).is_ok_and(|d| d.count() == 1)
    })
    .await;
    assert_eq!(env.calls("PutSecretValue"), 0, "not written yet");
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
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    assert_eq!(env.calls("PutSecretValue"), 1, "only theirs");
    assert_eq!(env.calls("UpdateService"), 0);
    let (error, hint) = error_and_hint(&out);
    assert!(error.contains("since the plan"), "{error}");
    let commands = backticked(&hint);
    assert_eq!(
        commands,
        [
            format!("secret-rollout history {SHARED} --config conf/prod.toml --env production"),
            format!("secret-rollout plan {SHARED} --config conf/prod.toml --env production"),
        ],
        "{hint}"
    );
    for c in &commands {
        let out = run_pasted(&env, &pasted(c), &[]).await;
        assert_eq!(out.status.code(), Some(exit::OK), "{c}\n{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&theirs[..8]),
            "{c} shows their version\n{}",
            text(&out)
        );
    }
    assert_eq!(env.calls("PutSecretValue"), 1, "still only theirs");

    // Its rollback: it wrote nothing, so nothing to roll back; `history`, as printed, shows
    // what it did.
    let id = std::fs::read_dir(&rotations)
        .expect("rotations")
        .map(|e| e.expect("entry").path())
        .find_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".jsonl")
                .map(str::to_string)
        })
        .expect("the aborted rotation");
    let out = env
        .run(&with_reach(&["rollback", &id, "--yes"]), None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (error, hint) = error_and_hint(&out);
    assert!(error.contains("wrote no new version"), "{error}");
    let commands = backticked(&hint);
    assert_eq!(
        commands,
        ["secret-rollout history --config conf/prod.toml --env production"],
        "{hint}"
    );
    let out = run_pasted(&env, &pasted(&commands[0]), &[]).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&id),
        "{}",
        text(&out)
    );
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0);
}

/// The value-flag hints of `replace` (cli/session.rs, and the newline hint of the value
/// check): each refusal (exit 2, no write) names a fix; the command with that fix applied
/// runs (as a dry run: exit 0, still no write).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_value_flag_hints_name_fixes_that_run() {
    let env = start(SPEED).await;
    write_config(&env);
    let secret2 = "opg_lpa_front_csrf_salt";
    // No terminal to ask on: the same command with --yes runs.
    let args = with_reach(&["redeploy", "--services", "front", "--max-poll", "50ms"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    assert_eq!(
        hint,
        "nothing was changed: review what it would do (printed above), then run the same command with --yes"
    );
    assert_eq!(env.calls("UpdateService"), 0);
    let mut yes = args.clone();
    yes.push("--yes");
    let out = env.run(&yes, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.calls("UpdateService"), 1, "front");
    // (refused arguments, stdin, hint, the arguments with the hint applied)
    type Case<'a> = (Vec<&'a str>, Option<&'a [u8]>, &'a str, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            vec!["--generate", "--trim-newline"],
            None,
            "drop --trim-newline",
            vec!["--generate"],
        ),
        (
            vec!["--value-stdin", "--length", "40"],
            Some(b"a-new-value"),
            "add --generate, or drop --length",
            vec!["--value-stdin"],
        ),
        (
            vec!["--value-stdin", "--allow-weak-value"],
            Some(b"a-new-value"),
            "add --generate, or drop --allow-weak-value",
            vec!["--generate", "--allow-weak-value"],
        ),
        (
            vec!["--generate", "--length", "2", "--charset", "hex"],
            None,
            "use --length 32 or more with --charset hex, or pass --allow-weak-value if what reads the secret cannot take a longer value",
            vec!["--generate", "--length", "32", "--charset", "hex"],
        ),
        (
            vec!["--value-stdin", "--mfa-code-stdin"],
            Some(b"a-new-value"),
            "give the value with --value-file or --generate, or type the MFA code at the prompt",
            vec!["--generate", "--mfa-code-stdin"],
        ),
    ];
    for (refused, stdin, want, fixed) in cases {
        let mut args = vec!["replace", SHORT, "--dry-run"];
        args.extend(&refused);
        let out = env.run(&with_reach(&args), stdin).await;
        assert_eq!(
            out.status.code(),
            Some(exit::BAD_INPUT),
            "{refused:?}\n{}",
            text(&out)
        );
        let (_, hint) = error_and_hint(&out);
        assert_eq!(hint, want, "{refused:?}");
        let mut args = vec!["replace", SHORT, "--dry-run"];
        args.extend(&fixed);
        let out = env.run(&with_reach(&args), stdin).await;
        assert_eq!(
            out.status.code(),
            Some(exit::OK),
            "{fixed:?}\n{}",
            text(&out)
        );
    }
    // Two secrets, one stdin (the real run: a dry run reads no value): one --value-file
    // per secret, in order, or --generate. Refused before any write; both fixes pass (as
    // dry runs: the real run of a fixed value is the newline case below).
    let args = with_reach(&["replace", SHORT, secret2, "--value-stdin", "--yes"]);
    let out = env.run(&args, Some(b"a-new-value")).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    assert_eq!(
        hint,
        "give one --value-file per secret, in order, or --generate"
    );
    assert_eq!(env.calls("PutSecretValue"), 0);
    for (name, body) in [("one", "first-new-value"), ("two", "second-new-value")] {
        std::fs::write(env.dir.path().join(name), body).expect("value file");
    }
    for fixed in [
        vec!["--value-file", "one", "--value-file", "two"],
        vec!["--generate"],
    ] {
        let mut args = vec!["replace", SHORT, secret2, "--dry-run"];
        args.extend(&fixed);
        let out = env.run(&with_reach(&args), None).await;
        assert_eq!(
            out.status.code(),
            Some(exit::OK),
            "{fixed:?}\n{}",
            text(&out)
        );
    }
    assert_eq!(env.calls("PutSecretValue"), 0, "dry runs write nothing");
    assert_eq!(env.calls("UpdateService"), 1, "only the redeploy of front");

    // A value ending in a newline: refused by the real run before any write (a dry run
    // only says so in the plan); with the hint's --trim-newline it is written without it.
    let value = b"a-new-value\n";
    let args = with_reach(&[
        "replace",
        SHORT,
        "--value-stdin",
        "--yes",
        "--max-poll",
        "50ms",
    ]);
    let out = env.run(&args, Some(value)).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    assert_eq!(
        hint,
        "add --trim-newline to drop it (echo and most editors add one), or --keep-newline to store it as is"
    );
    assert_eq!(env.calls("PutSecretValue"), 0);
    let mut args = args;
    args.push("--trim-newline");
    let out = env.run(&args, Some(value)).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.calls("PutSecretValue"), 1);
    let written = env
        .clients
        .sm
        .get_secret_value()
        .secret_id(SHARED)
        .send()
        .await
        .expect("GetSecretValue");
    assert_eq!(written.secret_string(), Some("a-new-value"), "no newline");
}

/// `sandbox` on a port in use: exit 2 and "pick another port with --port (0 picks a free
/// one)"; `sandbox --port 0`, as the hint says, serves on another port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_port_hint_starts_one_on_a_free_port() {
    use std::io::BufRead;
    let env = start(SPEED).await;
    let endpoint = env.sandbox.endpoint();
    let busy = endpoint.rsplit(':').next().expect("a port").to_string();
    let out = env.run(&["sandbox", "--port", &busy], None).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    let (_, hint) = error_and_hint(&out);
    assert_eq!(hint, "pick another port with --port (0 picks a free one)");
    let mut child = env
        .cli()
        .args(["sandbox", "--port", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let first = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a line");
        line
    })
    .await
    .expect("join");
    let listening = first
        .strip_prefix("sandbox listening on ")
        .unwrap_or_else(|| panic!("the banner: {first:?}"))
        .trim()
        .to_string();
    assert_ne!(listening, endpoint, "another port");
    // It answers: the state of its own sample.
    let state: Value = reqwest::get(format!("{listening}/_sandbox/state"))
        .await
        .expect("the new sandbox answers")
        .json()
        .await
        .expect("its state");
    assert_eq!(state["region"], "eu-west-1");
    child.kill().expect("stopped");
    let _ = child.wait();
}

/// Ctrl-C during a `rollback` (its redeploys held at the gate): the hint names only the
/// `resume` of that rollback (a rollback wrote nothing, so `rollback` of it could not run),
/// and pasted as printed it finishes the restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ctrl_c_hint_of_a_rollback_resumes_it_as_printed() {
    use sandbox::faults::{FaultRule, Release, Which};
    let env = start(SPEED).await;
    write_config(&env);
    let before = env.current_version(SHARED);
    let out = env
        .run(
            &with_reach(&[
                "replace",
                SHORT,
                "--generate",
                "--yes",
                "--max-poll",
                "50ms",
            ]),
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.split("journal id ").nth(1).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| panic!("a journal id\n{}", text(&out)));
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let mut child = env
        .cli()
        .args(with_reach(&[
            "rollback",
            &id,
            "--yes",
            "--max-poll",
            "50ms",
        ]))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    env.wait_held(&mut child, "the rollback's redeploys", READERS.len())
        .await;
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(sent.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().expect("waited"))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(exit::INTERRUPTED), "{}", text(&out));
    assert_eq!(env.release(Which::All, Release::Drop).len(), READERS.len());
    env.open_gate();
    assert_eq!(
        env.current_version(SHARED),
        before,
        "moved back before the redeploys"
    );
    let (error, hint) = error_and_hint(&out);
    let rollback_id = error
        .strip_prefix("interrupted: rotation ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{error}"))
        .to_string();
    assert_ne!(rollback_id, id);
    assert_eq!(
        backticked(&hint),
        [format!(
            "secret-rollout resume {rollback_id} --config conf/prod.toml --env production"
        )],
        "{hint}"
    );
    let deployments = env.calls("UpdateService");
    let out = run_pasted(
        &env,
        &pasted(&backticked(&hint)[0]),
        &["--yes", "--max-poll", "50ms"],
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.current_version(SHARED), before);
    for svc in READERS {
        assert_eq!(
            env.versions_read(svc, SHARED),
            [before.clone()].into(),
            "{svc}\n{}",
            text(&out)
        );
    }
    assert_eq!(
        env.calls("UpdateService"),
        deployments + READERS.len(),
        "{:#?}\n{}",
        env.calls_of("UpdateService"),
        text(&out)
    );
}
