//! Leak check: every command that exists in this build, run with `RUST_LOG=trace` on known
//! unique values, never shows a value: not on stdout or stderr, not in the journal or any
//! file under the state and cache directories, and not in the arguments or environment of
//! the running process (the tool starts no child process; checked while it runs).
//!
//! `status` and `history` are not dispatched in this build (they answer "not available"),
//! so they are run too but only to show they print nothing secret.

mod common;

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::ecs::{HealthEffect, HealthRule};
use sandbox::faults::{FaultKind, FaultRule};

use common::{start, text, TestEnv, CLUSTER, SHARED};

const V1: &str = "leak-canary-one-7d3f9a2b61c4";
const V2: &str = "leak-canary-two-e8a1c5f04b97";
const V3: &str = "leak-canary-three-0c6b2e9d4f18";

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
    for v in [V1, V2, V3] {
        assert!(!s.contains(v), "{what} shows a value");
    }
}

fn assert_tree_clean(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            assert_tree_clean(&p);
        } else {
            assert_clean(
                &p.display().to_string(),
                &std::fs::read(&p).unwrap_or_default(),
            );
        }
    }
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

    // plan; the JSON report of replace --dry-run; status and history (not in this build).
    for args in [
        vec!["plan", SHARED, "--cluster", CLUSTER],
        vec![
            "replace",
            SHARED,
            "--cluster",
            CLUSTER,
            "--dry-run",
            "--output",
            "json",
        ],
        vec!["status", "--cluster", CLUSTER],
        vec!["history"],
    ] {
        let out = run(traced(&env, &args), None).await;
        all.push(("read-only command", out));
    }

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
    let listed = env.calls_of("ListSecretVersionIds").len();
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_faults(vec![FaultRule {
            service: Some("secretsmanager".into()),
            operation: Some("ListSecretVersionIds".into()),
            kind: FaultKind::Latency,
            probability: None,
            nth: Some(vec![2]),
            count: None,
            latency_ms: Some(600_000),
        }])
        .unwrap();
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
    let t0 = Instant::now();
    while env.calls_of("ListSecretVersionIds").len() < listed + 2 {
        assert!(t0.elapsed() < Duration::from_secs(60), "never held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proc_dir = format!("/proc/{}", child.id());
    if Path::new(&proc_dir).exists() {
        let cmdline = std::fs::read(format!("{proc_dir}/cmdline")).unwrap();
        assert_clean("the process's arguments", &cmdline);
        assert_clean(
            "the process's environment",
            &std::fs::read(format!("{proc_dir}/environ")).unwrap_or_default(),
        );
        // No child processes: every thread's children list is empty.
        for t in std::fs::read_dir(format!("{proc_dir}/task"))
            .unwrap()
            .flatten()
        {
            let children = std::fs::read_to_string(t.path().join("children")).unwrap_or_default();
            assert!(children.trim().is_empty(), "the tool started a process");
        }
    }
    child.kill().unwrap();
    let _ = child.wait();
    env.sandbox.world().lock().unwrap().clear_faults();
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
    assert_clean("killed run's log", &std::fs::read(&log).unwrap());
    // The state dir (journal, locks), the cache dir, and everything else the runs wrote.
    assert_tree_clean(env.dir.path());
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
