//! `--output ndjson` through the real binary on the sandbox: one JSON object per line on
//! stdout, each with `v`, `type` and an RFC 3339 `at`; every kind of event a run produces;
//! the report last, with the fields of `--output json`; never the value.

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{start, text, TestEnv, CLUSTER, SHARED};
use sandbox::ecs::{HealthEffect, HealthRule, Timing};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A value the test gives on stdin and then looks for everywhere.
const VALUE: &str = "ndjson-known-value-Qm7xK2pL9vRt";

fn rollout_args<'a>(cmd: &'a str, target: &[&'a str], output: &'a str) -> Vec<&'a str> {
    let mut v = vec![cmd];
    v.extend_from_slice(target);
    v.extend_from_slice(&[
        "--cluster",
        CLUSTER,
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        output,
    ]);
    v
}

/// Every stdout line, parsed and checked for the common fields.
fn lines(out: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.ends_with('\n'),
        "lines end with a newline: {}",
        text(out)
    );
    stdout
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{}", text(out)));
            assert_eq!(v["v"], 1, "{l}");
            assert!(
                v["type"].as_str().is_some_and(|t| !t.is_empty()),
                "a type: {l}"
            );
            let at = v["at"].as_str().unwrap_or_else(|| panic!("an at: {l}"));
            let t = OffsetDateTime::parse(at, &Rfc3339)
                .unwrap_or_else(|e| panic!("at is not RFC 3339 ({e}): {l}"));
            assert_eq!(t.offset(), time::UtcOffset::UTC, "at in UTC: {l}");
            assert!(at.ends_with('Z'), "at in UTC: {l}");
            v
        })
        .collect()
}

fn types(lines: &[Value]) -> BTreeSet<String> {
    lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// The last line is the report, the only one; returns it without `v`, `type`, `at`.
fn report(lines: &[Value]) -> Value {
    let last = lines.last().expect("at least one line");
    assert_eq!(last["type"], "report", "the report is last");
    assert_eq!(of_type(lines, "report").len(), 1, "one report");
    let mut r = last.clone();
    let o = r.as_object_mut().unwrap();
    o.remove("v");
    o.remove("type");
    o.remove("at");
    r
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn never_the_value(out: &Output) {
    let all = text(out);
    assert!(!all.contains(VALUE), "the value was printed: {all}");
}

/// Old tasks drain for 3000 virtual seconds (1.5 s here): long enough for a poll to see
/// the traffic moment (all traffic on new tasks, old ones draining) before completion.
fn slow_draining(env: &TestEnv, services: &[&str]) {
    let world = env.sandbox.world();
    let mut world = world.lock().unwrap();
    for service in services {
        world
            .ecs
            .set_service_timing(
                CLUSTER,
                service,
                Timing {
                    draining: 3000.0,
                    ..Timing::default()
                },
            )
            .expect("service exists");
    }
}

fn reject_value(env: &TestEnv) {
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_health_rules(vec![HealthRule {
            cluster: None,
            service: None,
            secret: Some(SHARED.into()),
            value: Some(VALUE.into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_streams_every_kind_of_event_then_the_report_of_output_json() {
    let env = start(2000.0).await;
    slow_draining(&env, &["front", "api", "admin"]);
    let before = env.current_version(SHARED);
    let out = env
        .run(
            &rollout_args("replace", &[SHARED, "--value-stdin"], "ndjson"),
            Some(VALUE.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    never_the_value(&out);
    let lines = lines(&out);
    let seen = types(&lines);
    for kind in [
        "secret_written",
        "deployment_started",
        "counts",
        "traffic_on_new",
        "deployment_complete",
        "proof",
        "report",
    ] {
        assert!(
            seen.contains(kind),
            "a {kind} line: {seen:?}\n{}",
            text(&out)
        );
    }
    // Progress goes to stdout only: nothing drawn on stderr as well.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("deployment"), "{stderr}");

    let after = env.current_version(SHARED);
    assert_ne!(before, after);
    let written = of_type(&lines, "secret_written");
    assert_eq!(written.len(), 1);
    assert_eq!(written[0]["version_id"], after.as_str());
    assert_eq!(written[0]["secret"], SHARED);
    for service in ["front", "api", "admin"] {
        let started: Vec<_> = of_type(&lines, "deployment_started")
            .into_iter()
            .filter(|l| l["service"] == service)
            .collect();
        assert_eq!(started.len(), 1, "{service} deployed once");
        assert_eq!(started[0]["phase"], "rollout");
        let proof = of_type(&lines, "proof")
            .into_iter()
            .find(|l| l["service"] == service)
            .unwrap_or_else(|| panic!("a proof for {service}"));
        assert_eq!(proof["proof"]["stale"], serde_json::json!([]));
        assert_eq!(proof["proof"]["fresh"], proof["proof"]["total"]);
    }

    let ndjson_report = report(&lines);
    assert_eq!(ndjson_report["outcome"], "verified");
    assert_eq!(ndjson_report["kind"], "replace");
    assert_eq!(ndjson_report["secrets"][0]["new_version"], after.as_str());

    // The same kind of run with --output json: the same fields.
    let twin = start(2000.0).await;
    let out = twin
        .run(
            &rollout_args("replace", &[SHARED, "--value-stdin"], "json"),
            Some(VALUE.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let json_report: Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(keys(&ndjson_report), keys(&json_report));
    for field in [
        "kind",
        "environment",
        "outcome",
        "message",
        "manual_restore",
    ] {
        assert_eq!(ndjson_report[field], json_report[field], "{field}");
    }
    assert_eq!(
        keys(&ndjson_report["rollout"]),
        keys(&json_report["rollout"])
    );
    assert_eq!(
        keys(&ndjson_report["secrets"][0]),
        keys(&json_report["secrets"][0])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_streams_its_events_then_the_report() {
    let env = start(2000.0).await;
    slow_draining(&env, &["front", "pdf"]);
    let out = env
        .run(
            &rollout_args("redeploy", &["--services", "front,pdf"], "ndjson"),
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = lines(&out);
    let seen = types(&lines);
    for kind in [
        "deployment_started",
        "counts",
        "traffic_on_new",
        "deployment_complete",
        "proof",
        "report",
    ] {
        assert!(
            seen.contains(kind),
            "a {kind} line: {seen:?}\n{}",
            text(&out)
        );
    }
    assert!(!seen.contains("secret_written"), "redeploy writes nothing");
    for service in ["front", "pdf"] {
        assert_eq!(
            of_type(&lines, "deployment_complete")
                .iter()
                .filter(|l| l["service"] == service)
                .count(),
            1,
            "{service} completes once"
        );
    }
    let r = report(&lines);
    assert_eq!(r["kind"], "redeploy");
    assert_eq!(r["outcome"], "verified");
    let services: BTreeSet<&str> = r["rollout"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, BTreeSet::from(["front", "pdf"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollout_streams_the_failure_and_the_restore() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    reject_value(&env);
    let out = env
        .run(
            &rollout_args("replace", &[SHARED, "--value-stdin"], "ndjson"),
            Some(VALUE.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(8), "{}", text(&out));
    never_the_value(&out);
    let lines = lines(&out);
    let seen = types(&lines);
    for kind in [
        "secret_written",
        "deployment_failed",
        "secret_restored",
        "report",
    ] {
        assert!(
            seen.contains(kind),
            "a {kind} line: {seen:?}\n{}",
            text(&out)
        );
    }
    let restored = of_type(&lines, "secret_restored");
    assert_eq!(restored.len(), 1);
    assert_eq!(restored[0]["version_id"], before.as_str());
    let in_restore = |kind: &str| {
        of_type(&lines, kind)
            .iter()
            .filter(|l| l["phase"] == "restore")
            .count()
    };
    assert_eq!(in_restore("deployment_started"), 3, "front, api, admin");
    assert_eq!(in_restore("deployment_complete"), 3);
    assert_eq!(in_restore("proof"), 3);
    // The restore comes after the failure, and the report after everything.
    let position = |kind: &str| lines.iter().position(|l| l["type"] == kind).unwrap();
    assert!(position("deployment_failed") < position("secret_restored"));
    let r = report(&lines);
    assert_eq!(r["outcome"], "failed_restored");
    assert_eq!(r["secrets"][0]["restored"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_commands_print_their_document_as_one_line() {
    let env = start(2000.0).await;
    let plan_json = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(plan_json.status.code(), Some(0), "{}", text(&plan_json));
    let plan_line = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "ndjson"],
            None,
        )
        .await;
    assert_eq!(plan_line.status.code(), Some(0), "{}", text(&plan_line));
    let l = lines(&plan_line);
    assert_eq!(l.len(), 1, "{}", text(&plan_line));
    assert_eq!(l[0]["type"], "plan");
    let mut doc = l[0].clone();
    for k in ["v", "type", "at"] {
        doc.as_object_mut().unwrap().remove(k);
    }
    let mut json: Value = serde_json::from_slice(&plan_json.stdout).expect("json plan");
    // The calls differ by design: the second plan reads its task definitions from the
    // task-definition cache the first one filled.
    let calls_first = json.as_object_mut().unwrap().remove("aws_calls").unwrap();
    let calls_second = doc.as_object_mut().unwrap().remove("aws_calls").unwrap();
    assert!(calls_first["ECS.DescribeTaskDefinition"].as_u64() > Some(0));
    assert!(
        calls_second.get("ECS.DescribeTaskDefinition").is_none(),
        "{calls_second}"
    );
    assert_eq!(doc, json, "the same document as --output json");

    for (args, kind) in [
        (vec!["status", "--cluster", CLUSTER], "status"),
        (vec!["history"], "history"),
        (vec!["whoami"], "whoami"),
    ] {
        let mut args = args;
        args.extend(["--output", "ndjson"]);
        let out = env.run(&args, None).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let l = lines(&out);
        assert_eq!(l.len(), 1, "{}", text(&out));
        assert_eq!(l[0]["type"], kind);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ends_the_stream_with_an_error_line() {
    let env = start(2000.0).await;
    // No --yes and no terminal to ask on: refused before any write.
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--cluster",
                CLUSTER,
                "--value-stdin",
                "--output",
                "ndjson",
            ],
            Some(VALUE.as_bytes()),
        )
        .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    never_the_value(&out);
    let lines = lines(&out);
    let last = lines.last().expect("a line");
    assert_eq!(last["type"], "error");
    assert_eq!(last["exit_code"], 4);
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("not confirmed")),
        "{last}"
    );
    assert_eq!(env.version_count(SHARED), 1, "nothing written");
}
