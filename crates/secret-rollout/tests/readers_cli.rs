//! Issue 21, items 2, 6 and 8, against the sandbox: every reader of a secret is named
//! whatever narrows the rollout (the environment's `services` list), `plan` and
//! `replace --dry-run` refuse what `replace` refuses before its first write (`--json-key`
//! included) and take the same value flags, and a secret nobody reads ends "written, no
//! readers", not "verified".
//!
//! Snapshots (where the output is the point) are taken on the sample with the virtual
//! clock pinned and stopped, as in `tests/snapshots.rs`; the runs that must move the clock
//! (a `replace`) use a running sandbox, and assert on its state and call log.

mod common;

use std::process::Output;

use common::gate::wait_for;
use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::faults::{FaultRule, Release, Which};
use sandbox::scenario::StartTime;
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::Value;

const SPEED: f64 = 2000.0;
/// The secret of the sample that no task definition references (an RDS proxy reads it).
const UNREAD: &str = "production/api_rds_credentials";
/// The environment: the sample's cluster, but only `front` listed among its services.
const FRONT_ONLY: &str = r#"
[environments.production]
region = "eu-west-1"
account_id = "123456789012"
clusters = ["production-online-lpa"]
secret_prefix = "production/"
services = ["front"]
"#;

/// The sample on a stopped clock pinned to a fixed instant (seed 7): every id and virtual
/// time it prints is the same on every run.
async fn start_pinned() -> TestEnv {
    let mut scenario = Scenario::sample();
    scenario.start = Some(StartTime::Text("2026-01-05T09:00:00Z".into()));
    start_with(scenario, 0.0).await
}

fn write_config(env: &TestEnv) {
    std::fs::write(env.dir.path().join("secret-rollout.toml"), FRONT_ONLY).unwrap();
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("an array: {v}"))
        .iter()
        .map(|x| x["service"].as_str().unwrap().to_string())
        .collect()
}

/// The services UpdateService was called for, in order.
fn updated(env: &TestEnv) -> Vec<String> {
    env.calls_of("UpdateService")
        .iter()
        .map(|c| {
            let subject = c["subject"]["service"].as_str().unwrap_or_default();
            subject.rsplit('/').next().unwrap_or(subject).to_string()
        })
        .collect()
}

/// Exit code, stdout and stderr, with what varies with the wall clock redacted.
fn snapshot(name: &str, description: &str, o: &Output) {
    let body = format!(
        "exit code {}\n--- stdout\n{}--- stderr\n{}",
        o.status.code().unwrap_or(-1),
        stdout(o),
        stderr(o)
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(description);
    settings.set_omit_expression(true);
    // The plan's age of the current version: the wall clock minus a virtual date.
    settings.add_filter(r"\(\d+[smhd] old\)", "([AGE] old)");
    settings.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    settings.bind(|| insta::assert_snapshot!(name, body));
}

/// Item 2: with `services = ["front"]`, the plan redeploys front and names api and admin
/// with the consequence; JSON lists them under `outside`; `--services` may not name them;
/// `status` shows them, marked. Both as snapshots: the lines are the point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_outside_the_environment_list_are_shown_by_plan_and_status() {
    let env = start_pinned().await;
    write_config(&env);
    let short = SHARED.trim_start_matches("production/");

    let out = env.run(&["plan", short, "--env", "production"], None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = stdout(&out);
    for line in [
        "redeploy (1), all at once:",
        "  outside the environment's services list: api (keeps the old value until its next deployment)",
        "  outside the environment's services list: admin (keeps the old value until its next deployment)",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line:?} in\n{shown}");
    }
    snapshot(
        "readers_plan_outside_list",
        "plan of the shared secret in an environment that lists only front: api and admin named",
        &out,
    );

    let out = env
        .run(
            &["plan", short, "--env", "production", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(names(&plan["redeploy"]), ["front"]);
    assert_eq!(names(&plan["outside"]), ["api", "admin"]);
    assert_eq!(names(&plan["excluded"]), Vec::<String>::new());

    // --services may not reach outside the list.
    let out = env
        .run(
            &["plan", short, "--env", "production", "--services", "api"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    assert_eq!(
        stderr(&out),
        "error: --services names api, outside the environment's services list\n  \
         hint: add it to the environment's services in secret-rollout.toml, or drop it from --services\n"
    );

    let out = env
        .run(&["status", short, "--env", "production"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = stdout(&out);
    // Grouped by service (issue 19): api's line is marked, the secret it reads beneath
    // it, named without the environment's prefix.
    let lines: Vec<&str> = shown.lines().collect();
    let api = lines
        .iter()
        .position(|l| l.starts_with("api (outside)  "))
        .unwrap_or_else(|| panic!("{shown}"));
    assert!(
        lines[api + 1].starts_with(&format!("  {short}  ")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l == format!("  {CLUSTER}/admin").as_str()),
        "{shown}"
    );
    snapshot(
        "readers_status_outside_list",
        "status of the shared secret in an environment that lists only front: api and admin shown, marked",
        &out,
    );

    // Without a secret named: the environment's own services, plus every reader outside
    // its list of a secret they read (pdf reads none of front's: not shown).
    let out = env
        .run(&["status", "--env", "production", "--output", "json"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let st = json(&out);
    let shown: Vec<(String, bool)> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["outside_services_list"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("front".to_string(), false),
            ("api".to_string(), true),
            ("admin".to_string(), true)
        ],
        "{st}"
    );
    assert_eq!(env.calls("PutSecretValue"), 0);
    assert_eq!(env.calls("UpdateService"), 0);
}

/// Item 2 after a rotation: only front is redeployed; api and admin, outside the list,
/// still hold the old version, and `status` says so (exit 1, stale) rather than hiding them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_rotation_status_names_the_readers_left_on_the_old_value() {
    let env = start(SPEED).await;
    write_config(&env);
    let short = SHARED.trim_start_matches("production/");
    let before = env.current_version(SHARED);
    let out = env
        .run(
            &[
                "replace",
                short,
                "--env",
                "production",
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
    assert_eq!(json(&out)["outcome"], "verified");
    assert_eq!(updated(&env), ["front"]);
    let after = env.current_version(SHARED);
    assert_ne!(after, before);
    assert_eq!(env.versions_read("front", SHARED), [after.clone()].into());
    for reader in ["api", "admin"] {
        assert_eq!(env.versions_read(reader, SHARED), [before.clone()].into());
    }

    let out = env
        .run(
            &["status", short, "--env", "production", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::STALE), "{}", text(&out));
    let st = json(&out);
    let stale: Vec<(String, bool, usize)> = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["outside_services_list"].as_bool().unwrap(),
                s["secrets"][0]["stale_tasks"].as_array().unwrap().len(),
            )
        })
        .collect();
    // The sample runs front 3, api 3, admin 1.
    assert_eq!(
        stale,
        [
            ("front".to_string(), false, 0),
            ("api".to_string(), true, 3),
            ("admin".to_string(), true, 1)
        ],
        "{st}"
    );
    assert_eq!(st["stale"], 4);
}

/// Runs `args` and returns (exit code, stderr), asserting nothing was written or deployed.
async fn refused_without_a_write(env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let puts = env.calls("PutSecretValue");
    let updates = env.calls("UpdateService");
    let out = env.run(args, None).await;
    assert_eq!(
        env.calls("PutSecretValue"),
        puts,
        "{args:?}: {}",
        text(&out)
    );
    assert_eq!(
        env.calls("UpdateService"),
        updates,
        "{args:?}: {}",
        text(&out)
    );
    assert_eq!(
        env.calls("UpdateSecretVersionStage"),
        0,
        "{args:?}: {}",
        text(&out)
    );
    (out.status.code(), stderr(&out))
}

/// Item 6: `plan` and `replace --dry-run` refuse a `--json-key` the real run refuses (a
/// typo of a key of a JSON secret, a key on a plain secret) with the same line and exit
/// code, and write nothing; with a value they check it as the real run does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_dry_run_refuse_what_replace_refuses_before_its_first_write() {
    let env = start(SPEED).await;
    let dir = env.dir.path();
    let value = dir.join("value.txt");
    std::fs::write(&value, "Sandbox-Db-Passw0rd-02").unwrap();
    let newline = dir.join("newline.txt");
    std::fs::write(&newline, "Sandbox-Db-Passw0rd-02\n").unwrap();
    let same = dir.join("same.txt");
    std::fs::write(&same, "Sandbox-Db-Passw0rd-01").unwrap();
    let (value, newline, same) = (
        value.to_str().unwrap(),
        newline.to_str().unwrap(),
        same.to_str().unwrap(),
    );
    let versions = (env.version_count(UNREAD), env.version_count(SHARED));

    // The redeploy an unchanged value suggests names the secret and carries --cluster
    // (in `replace`, `replace --dry-run` and `plan` alike).
    let unchanged = format!(
        "error: --json-key password: the new value equals the current one\n  \
         hint: nothing to rotate: give a different value, or restart its consumers with `secret-rollout redeploy --secret {UNREAD} --cluster {CLUSTER}`\n"
    );
    // (what, secret, flags, expected exit, expected error line)
    let cases: Vec<(&str, &str, Vec<&str>, i32, &str)> = vec![
        (
            "a typo of a key",
            UNREAD,
            vec!["--json-key", "pasword", "--value-file", value],
            exit::BAD_INPUT,
            "error: --json-key pasword: the current json object has no such key\n  \
             hint: its keys are: dbClusterIdentifier, engine, host, password, port, username\n",
        ),
        (
            "a key on a plain secret",
            SHARED,
            vec!["--json-key", "password", "--value-file", value],
            exit::BAD_INPUT,
            "error: --json-key password: the current value is not a json object\n  \
             hint: drop --json-key to replace the whole value\n",
        ),
        (
            "a value equal to the key's",
            UNREAD,
            vec!["--json-key", "password", "--value-file", same],
            exit::BAD_INPUT,
            &unchanged,
        ),
        (
            "a value file ending in a newline",
            UNREAD,
            vec!["--json-key", "password", "--value-file", newline],
            exit::BAD_INPUT,
            "ends with a newline\n  \
             hint: add --trim-newline to drop it (echo and most editors add one), or --keep-newline to store it as is\n",
        ),
    ];
    for (what, secret, flags, code, line) in &cases {
        let mut real = vec!["replace", secret, "--cluster", CLUSTER, "--yes"];
        real.extend(flags.iter().copied());
        let mut dry = real.clone();
        dry.push("--dry-run");
        let mut plan = vec!["plan", secret, "--cluster", CLUSTER];
        plan.extend(flags.iter().copied());
        for args in [real, dry, plan] {
            let (got, err) = refused_without_a_write(&env, &args).await;
            assert_eq!(got, Some(*code), "{what}: {args:?}: {err}");
            // The value file's path is in one of the lines: compare the end.
            assert!(err.ends_with(line), "{what}: {args:?}: {err}");
            assert!(
                err.starts_with("error: ") && err.lines().count() == 2,
                "{err}"
            );
        }
    }

    // Without a value, the key alone is checked: a typo fails as it would with one.
    for args in [
        vec![
            "plan",
            UNREAD,
            "--cluster",
            CLUSTER,
            "--json-key",
            "pasword",
        ],
        vec![
            "replace",
            UNREAD,
            "--cluster",
            CLUSTER,
            "--json-key",
            "pasword",
            "--dry-run",
        ],
    ] {
        let (got, err) = refused_without_a_write(&env, &args).await;
        assert_eq!(got, Some(exit::BAD_INPUT), "{args:?}: {err}");
        assert!(
            err.starts_with("error: --json-key pasword: the current json object has no such key\n"),
            "{args:?}: {err}"
        );
    }

    // The same flags that make replace go make plan go: exit 0, the plan shown.
    for args in [
        vec![
            "plan",
            UNREAD,
            "--cluster",
            CLUSTER,
            "--json-key",
            "password",
            "--value-file",
            newline,
            "--trim-newline",
        ],
        vec![
            "replace",
            UNREAD,
            "--cluster",
            CLUSTER,
            "--json-key",
            "password",
            "--value-file",
            newline,
            "--trim-newline",
            "--dry-run",
        ],
        vec![
            "plan",
            UNREAD,
            "--cluster",
            CLUSTER,
            "--json-key",
            "password",
        ],
    ] {
        let puts = env.calls("PutSecretValue");
        let out = env.run(&args, None).await;
        assert_eq!(
            out.status.code(),
            Some(exit::OK),
            "{args:?}: {}",
            text(&out)
        );
        assert!(
            stdout(&out).starts_with("environment "),
            "{args:?}: {}",
            text(&out)
        );
        assert_eq!(env.calls("PutSecretValue"), puts);
    }
    assert_eq!(
        (env.version_count(UNREAD), env.version_count(SHARED)),
        versions,
        "nothing written"
    );
    assert_eq!(env.calls("UpdateService"), 0);
}

/// Item 6: a secret with rotation enabled is refused by `plan` and `--dry-run` as by
/// `replace` (exit 4), and `--force-with-rotation` lets all three through the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_refuses_a_rotated_secret_as_replace_does() {
    let mut scenario = Scenario::sample();
    let extra = Scenario::from_toml(
        r#"
[[secrets]]
name = "production/auto_rotated"
value = "value-of-a-rotated-secret"
rotation_enabled = true
rotation_lambda_arn = "arn:aws:lambda:eu-west-1:123456789012:function:rotate"
"#,
    )
    .unwrap();
    scenario.secrets.extend(extra.secrets);
    let env = start_with(scenario, SPEED).await;
    let secret = "production/auto_rotated";
    let line = "error: secret production/auto_rotated has rotation enabled: its rotation function would overwrite the new value\n  \
                hint: rotate it with aws secretsmanager rotate-secret, or pass --force-with-rotation if you mean to\n";
    for args in [
        vec![
            "replace",
            secret,
            "--cluster",
            CLUSTER,
            "--generate",
            "--yes",
        ],
        vec![
            "replace",
            secret,
            "--cluster",
            CLUSTER,
            "--generate",
            "--dry-run",
        ],
        vec!["plan", secret, "--cluster", CLUSTER],
    ] {
        let (got, err) = refused_without_a_write(&env, &args).await;
        assert_eq!(got, Some(exit::REFUSED), "{args:?}: {err}");
        assert_eq!(err, line, "{args:?}");
    }
    let out = env
        .run(
            &[
                "plan",
                secret,
                "--cluster",
                CLUSTER,
                "--force-with-rotation",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(env.version_count(secret), 1);
}

/// Item 8: a secret nobody reads. The plan warns on its own line; `replace` writes it
/// (AWSCURRENT moves, nothing is deployed) and ends "written, no readers", exit 0, in the
/// report, the JSON, the journal and `history`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_nobody_reads_is_written_with_no_readers() {
    let pinned = start_pinned().await;
    let out = pinned
        .run(&["plan", UNREAD, "--cluster", CLUSTER], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let warning = "  warning: no service or task family reads production/api_rds_credentials: the new value is written, nothing is redeployed";
    assert!(stdout(&out).lines().any(|l| l == warning), "{}", text(&out));
    snapshot(
        "readers_plan_unread",
        "plan of a secret no task definition references: a warning of its own",
        &out,
    );
    let out = pinned
        .run(
            &["plan", UNREAD, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(json(&out)["unread"], serde_json::json!([UNREAD]));

    let env = start(SPEED).await;
    let dir = env.dir.path();
    let value = dir.join("pw.txt");
    std::fs::write(&value, "Sandbox-Db-Passw0rd-02").unwrap();
    let before = env.current_version(UNREAD);
    let base = unread_replace(&value);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let mut args = base.clone();
    args.extend(["--output", "json"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "written_no_readers", "{report}");
    assert!(report["rollout"].is_null(), "no rollout section: {report}");
    assert!(report["restore"].is_null(), "{report}");
    let written = env.current_version(UNREAD);
    assert_ne!(written, before);
    assert_eq!(env.version_count(UNREAD), 2);
    assert_eq!(report["secrets"][0]["new_version"], written.as_str());
    assert_eq!(env.calls("UpdateService"), 0);

    // The text report: its own outcome and line, no empty rollout section.
    std::fs::write(&value, "Sandbox-Db-Passw0rd-03").unwrap();
    let out = env.run(&base, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = stdout(&out);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("rotation ") && l.ends_with(": written, no readers")),
        "{shown}"
    );
    assert!(
        shown.lines().any(|l| l
            == "no readers: no service or task family reads it, so nothing was redeployed and there is no task to prove"),
        "{shown}"
    );
    assert!(!shown.lines().any(|l| l == "rollout:"), "{shown}");
    assert_eq!(env.version_count(UNREAD), 3);
    assert_eq!(env.calls("UpdateService"), 0);

    // The journal on disk ends with the outcome, for both rotations.
    let dir = env.state_dir().join("rotations");
    let mut finished = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("the journal directory exists") {
        let path = entry.unwrap().path();
        let last = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .last()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .unwrap();
        assert_eq!(last["type"], "finished", "{}", path.display());
        finished.push(last["outcome"].as_str().unwrap().to_string());
    }
    assert_eq!(finished, ["written_no_readers", "written_no_readers"]);

    let out = env
        .run(&["history", "--cluster", CLUSTER, "--output", "json"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let h = json(&out);
    let outcomes: Vec<&str> = h["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["written_no_readers", "written_no_readers"],
        "{h}"
    );
    let out = env.run(&["history", "--cluster", CLUSTER], None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(
        stdout(&out)
            .lines()
            .filter(|l| l.contains("  replace   written_no_readers  "))
            .count(),
        2,
        "{}",
        text(&out)
    );
}

/// Item 2, the far end: every reader of the secret is outside the environment's list, so
/// none would be redeployed. `replace` refuses before any write (it used to write, follow
/// an empty rollout, fail and restore: exit 9), naming them; `plan` and `--dry-run`
/// show the plan and refuse the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_that_would_redeploy_no_reader_is_refused_before_the_write() {
    let env = start(SPEED).await;
    std::fs::write(
        env.dir.path().join("secret-rollout.toml"),
        FRONT_ONLY.replace(r#"["front"]"#, r#"["pdf"]"#),
    )
    .unwrap();
    let short = SHARED.trim_start_matches("production/");
    let line = "error: nothing to redeploy: the services that read it would keep the old value: \
                front (outside the environment's services list), api (outside the environment's services list), \
                admin (outside the environment's services list)\n  \
                hint: add them to the environment's services in secret-rollout.toml, or rotate from an environment that lists them\n";
    let versions = env.version_count(SHARED);
    for args in [
        vec![
            "replace",
            short,
            "--env",
            "production",
            "--generate",
            "--yes",
        ],
        vec![
            "replace",
            short,
            "--env",
            "production",
            "--generate",
            "--dry-run",
        ],
        vec!["plan", short, "--env", "production"],
    ] {
        let (got, err) = refused_without_a_write(&env, &args).await;
        assert_eq!(got, Some(exit::REFUSED), "{args:?}: {err}");
        assert_eq!(err, line, "{args:?}");
    }
    assert_eq!(env.version_count(SHARED), versions);
    assert_eq!(env.calls("UpdateService"), 0);
}

/// A rotation with no readers can be undone: `rollback` moves AWSCURRENT back and, with
/// nothing redeployed by the rotation, redeploys nothing and follows no empty rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_with_no_readers_rolls_back_without_a_rollout() {
    let env = start(SPEED).await;
    let value = env.dir.path().join("pw.txt");
    std::fs::write(&value, "Sandbox-Db-Passw0rd-02").unwrap();
    let before = env.current_version(UNREAD);
    let mut args = unread_replace(&value);
    args.extend(["--output".into(), "json".into()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "written_no_readers", "{report}");
    let id = report["rotation_id"].as_str().unwrap().to_string();
    assert_ne!(env.current_version(UNREAD), before);

    let out = env
        .run(
            &[
                "rollback",
                &id,
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
    assert_eq!(env.current_version(UNREAD), before, "AWSCURRENT moved back");
    assert_eq!(env.version_count(UNREAD), 2, "a rollback writes no version");
    assert_eq!(env.calls("UpdateService"), 0, "nothing to redeploy");
    assert_eq!(env.calls("PutSecretValue"), 1);
}

/// A rotation with no readers killed while its write is on the wire: the write lands,
/// and `resume` finds it by its request token (no second version) and ends "written, no
/// readers" as the run would have, instead of following an empty rollout and restoring.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_with_no_readers_killed_at_its_write_resumes_to_written_no_readers() {
    let env = start(SPEED).await;
    let value = env.dir.path().join("pw.txt");
    std::fs::write(&value, "Sandbox-Db-Passw0rd-02").unwrap();
    let before = env.current_version(UNREAD);
    env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
    let mut child = env
        .cli()
        .args(unread_replace(&value))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn the tool");
    env.wait_held(&mut child, "the write at the gate", 1).await;
    child.kill().expect("kill -9");
    assert!(!child.wait().unwrap().success());
    // The write goes through after the tool died: AWSCURRENT is on its version.
    env.release(Which::All, Release::Run);
    env.open_gate();
    wait_for("the held write landed", || env.version_count(UNREAD) == 2).await;
    let written = env.current_version(UNREAD);
    assert_ne!(written, before);

    let out = env
        .run(
            &["resume", "--yes", "--max-poll", "50ms", "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["outcome"], "written_no_readers", "{report}");
    assert_eq!(env.current_version(UNREAD), written, "nothing restored");
    assert_eq!(env.version_count(UNREAD), 2, "no second version");
    assert_eq!(env.calls("UpdateService"), 0);
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0);
}

/// `replace` of the secret nobody reads, its JSON key set from the file `value`.
fn unread_replace(value: &std::path::Path) -> Vec<String> {
    [
        "replace",
        UNREAD,
        "--cluster",
        CLUSTER,
        "--json-key",
        "password",
        "--value-file",
        value.to_str().unwrap(),
        "--yes",
        "--max-poll",
        "50ms",
    ]
    .map(String::from)
    .to_vec()
}
