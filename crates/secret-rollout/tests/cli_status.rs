//! `status`, `history`, completions and the man page, through the binary, against the
//! sandbox's ground truth.

mod common;

use std::collections::BTreeSet;

use common::{start, text, TestEnv, CLUSTER, SHARED};
use serde_json::Value;

/// Ground truth: ids of tasks ECS means to run that resolved `secret` to a version other
/// than its AWSCURRENT.
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

fn reported_stale(status: &Value) -> BTreeSet<String> {
    status["services"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["secrets"].as_array().cloned().unwrap_or_default())
        .flat_map(|r| r["stale_tasks"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn advance(env: &TestEnv, seconds: f64) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .advance_clock(seconds)
        .unwrap();
}

async fn status_json(env: &TestEnv, secret: Option<&str>) -> (Option<i32>, Value) {
    let mut args = vec!["status", "--cluster", CLUSTER, "--output", "json"];
    if let Some(s) = secret {
        args.push(s);
    }
    let out = env.run(&args, None).await;
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code(), doc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_reports_exactly_the_stale_tasks_mid_rollout_and_none_after_replace() {
    // A stopped clock: nothing moves unless the test says so.
    let env = start(0.0).await;
    advance(&env, 10.0);
    let (code, doc) = status_json(&env, None).await;
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["stale"], 0);

    // A new version written behind the tool's back, then only api redeployed, and caught
    // while its new tasks start and its old ones still run.
    env.clients
        .sm
        .put_secret_value()
        .secret_id(SHARED)
        .secret_string("written-by-the-test")
        .send()
        .await
        .unwrap();
    advance(&env, 10.0);
    env.clients
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("api")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    advance(&env, 8.0);
    let truth = stale_truth(&env, SHARED);
    let api_running = env.running_tasks("api");
    // api mid-deployment, fixed by its 3 tasks, min 50% and max 200%: 3 new tasks
    // started and 1 of the 3 old ones already stopped (2 healthy are enough).
    let api_old = api_running
        .iter()
        .filter(|t| truth.contains(t["id"].as_str().unwrap()))
        .count();
    assert_eq!(
        (api_old, api_running.len() - api_old),
        (2, 3),
        "api mid-deployment: 2 old tasks and 3 new ones: {api_running:?}"
    );
    // front's and admin's tasks, and api's old ones still running, hold the old value.
    let front: BTreeSet<String> = env
        .running_tasks("front")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    // Stale: front's 3, admin's 1 and api's 2 old tasks.
    assert!(truth.is_superset(&front), "{truth:?}");
    assert_eq!(front.len(), 3, "{front:?}");
    assert_eq!(truth.len(), 6, "{truth:?}");

    let (code, doc) = status_json(&env, Some(SHARED)).await;
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(reported_stale(&doc), truth);
    assert_eq!(doc["stale"], truth.len());
    let api = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .unwrap();
    assert_eq!(
        api["deployments"].as_array().unwrap().len(),
        2,
        "the deployment in progress and the old one are shown: {api}"
    );
    let names: BTreeSet<&str> = doc["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "api", "front"].into(), "only its readers");

    // Without a secret: every secret the services read, same stale tasks.
    let (code, doc) = status_json(&env, None).await;
    assert_eq!(code, Some(1));
    assert_eq!(reported_stale(&doc), truth);
    // The sample's services read 12 distinct secrets.
    assert_eq!(doc["secrets"].as_array().unwrap().len(), 12, "{doc}");

    // Text on a non-terminal: a table, no colour.
    let out = env
        .run(&["status", "--cluster", CLUSTER, SHARED], None)
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("STALE"), "{stdout}");
    let summary = format!("{} stale task(s) in 3 service(s)", truth.len());
    assert!(stdout.contains(&summary), "{stdout}");
    assert!(!stdout.contains('\x1b'), "{stdout}");

    // A completed replace: nothing stale, by the tool and by the ground truth.
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(2000.0)
        .unwrap();
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
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    assert!(stale_truth(&env, SHARED).is_empty());
    let (code, doc) = status_json(&env, Some(SHARED)).await;
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(doc["stale"], 0);
    assert!(reported_stale(&doc).is_empty());

    // AWSCURRENT moved back by hand, nothing redeployed: every reader now runs a value
    // newer than the current one, though the current version is older than the tasks.
    advance(&env, 10.0);
    let newest = env.current_version(SHARED);
    let previous = env.secret(SHARED)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| {
            v["stages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == "AWSPREVIOUS")
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.clients
        .sm
        .update_secret_version_stage()
        .secret_id(SHARED)
        .version_stage("AWSCURRENT")
        .move_to_version_id(&previous)
        .remove_from_version_id(&newest)
        .send()
        .await
        .unwrap();
    advance(&env, 10.0);
    let truth = stale_truth(&env, SHARED);
    assert_eq!(
        truth.len(),
        7,
        "every reader holds the newer value: {truth:?}"
    );
    let (code, doc) = status_json(&env, Some(SHARED)).await;
    assert_eq!(code, Some(1), "{doc}");
    assert_eq!(reported_stale(&doc), truth);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_rotations_in_order_and_never_a_value() {
    let env = start(2000.0).await;
    let values = ["first-known-value-7Qx", "second-known-value-9Zr"];
    for v in values {
        let out = env
            .run(
                &[
                    "replace",
                    SHARED,
                    "--cluster",
                    CLUSTER,
                    "--value-stdin",
                    "--yes",
                    "--max-poll",
                    "50ms",
                ],
                Some(v.as_bytes()),
            )
            .await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let current = env.current_version(SHARED);
    let json = env
        .run(
            &["history", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let doc: Value = serde_json::from_slice(&json.stdout).unwrap();
    let rotations = doc["rotations"].as_array().unwrap();
    assert_eq!(rotations.len(), 2, "{doc}");
    for r in rotations {
        assert_eq!(r["outcome"], "verified");
        assert_eq!(r["kind"], "replace");
        assert!(r["caller_arn"].as_str().unwrap().starts_with("arn:aws:"));
        assert_eq!(r["services"].as_array().unwrap().len(), 3);
    }
    // In order: the second rotation starts from the version the first wrote.
    assert_eq!(
        rotations[1]["secrets"][0]["previous_version_id"],
        rotations[0]["secrets"][0]["new_version_id"]
    );
    assert_eq!(
        rotations[1]["secrets"][0]["new_version_id"],
        current.as_str()
    );
    let versions = doc["secret"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2]["id"], current.as_str());
    assert!(versions[2]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s == "AWSCURRENT"));

    let plain = env
        .run(&["history", SHARED], None) // no cluster needed to read a secret's history
        .await;
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain));
    let all = env.run(&["history"], None).await;
    assert_eq!(all.status.code(), Some(0), "{}", text(&all));
    let plain_out = String::from_utf8_lossy(&plain.stdout);
    assert!(plain_out.contains(&current), "{plain_out}");
    assert_eq!(plain_out.matches("replace ").count(), 2, "{plain_out}");

    // Never a value: not in any output, not in any file of the state directory.
    let seen = [json, plain, all];
    for out in &seen {
        for v in values {
            assert!(!String::from_utf8_lossy(&out.stdout).contains(v));
            assert!(!String::from_utf8_lossy(&out.stderr).contains(v));
        }
    }
    let mut files = Vec::new();
    let mut stack = vec![env.state_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.clone());
                let bytes = std::fs::read(&path).unwrap();
                for v in values {
                    assert!(
                        !String::from_utf8_lossy(&bytes).contains(v),
                        "{} holds a value",
                        path.display()
                    );
                }
            }
        }
    }
    // The two rotations' journals were among the files checked.
    let journals = files
        .iter()
        .filter(|p| {
            p.parent() == Some(&env.state_dir().join("rotations"))
                && p.extension().is_some_and(|e| e == "jsonl")
        })
        .count();
    assert_eq!(journals, 2, "the journal files were checked: {files:?}");
}

/// `--watch` off a terminal: one JSON document per refresh, and Ctrl-C ends it with the
/// exit code of the last one.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_refreshes_until_interrupted() {
    use std::io::BufRead;
    let env = start(0.0).await;
    let mut cmd = env.cli();
    cmd.args([
        "status",
        "--cluster",
        CLUSTER,
        SHARED,
        "--watch",
        "--output",
        "json",
    ])
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped());
    let (first, code) = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let killed = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        (first, child.wait().unwrap().code())
    })
    .await
    .unwrap();
    let doc: Value = serde_json::from_str(&first).expect("one document per line");
    assert_eq!(doc["stale"], 0);
    assert_eq!(
        code,
        Some(0),
        "ended by Ctrl-C with the last refresh's code"
    );
}

#[test]
fn completions_and_man_page_build_and_name_every_subcommand() {
    use clap::ValueEnum;
    let bin = common::bin();
    let help = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(
        help.status.code(),
        Some(0),
        "--help: {}",
        String::from_utf8_lossy(&help.stderr)
    );
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    // The subcommands as the binary itself lists them.
    let subcommands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        // Wrapped descriptions continue on deeper-indented lines.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect();
    for expected in [
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
    ] {
        assert!(
            subcommands.iter().any(|c| c == expected),
            "{expected} in {subcommands:?}"
        );
    }
    for shell in clap_complete::Shell::value_variants() {
        let name = shell.to_possible_value().unwrap().get_name().to_string();
        if !["bash", "zsh", "fish"].contains(&name.as_str()) {
            continue;
        }
        let out = std::process::Command::new(&bin)
            .args(["completions", &name])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{name}");
        let script = String::from_utf8_lossy(&out.stdout);
        for c in &subcommands {
            assert!(script.contains(c.as_str()), "{name} completions lack {c}");
        }
    }
    let out = std::process::Command::new(&bin)
        .arg("man")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let man = String::from_utf8_lossy(&out.stdout);
    assert!(man.starts_with(".ie") || man.contains(".TH"), "roff");
    for c in &subcommands {
        assert!(man.contains(c.as_str()), "man page lacks {c}");
    }
}
