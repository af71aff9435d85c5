//! Leak check: every command that exists in this build, run with `RUST_LOG=trace` on known
//! unique values, never shows a value: not on stdout or stderr, not in the journal or any
//! file under the state and cache directories, and not in the arguments or environment of
//! the running process (the tool starts no child process; checked while it runs).
//!
//! Every command run must succeed (or fail) with the exit code its step expects and print
//! what it is for, so a command that fails at once, printing nothing, cannot pass the leak
//! check; and the state directory must hold the journals the runs wrote, so a state
//! directory that moved cannot look clean.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultRule, Release, Which};

use common::{start, text, TestEnv, CLUSTER, SHARED};

const V1: &str = "leak-canary-one-7d3f9a2b61c4";
const V2: &str = "leak-canary-two-e8a1c5f04b97";
const V3: &str = "leak-canary-three-0c6b2e9d4f18";
/// Plaintext in a task definition's `environment`: it must not land in the cache.
const ENV_CANARY: &str = "leak-canary-environment-5b1e7c3a90d2";

fn traced(env: &TestEnv, args: &[&str]) -> std::process::Command {
    let mut cmd = env.cli();
    cmd.args(args).env("RUST_LOG", "trace");
    cmd
}

async fn run(mut cmd: std::process::Command, stdin: Option<&str>) -> Output {
    let input = stdin.map(|s| s.as_bytes().to_vec());
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
            let mut s = child.stdin.take().expect("stdin");
            let _ = s.write_all(&bytes);
        }
        child.wait_with_output().expect("finishes")
    })
    .await
    .expect("join")
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let s = String::from_utf8_lossy(bytes);
    for v in [V1, V2, V3, ENV_CANARY] {
        assert!(!s.contains(v), "{what} shows a value");
    }
}

/// Checks every file under `dir`, which must exist, and returns the files it checked.
fn assert_tree_clean(dir: &Path) -> Vec<PathBuf> {
    let entries = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{} must exist and be readable: {e}", dir.display()));
    let mut files = Vec::new();
    for e in entries {
        let p = e.expect("directory entry").path();
        if p.is_dir() {
            files.extend(assert_tree_clean(&p));
        } else {
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("{} is readable: {e}", p.display()));
            assert_clean(&p.display().to_string(), &bytes);
            files.push(p);
        }
    }
    files
}

/// How many records of `kind` the journals in the state dir hold (which must exist).
fn journal_count(env: &TestEnv, kind: &str) -> usize {
    let dir = env.state_dir().join("rotations");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("directory entry").path();
        if p.extension().is_some_and(|e| e == "jsonl") {
            let text = std::fs::read_to_string(&p).expect("journal readable");
            n += text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|r| r["type"] == kind)
                .count();
        }
    }
    n
}

/// The processes whose parent is `pid`, from `/proc/*/stat` (needs no kernel option).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may end while we look; its stat is then gone, which is no child.
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after
        // its last ')'.
        let after = &stat[stat.rfind(')').expect("stat has (comm)") + 1..];
        let ppid: u32 = after
            .split_whitespace()
            .nth(1)
            .and_then(|x| x.parse().ok())
            .expect("stat has a ppid");
        if ppid == pid {
            out.push(child);
        }
    }
    out
}

fn output_clean(what: &str, o: &Output) {
    assert_clean(&format!("{what} stdout"), &o.stdout);
    assert_clean(&format!("{what} stderr"), &o.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_shows_a_value_even_at_trace() {
    let env = start(2000.0).await;
    let rollout = ["--yes", "--max-poll", "50ms"];
    let mut all = Vec::new();
    // A family no service runs, with plaintext in `environment`: plan describes it (one-off
    // readers) and caches it in the state directory, where only references may land.
    env.clients
        .ecs
        .register_task_definition()
        .family("leak-environment")
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("example/app:1")
                .environment(
                    aws_sdk_ecs::types::KeyValuePair::builder()
                        .name("PLAIN_SETTING")
                        .value(ENV_CANARY)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("task definition registered");

    // replace, verified.
    let mut args = vec!["replace", SHARED, "--cluster", CLUSTER, "--value-stdin"];
    args.extend(rollout);
    let out = run(traced(&env, &args), Some(V1)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Trace really is on: the SDK's request handling is logged (at the capped level).
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DEBUG") && err.contains("PutSecretValue"),
        "trace logging reached the SDK"
    );
    all.push(("replace", out));

    // The read-only commands: each must succeed and print its report, so that one failing
    // at once (printing nothing) cannot pass the leak check.
    // plan: the secret and the three services that read it.
    let out = run(traced(&env, &["plan", SHARED, "--cluster", CLUSTER]), None).await;
    assert_eq!(out.status.code(), Some(0), "plan: {}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains(SHARED) && plan.contains("redeploy (3)"),
        "plan shows the secret and its 3 readers: {}",
        text(&out)
    );
    all.push(("plan", out));
    // The JSON report of replace --dry-run: a document naming the 3 services to redeploy.
    let args = [
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--dry-run",
        "--output",
        "json",
    ];
    let out = run(traced(&env, &args), None).await;
    assert_eq!(out.status.code(), Some(0), "dry run: {}", text(&out));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("dry run JSON: {e}"));
    assert_eq!(
        report["redeploy"].as_array().map(Vec::len),
        Some(3),
        "dry run plans the 3 readers: {report}"
    );
    all.push(("replace --dry-run --output json", out));
    // status: after the verified replace, no task is stale (exit 0) and it says so.
    let out = run(traced(&env, &["status", "--cluster", CLUSTER]), None).await;
    assert_eq!(out.status.code(), Some(0), "status: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No stale tasks"),
        "status reports: {}",
        text(&out)
    );
    all.push(("status", out));
    // history: the one rotation so far, verified.
    let out = run(traced(&env, &["history"]), None).await;
    assert_eq!(out.status.code(), Some(0), "history: {}", text(&out));
    let hist = String::from_utf8_lossy(&out.stdout);
    assert!(
        hist.contains("replace") && hist.contains("verified") && hist.contains(SHARED),
        "history lists the verified replace: {}",
        text(&out)
    );
    all.push(("history", out));

    // redeploy of the secret's readers, then rollback to the original value.
    let mut args = vec!["redeploy", "--secret", SHARED, "--cluster", CLUSTER];
    args.extend(rollout);
    let out = run(traced(&env, &args), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    all.push(("redeploy", out));
    let mut args = vec!["rollback", SHARED, "--cluster", CLUSTER];
    args.extend(rollout);
    let out = run(traced(&env, &args), None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    all.push(("rollback", out));

    // replace killed before its write (held there), its process inspected while it runs;
    // then resume, which reads the value again and writes it.
    let started = journal_count(&env, "started");
    let written = journal_count(&env, "written");
    env.gate(vec![FaultRule::gate("secretsmanager", "PutSecretValue")]);
    let mut args = vec!["replace", SHARED, "--cluster", CLUSTER, "--value-stdin"];
    args.extend(rollout);
    let mut cmd = traced(&env, &args);
    let log = env.dir.path().join("killed.err");
    cmd.stdin(Stdio::piped())
        .stdout(std::fs::File::create(env.dir.path().join("killed.out")).unwrap())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().expect("starts");
    {
        use std::io::Write;
        let mut s = child.stdin.take().unwrap();
        s.write_all(V2.as_bytes()).unwrap();
    }
    // Held at its write: the journal says it started and wrote nothing.
    env.wait_held(&mut child, "the write at the gate", 1).await;
    assert_eq!(
        journal_count(&env, "started"),
        started + 1,
        "the run started"
    );
    assert_eq!(
        journal_count(&env, "written"),
        written,
        "held before the write"
    );
    // The process is held in a call, so it is alive: its /proc entry must be there (on
    // Linux, where these tests run), else nothing below would be checked.
    assert_eq!(
        child.try_wait().expect("try_wait"),
        None,
        "the held replace is still running"
    );
    let proc_dir = format!("/proc/{}", child.id());
    assert!(
        Path::new(&proc_dir).is_dir(),
        "{proc_dir} exists while the tool runs"
    );
    let cmdline = std::fs::read(format!("{proc_dir}/cmdline")).expect("cmdline");
    assert!(!cmdline.is_empty(), "the process's arguments were read");
    assert_clean("the process's arguments", &cmdline);
    let environ = std::fs::read(format!("{proc_dir}/environ")).expect("environ");
    assert!(
        String::from_utf8_lossy(&environ).contains("RUST_LOG=trace"),
        "the process's environment was read"
    );
    assert_clean("the process's environment", &environ);
    // No child processes.
    let children = children_of(child.id());
    assert!(
        children.is_empty(),
        "the tool started a process: {children:?}"
    );
    child.kill().unwrap();
    let _ = child.wait();
    // The held write never reached AWS.
    env.release(Which::All, Release::Drop);
    env.open_gate();
    let mut args = vec!["resume", "--value-stdin"];
    args.extend(rollout);
    let out = run(traced(&env, &args), Some(V2)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    all.push(("resume", out));

    // A failing replace: the value is rejected by the apps and the previous one restored.
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: None,
            secret: Some(SHARED.into()),
            value: Some(V3.into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
    let mut args = vec!["replace", SHARED, "--cluster", CLUSTER, "--value-stdin"];
    args.extend(rollout);
    let out = run(traced(&env, &args), Some(V3)).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    all.push(("failing replace", out));
    // And its JSON report.
    let mut args = vec![
        "replace",
        SHARED,
        "--cluster",
        CLUSTER,
        "--value-stdin",
        "--output",
        "json",
    ];
    args.extend(rollout);
    let out = run(traced(&env, &args), Some(V3)).await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    all.push(("failing replace, json", out));

    for (what, out) in &all {
        output_clean(what, out);
    }
    let killed_log = std::fs::read(&log).unwrap();
    assert!(!killed_log.is_empty(), "the killed run logged at trace");
    assert_clean("killed run's log", &killed_log);
    // The state dir (journals, locks) and everything else the runs wrote. The state dir
    // must hold what the runs wrote: one journal per rotation (replace, redeploy,
    // rollback, the killed replace that resume finished, the two failing replaces; the
    // dry run and the read-only commands write none) and the secret's lock file. The
    // cache dir is not written here (static keys from the environment are not cached);
    // whatever else is under the test's directory is checked too.
    let state_files = assert_tree_clean(&env.state_dir());
    // The task-definition cache holds the one-off family's revision, and nothing of its
    // `environment` (not even the variable's name).
    let cache = std::fs::read_to_string(
        env.state_dir()
            .join(secret_rollout_core::state::task_defs::FILE),
    )
    .expect("plan wrote the task-definition cache");
    assert!(
        cache.contains("task-definition/leak-environment:1"),
        "{cache}"
    );
    assert!(
        !cache.contains("PLAIN_SETTING") && !cache.contains("\"environment\""),
        "{cache}"
    );
    let journals: Vec<_> = state_files
        .iter()
        .filter(|p| {
            p.parent() == Some(&env.state_dir().join("rotations"))
                && p.extension().is_some_and(|e| e == "jsonl")
        })
        .collect();
    assert_eq!(
        journals.len(),
        6,
        "one journal per rotation: {state_files:?}"
    );
    for j in &journals {
        assert!(
            std::fs::metadata(j).unwrap().len() > 0,
            "{} holds records",
            j.display()
        );
    }
    assert!(
        state_files
            .iter()
            .any(|p| p.parent() == Some(&env.state_dir().join("locks"))),
        "the secret's lock file is in the state dir: {state_files:?}"
    );
    let all_files = assert_tree_clean(env.dir.path());
    assert!(
        all_files.iter().any(|p| p == &log),
        "the whole tree was walked: {all_files:?}"
    );
    // The values really went to AWS: V2 was written by resume and is current.
    // The first, V1, V2, and V3 twice (a failing replace keeps its version as history).
    assert_eq!(
        env.version_count(SHARED),
        5,
        "each value written once per replace"
    );
}

/// However RUST_LOG is spelled, no value shows: the CLI drops every TRACE event of the HTTP
/// and SDK internals (their trace prints raw bodies), whole level, crate or module directive
/// alike; and the SDK marks GetSecretValue's output and PutSecretValue's input sensitive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_rust_log_spelling_lets_the_http_stack_print_a_value() {
    let env = start(2000.0).await;
    let spellings = [
        "trace",
        "debug",
        "aws_smithy_runtime=trace",
        "aws_smithy_runtime::client::orchestrator=trace",
        "aws_smithy_runtime_api=trace",
        "aws_smithy_http_client=trace,hyper=trace,hyper_util=trace",
        "aws_sdk_secretsmanager=trace",
        "aws_smithy_types=trace,aws_smithy_json=trace,aws_smithy_observability=trace",
        "warn,aws_smithy_runtime=trace,aws_sigv4=trace",
        "[{rpc.method=PutSecretValue}]=trace",
    ];
    for (i, spelling) in spellings.iter().enumerate() {
        let value = format!("leak-canary-{i}-{}", "5b1e0f7a3c");
        let mut cmd = env.cli();
        cmd.args([
            "replace",
            SHARED,
            "--cluster",
            CLUSTER,
            "--value-stdin",
            "--yes",
            "--max-poll",
            "50ms",
        ])
        .env("RUST_LOG", spelling);
        let out = run(cmd, Some(&value)).await;
        assert_eq!(out.status.code(), Some(0), "{spelling}: {}", text(&out));
        for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            assert!(
                !String::from_utf8_lossy(bytes).contains(&value),
                "RUST_LOG={spelling}: the value is on {what}"
            );
        }
    }
}
