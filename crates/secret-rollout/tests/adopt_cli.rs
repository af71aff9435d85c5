//! What an adopter trips over (issue 21), through the binary against the sandbox: the
//! floor of a generated value (item 7), errors as JSON on stdout (item 9), one time format
//! (item 12) and the documentation slips (item 13).

mod common;

use std::process::Output;

use common::{start, text, TestEnv, CLUSTER, SHARED};
use secret_rollout_core::error::exit;
use serde_json::{json, Value};

/// Sandbox speed: a rolling deployment of a few virtual minutes takes well under a second.
const SPEED: f64 = 2000.0;

/// Every call the sandbox answered, of any operation.
fn all_calls(env: &TestEnv) -> usize {
    env.state()["calls"].as_array().map_or(0, Vec::len)
}

fn stdout_json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is one JSON document: {e}\n{}", text(out)))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Item 7: `--generate --length 2 --charset hex` (8 bits) is refused before any AWS call,
/// with one line naming the bits and the fix; `--allow-weak-value` lets it through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_generated_value_is_refused_before_any_aws_call() {
    let env = start(SPEED).await;
    let versions = env.version_count(SHARED);
    let weak = [
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--generate",
        "--length",
        "2",
        "--charset",
        "hex",
        "--yes",
        "--max-poll",
        "50ms",
    ];
    for extra in [&[][..], &["--dry-run"][..]] {
        let mut args = weak.to_vec();
        args.extend_from_slice(extra);
        let out = env.run(&args, None).await;
        assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
        let err = stderr(&out);
        assert_eq!(
            err,
            "error: --generate --length 2 --charset hex gives 8 bits of randomness, under the floor of 128\n  \
             hint: use --length 32 or more with --charset hex, or pass --allow-weak-value if what reads the secret cannot take a longer value\n",
            "{extra:?}"
        );
        assert!(out.stdout.is_empty());
    }
    // 21 alphanumeric characters are 125 bits: refused too.
    let mut args = weak.to_vec();
    args[6] = "21";
    args[8] = "alphanumeric";
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    assert!(stderr(&out).contains("gives 125 bits"), "{}", text(&out));
    assert_eq!(all_calls(&env), 0, "no AWS call for bad input");
    assert_eq!(env.version_count(SHARED), versions);

    let mut args = weak.to_vec();
    args.extend(["--allow-weak-value", "--output", "json"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_eq!(stdout_json(&out)["outcome"], "verified");
    assert_eq!(env.version_count(SHARED), versions + 1);
    let value = env
        .clients
        .sm
        .get_secret_value()
        .secret_id(SHARED)
        .send()
        .await
        .unwrap();
    let value = value.secret_string().unwrap_or_default();
    assert_eq!(value.len(), 2, "the weak value was written as asked");
    assert!(value.bytes().all(|b| b.is_ascii_hexdigit()));
}

/// Item 9: with `--output json` an error is one JSON document on stdout (`outcome`,
/// `exit_code`, `error`, `hint`) besides the line on stderr; with `ndjson` it is the last
/// line. Bad input, a usage error clap refuses, and an error AWS answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_on_stdout_with_output_json() {
    let env = start(SPEED).await;

    // Bad input, refused by the tool before any AWS call.
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--generate",
                "--length",
                "2",
                "--charset",
                "hex",
                "--yes",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    assert_eq!(
        stdout_json(&out),
        json!({
            "outcome": "bad_input",
            "exit_code": 2,
            "error": "--generate --length 2 --charset hex gives 8 bits of randomness, under the floor of 128",
            "hint": "use --length 32 or more with --charset hex, or pass --allow-weak-value if what reads the secret cannot take a longer value",
            "details": [],
        })
    );
    assert!(
        stderr(&out).starts_with("error: --generate --length 2"),
        "the line on stderr stays: {}",
        text(&out)
    );

    // A usage error clap refuses, `--output json` given before or after it.
    for args in [
        &["replace", SHARED, "--output", "json", "--timeout", "0s"][..],
        &["--output=json", "replace", SHARED, "--no-such-flag"][..],
    ] {
        let out = env.run(args, None).await;
        assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
        let doc = stdout_json(&out);
        assert_eq!(doc["outcome"], "bad_input", "{doc}");
        assert_eq!(doc["exit_code"], 2, "{doc}");
        let error = doc["error"].as_str().unwrap();
        assert!(!error.starts_with("error:") && !error.is_empty(), "{doc}");
        assert!(stderr(&out).contains(error), "{}", text(&out));
        assert!(doc["hint"].as_str().is_some_and(|h| !h.is_empty()), "{doc}");
    }
    assert_eq!(all_calls(&env), 0, "no AWS call for bad input");

    // An error AWS answered: the secret does not exist.
    let out = env
        .run(
            &[
                "plan",
                "production/no-such-secret",
                "--cluster",
                CLUSTER,
                "--output",
                "json",
            ],
            None,
        )
        .await;
    let code = out.status.code().unwrap();
    assert_ne!(code, 0, "{}", text(&out));
    let doc = stdout_json(&out);
    assert_eq!(doc["exit_code"], code, "{doc}");
    assert!(
        doc["error"].as_str().unwrap().contains("no-such-secret"),
        "{doc}"
    );
    assert!(
        doc["outcome"].as_str().is_some_and(|o| !o.is_empty()),
        "{doc}"
    );

    // ndjson: the last line is the error, with the same fields.
    let out = env
        .run(
            &[
                "plan",
                "production/no-such-secret",
                "--cluster",
                CLUSTER,
                "--output",
                "ndjson",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["outcome"], doc["outcome"]);
    assert_eq!(last["error"], doc["error"]);
    assert_eq!(last["hint"], doc["hint"]);
    assert_eq!(last["exit_code"], code);

    // Text output keeps stdout empty: the error is on stderr only.
    let out = env
        .run(
            &["plan", "production/no-such-secret", "--cluster", CLUSTER],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    assert!(out.stdout.is_empty(), "{}", text(&out));
}

/// Every time in a JSON value, by key, is an RFC 3339 string (never an epoch number).
fn assert_times_are_rfc3339(v: &Value, path: &str, seen: &mut usize) {
    const TIME_KEYS: [&str; 10] = [
        "started_at",
        "deleted_date",
        "last_changed",
        "at",
        "ecs_at",
        "started",
        "since",
        "created_at",
        "current_created",
        "created",
    ];
    let is_time = |t: &Value| {
        t.as_str().is_some_and(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
        })
    };
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let here = format!("{path}.{k}");
                if TIME_KEYS.contains(&k.as_str()) && !x.is_null() {
                    match x {
                        Value::Array(items) => {
                            assert!(items.iter().all(is_time), "{here}: {x}");
                        }
                        _ => assert!(is_time(x), "{here}: {x}"),
                    }
                    *seen += 1;
                } else {
                    assert_times_are_rfc3339(x, &here, seen);
                }
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                assert_times_are_rfc3339(x, &format!("{path}[{i}]"), seen);
            }
        }
        _ => {}
    }
}

/// Item 12: RFC 3339 strings for every time in JSON (ndjson events, the report, status,
/// plan, history), and one format for people: UTC, marked as UTC, a range of equal ends
/// printed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn times_are_rfc3339_in_json_and_marked_utc_for_people() {
    let env = start(SPEED).await;
    let rollout = |output: &'static str| {
        vec![
            "replace",
            SHARED,
            "--cluster",
            CLUSTER,
            "--generate",
            "--yes",
            "--max-poll",
            "50ms",
            "--output",
            output,
        ]
    };
    let out = env.run(&rollout("ndjson"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut seen = 0;
    let mut types = std::collections::BTreeSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        types.insert(v["type"].as_str().unwrap_or_default().to_string());
        assert_times_are_rfc3339(&v, "", &mut seen);
    }
    assert!(
        types.contains("ecs_event") && types.contains("proof") && types.contains("report"),
        "{types:?}"
    );
    assert!(seen > 10, "times were checked: {seen}");

    for args in [
        vec!["status", "--cluster", CLUSTER, "--output", "json"],
        vec!["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
        vec!["history", SHARED, "--cluster", CLUSTER, "--output", "json"],
    ] {
        let out = env.run(&args, None).await;
        assert!(out.status.code().is_some_and(|c| c <= 1), "{}", text(&out));
        let mut seen = 0;
        assert_times_are_rfc3339(&stdout_json(&out), "", &mut seen);
        assert!(seen > 0, "{args:?}: no time checked\n{}", text(&out));
    }

    // People: progress lines on stderr stamped `HH:MM:SS UTC`, ECS's times marked too,
    // and proofs' ranges marked and never `a-a`.
    let out = env.run(&rollout("text"), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = stderr(&out);
    let stamp = |l: &str| {
        l.len() > 13 && l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':' && &l[8..13] == " UTC "
    };
    let progress: Vec<&str> = err.lines().filter(|l| stamp(l)).collect();
    assert!(progress.len() > 5, "{err}");
    for l in err.lines().filter(|l| l.contains("[ecs ")) {
        assert!(l.contains(" UTC] "), "{l}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let proofs: Vec<&str> = stdout.lines().filter(|l| l.contains("started ")).collect();
    assert!(!proofs.is_empty(), "{stdout}");
    for l in proofs {
        let range = l.split("started ").nth(1).unwrap().trim_end_matches(')');
        assert!(range.ends_with(" UTC"), "{l}");
        if let Some((a, b)) = range.trim_end_matches(" UTC").split_once('-') {
            assert_ne!(a, b, "equal ends print once: {l}");
        }
    }
    let out = env.run(&["history"], None).await;
    let history = String::from_utf8_lossy(&out.stdout);
    let first = history.lines().next().unwrap_or_default();
    assert!(
        first.len() > 23 && &first[10..11] == " " && &first[19..23] == " UTC",
        "history dates say UTC: {history}"
    );
}

/// Item 13: every `--help` is free of internal notes, and its examples are one command per
/// line however narrow the terminal (pasting a wrapped one would run half of it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_examples_never_wrap_and_show_no_internal_note() {
    let env = start(SPEED).await;
    let subcommands = [
        "replace",
        "plan",
        "redeploy",
        "rollback",
        "resume",
        "status",
        "history",
        "whoami",
        "logout",
        "sandbox",
        "demo",
        "completions",
        "man",
    ];
    for sub in subcommands {
        for flag in ["--help", "-h"] {
            let mut cmd = env.cli();
            cmd.args([sub, flag]).env("COLUMNS", "40");
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(0), "{sub}: {}", text(&out));
            let help = String::from_utf8_lossy(&out.stdout);
            assert!(!help.contains("read by the config module"), "{sub}: {help}");
            let examples: Vec<&str> = help
                .lines()
                .skip_while(|l| !l.starts_with("Example"))
                .skip(1)
                .filter(|l| !l.trim().is_empty())
                .collect();
            assert!(!examples.is_empty(), "{sub} has examples: {help}");
            for l in &examples {
                assert!(
                    l.starts_with("  "),
                    "{sub}: a wrapped example line {l:?}\n{help}"
                );
            }
        }
    }
    let mut cmd = env.cli();
    cmd.args(["replace", "--help"]).env("COLUMNS", "40");
    let help = String::from_utf8_lossy(&cmd.output().unwrap().stdout).to_string();
    assert!(
        help.lines().any(|l| l
            == "  printf '%s' \"$NEW\" | secret-rollout replace production/api_rds_password --region eu-west-1 --cluster production-online-lpa --value-stdin --yes"),
        "{help}"
    );
}

/// Item 13: `--env` without a config file names every place looked, not only ./.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_config_names_every_place_looked() {
    let env = start(SPEED).await;
    for args in [
        &["status", "--env", "production"][..],
        &["whoami", "--env", "production"][..],
    ] {
        let out = env.run(args, None).await;
        assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
        let err = stderr(&out);
        let user = env
            .dir
            .path()
            .join("config/secret-rollout/config.toml")
            .display()
            .to_string();
        assert!(
            err.starts_with(&format!(
                "error: --env production given but no config file was found (looked in ./secret-rollout.toml and {user})"
            )),
            "{err}"
        );
        assert!(err.contains("[environments.production]"), "{err}");
        assert_eq!(all_calls(&env), 0);
    }
}

/// Item 10: the plan says who is signed in; the confirmation names the environment,
/// account, region and caller; rollback's names the services it will redeploy. The
/// questions are asked on a real pseudo-terminal and answered no.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_and_questions_say_where() {
    let env = start(SPEED).await;
    let caller = "arn:aws:iam::123456789012:user/sandbox";
    let out = env.run(&["plan", SHARED, "--cluster", CLUSTER], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains(&format!("signed in as {caller} (account 123456789012)")),
        "{plan}"
    );
    let out = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(stdout_json(&out)["caller"]["arn"], caller);

    let where_ = format!(
        "in clusters {CLUSTER} (account 123456789012, region eu-west-1) as {caller}? [y/N]"
    );
    let mut replace = env.cli();
    replace.args(["replace", SHARED, "--cluster", CLUSTER, "--generate"]);
    let expected = format!("write a new version and redeploy 3 service(s) {where_}");
    tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(replace, Some(60_000)).unwrap();
        p.exp_string(&expected).unwrap();
        p.send_line("n").unwrap();
        p.exp_string("not confirmed").unwrap();
        p.exp_eof().unwrap();
    })
    .await
    .unwrap();
    assert_eq!(env.calls("PutSecretValue"), 0);

    // A rotation to roll back, then the rollback's question.
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
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rotation = stdout_json(&out)["rotation_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rollback = env.cli();
    rollback.args(["rollback", &rotation]);
    let asked = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(rollback, Some(60_000)).unwrap();
        let (before, _) = p.exp_regex(r"\? \[y/N\]").unwrap();
        p.send_line("n").unwrap();
        p.exp_eof().unwrap();
        before
    })
    .await
    .unwrap();
    let question = asked.lines().last().unwrap_or_default().to_string();
    assert!(question.contains("redeploy 3 service(s) ("), "{asked}");
    for service in ["front", "api", "admin"] {
        assert!(question.contains(service), "{question}");
    }
    assert!(question.contains(&format!("as {caller}")), "{question}");
}

/// Item 11: sign-in first, then the plan, then the value prompt, then the confirmation;
/// a value is checked as soon as it is read (an empty one is refused at once, before
/// any write). On a real pseudo-terminal.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_comes_before_the_value_prompt_and_an_empty_value_is_refused_at_once() {
    let env = start(SPEED).await;
    let mut replace = env.cli();
    replace.args(["replace", SHARED, "--cluster", CLUSTER]);
    let label = format!("new value for {SHARED}: ");
    let (before_prompt, after) = tokio::task::spawn_blocking(move || {
        let mut p = rexpect::session::spawn_command(replace, Some(60_000)).unwrap();
        let before = p.exp_string(&label).unwrap();
        p.send_line("").unwrap();
        p.exp_string("(again): ").unwrap();
        p.send_line("").unwrap();
        let after = p.exp_eof().unwrap();
        (before, after)
    })
    .await
    .unwrap();
    // The plan (which needs the sign-in) is on the screen before the prompt.
    assert!(
        before_prompt.contains("redeploy (3), all at once:"),
        "{before_prompt}"
    );
    assert!(
        before_prompt.contains("then: write a new version"),
        "{before_prompt}"
    );
    assert!(
        after.contains(&format!("error: {SHARED}: the new value is empty")),
        "{after}"
    );
    assert!(
        !after.contains("[y/N]"),
        "no question after a refused value: {after}"
    );
    assert!(
        !after.contains("redeploy (3)"),
        "the plan is shown once: {after}"
    );
    assert_eq!(env.calls("GetCallerIdentity"), 1, "the one sign-in check");
    assert_eq!(env.calls("PutSecretValue"), 0);
}
