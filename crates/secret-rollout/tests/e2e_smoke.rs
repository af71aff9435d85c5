//! The replace command end to end on the sample environment: the shared secret reaches
//! every task of its readers, and nothing else moves.

mod common;

use common::{start, text, CLUSTER, SHARED};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_shared_secret_reaches_every_reader_and_only_them() {
    let env = start(2000.0).await;
    let before = env.current_version(SHARED);
    let pdf_tasks: Vec<String> = env
        .running_tasks("pdf")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
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
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(report["outcome"], "verified");
    let after = env.current_version(SHARED);
    assert_ne!(before, after);
    assert_eq!(env.version_count(SHARED), 2, "exactly one new version");
    for service in ["front", "api", "admin"] {
        assert_eq!(
            env.versions_read(service, SHARED),
            [after.clone()].into(),
            "{service} runs the new version"
        );
        assert_eq!(
            env.calls_of("UpdateService")
                .iter()
                .filter(|c| c["subject"]["service"] == service)
                .count(),
            1
        );
    }
    let pdf_now: Vec<String> = env
        .running_tasks("pdf")
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(pdf_tasks, pdf_now, "pdf untouched");
    // The report's call counts are the sandbox's, exactly: every call the tool made to
    // ECS, ECR and Secrets Manager, as many times as the sandbox answered it (no faults, so no
    // retries). The scenario fixes the writes: one new version, one update per reader.
    let calls = env.state()["calls"].as_array().cloned().unwrap_or_default();
    let mut answered = std::collections::BTreeMap::<String, u64>::new();
    for c in &calls {
        let service = match c["service"].as_str().expect("call has a service") {
            "Ecs" => "ECS",
            "SecretsManager" => "SecretsManager",
            "Ecr" => "ECR",
            "Sts" => continue,
            other => panic!("unknown service {other}"),
        };
        let op = c["operation"].as_str().expect("call has an operation");
        *answered.entry(format!("{service}.{op}")).or_default() += 1;
    }
    let reported: std::collections::BTreeMap<String, u64> =
        serde_json::from_value(report["aws_calls"].clone()).expect("aws_calls is a count map");
    assert_eq!(reported, answered, "the report counts every call once");
    assert_eq!(reported.get("SecretsManager.PutSecretValue"), Some(&1));
    assert_eq!(reported.get("ECS.UpdateService"), Some(&3));
    assert!(
        reported.contains_key("ECS.DescribeServices"),
        "the deployments were followed: {reported:?}"
    );
}

/// `demo` on its embedded sandbox: the whole job, verified, and the restore story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_the_whole_job_and_shows_the_restore() {
    let env = start(1.0).await; // only for the clean environment of `env.run`
    let out = env.run(&["demo", "--speed", "2000"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(": verified"), "{}", text(&out));
    // viewer deploys blue/green: the demo shows that strategy verified too.
    for service in ["front", "api", "admin", "viewer"] {
        assert!(
            stdout.contains(&format!("{service:<10} ")),
            "{service} in the proof: {}",
            text(&out)
        );
    }
    assert!(
        !stdout.contains("pdf "),
        "pdf does not read the shared secret: {}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("what to try next"),
        "{}",
        text(&out)
    );

    let out = env
        .run(&["demo", "--speed", "2000", "--bad-value"], None)
        .await;
    assert_eq!(
        out.status.code(),
        Some(secret_rollout_core::error::exit::FAILED_RESTORED),
        "{}",
        text(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("previous version restored"),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("restore:"), "{}", text(&out));
}
