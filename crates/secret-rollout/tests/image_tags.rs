//! Issue 18: a forced redeploy also ships whatever was pushed under a service's image tag
//! since its last deployment. `plan` names the service, container, tag, running digest
//! and new digest; `replace` and `redeploy` refuse before any write unless
//! `--allow-image-change` (exit 4), which lets the rollout go on and makes the report name
//! the services that changed image. Unchanged tags, digest references and immutable
//! repositories pass silently; an image outside ECR, or a repository the credentials
//! cannot read, "cannot be checked".
//!
//! Ground truth is the sandbox: the tags in its ECR (`ecr.repositories[].tags`), the digest
//! each task launched with (`ecs.tasks[].containers[].imageDigest`), secret versions and
//! the call log.

mod common;

use std::process::Output;

use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::Value;

const SPEED: f64 = 2000.0;
const API_APP: &str = "online-lpa/api_app";

/// The digest `repo:tag` points to in the sandbox's ECR.
fn tag(env: &TestEnv, repo: &str, tag: &str) -> String {
    env.state()["ecr"]["repositories"]
        .as_array()
        .expect("repositories")
        .iter()
        .find(|r| r["name"] == repo)
        .and_then(|r| r["tags"][tag].as_str())
        .unwrap_or_else(|| panic!("{repo}:{tag} in the sandbox's ECR"))
        .to_string()
}

/// The digests the running tasks of `service` launched `container` with.
fn running_digests(env: &TestEnv, service: &str, container: &str) -> Vec<String> {
    let tasks = env.running_tasks(service);
    assert!(!tasks.is_empty(), "{service} runs tasks");
    tasks
        .iter()
        .map(|t| {
            t["containers"]
                .as_array()
                .expect("containers")
                .iter()
                .find(|c| c["name"] == container)
                .and_then(|c| c["imageDigest"].as_str())
                .unwrap_or_else(|| panic!("{service}/{container} has a digest: {t}"))
                .to_string()
        })
        .collect()
}

/// Every digest is `want` (the caller's helper asserts there is at least one).
fn assert_all(digests: &[String], want: &str) {
    assert!(digests.iter().all(|d| d == want), "{digests:?} all {want}");
}

/// Someone pushes a new build under `repo:tag` (the SDK, as `aws ecr put-image` would).
async fn push(env: &TestEnv, repo: &str, tag: &str, build: &str) {
    env.clients
        .ecr
        .put_image()
        .repository_name(repo)
        .image_tag(tag)
        .image_manifest(sandbox::ecr::sample_manifest(build))
        .send()
        .await
        .expect("PutImage");
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

/// The plan's image checks by (service, container).
fn checks(plan: &Value) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = plan["images"]
        .as_array()
        .unwrap_or_else(|| panic!("images in the plan: {plan}"))
        .iter()
        .map(|c| {
            (
                c["service"].as_str().unwrap().to_string(),
                c["container"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn owned(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_moved_since_the_last_deployment_is_named_refused_and_shipped_only_when_allowed() {
    let env = start(SPEED).await;
    let old = tag(&env, API_APP, "v1.0.0");
    assert_all(&running_digests(&env, "api", "app"), &old);
    push(&env, API_APP, "v1.0.0", "api_app build 2").await;
    let new = tag(&env, API_APP, "v1.0.0");
    assert_ne!(old, new);
    let versions = env.version_count(SHARED);
    env.sandbox.world().lock().unwrap().clear_calls();

    // plan names service, container, tag, running and new digest; it refuses nothing.
    let out = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(
        checks(&plan),
        owned(&[
            ("admin", "app", "unchanged"),
            ("admin", "web", "unchanged"),
            ("api", "app", "changed"),
            ("api", "web", "unchanged"),
            ("front", "app", "unchanged"),
            ("front", "web", "unchanged"),
        ])
    );
    let moved = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verdict"] == "changed")
        .unwrap();
    assert_eq!(moved["tag"], "v1.0.0");
    assert_eq!(moved["running"], serde_json::json!([old]));
    assert_eq!(moved["new"], new.as_str());
    // One BatchGetImage per repository (six, each under a hundred ids), counted in the
    // JSON output as the sandbox counted them.
    assert_eq!(env.calls("BatchGetImage"), 6);
    assert_eq!(
        plan["aws_calls"]["ECR.BatchGetImage"], 6,
        "{}",
        plan["aws_calls"]
    );
    let out = env.run(&["plan", SHARED, "--cluster", CLUSTER], None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    let warning = shown
        .lines()
        .find(|l| l.contains("warning: new image"))
        .unwrap_or_else(|| panic!("a new-image warning:\n{shown}"));
    for part in [
        "/api container app",
        "tag v1.0.0",
        &old,
        &new,
        "--allow-image-change",
    ] {
        assert!(warning.contains(part), "{part} in {warning}");
    }

    // replace and redeploy refuse before any write: no version, no deployment.
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--generate",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("api container app") && err.contains(&new),
        "{err}"
    );
    assert!(err.contains("--allow-image-change"), "{err}");
    let out = env
        .run(
            &[
                "redeploy",
                "--services",
                "api",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    assert_eq!(env.version_count(SHARED), versions, "no new version");
    assert_eq!(env.calls("PutSecretValue"), 0, "nothing written");
    assert_eq!(env.calls("UpdateService"), 0, "no deployment");
    assert_all(&running_digests(&env, "api", "app"), &old);

    // With the flag the rollout goes on, and the report names the service.
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--generate",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--allow-image-change",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    let changed = report["image_changed"].as_array().expect("image_changed");
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["service"], "api");
    assert_eq!(changed[0]["container"], "app");
    assert_eq!(env.version_count(SHARED), versions + 1);
    assert_eq!(
        env.calls("UpdateService"),
        3,
        "front, api, admin redeployed"
    );
    // Ground truth: api now runs the new build, the others the builds they ran.
    assert_all(&running_digests(&env, "api", "app"), &new);
    for (service, repo) in [
        ("front", "online-lpa/front_app"),
        ("admin", "online-lpa/admin_app"),
    ] {
        let digest = tag(&env, repo, "v1.0.0");
        assert_all(&running_digests(&env, service, "app"), &digest);
    }

    // Its rollback would redeploy api onto yet another build: refused, nothing moved.
    push(&env, API_APP, "v1.0.0", "api_app build 3").await;
    let id = report["rotation_id"]
        .as_str()
        .expect("rotation id")
        .to_string();
    let current = env.current_version(SHARED);
    env.sandbox.world().lock().unwrap().clear_calls();
    let out = env
        .run(&["rollback", &id, "--yes", "--max-poll", "50ms"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-image-change"));
    assert_eq!(env.current_version(SHARED), current, "AWSCURRENT not moved");
    assert_eq!(env.calls("UpdateSecretVersionStage"), 0);
    assert_eq!(env.calls("UpdateService"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_after_a_failure_goes_on_and_its_report_names_the_new_image() {
    let env = start(SPEED).await;
    push(&env, API_APP, "v1.0.0", "api_app build 2").await;
    let new = tag(&env, API_APP, "v1.0.0");
    let before = env.current_version(SHARED);
    // api's application rejects the new value: the rollout fails and is restored.
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .ecs
        .set_health_rules(vec![sandbox::ecs::HealthRule {
            cluster: None,
            service: Some("api".into()),
            secret: Some(SHARED.into()),
            value: Some("rejected-by-api-2f9c1e".into()),
            version_id: None,
            probability: None,
            effect: sandbox::ecs::HealthEffect::AppRejectsValue,
        }]);
    let out = env
        .run(
            &[
                "replace",
                SHARED,
                "--value-stdin",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
                "--allow-image-change",
                "--output",
                "json",
            ],
            Some(b"rejected-by-api-2f9c1e"),
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(exit::FAILED_RESTORED),
        "{}",
        text(&out)
    );
    let report = json(&out);
    assert!(report["restore"].is_object(), "a restore ran: {report}");
    let changed = report["image_changed"].as_array().expect("image_changed");
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["service"], "api");
    assert_eq!(changed[0]["new"], new.as_str());
    // Ground truth: the previous version is current again, and api runs the new build.
    assert_eq!(env.current_version(SHARED), before);
    assert_all(&running_digests(&env, "api", "app"), &new);
}

const QUIET: &str = r#"
[[secrets]]
name = "shop/api_key"
value = "old-key"

[[clusters]]
clusterName = "shop"

[[ecr_repositories]]
repositoryName = "shop/fixed"
imageTagMutability = "IMMUTABLE"

[[task_definitions]]
family = "web"
requiresCompatibilities = ["FARGATE"]
networkMode = "awsvpc"
cpu = "256"
memory = "512"
[[task_definitions.containerDefinitions]]
name = "app"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web:live"
secrets = [{ name = "API_KEY", valueFrom = "/aws/reference/secretsmanager/shop/api_key" }]
[[task_definitions.containerDefinitions]]
name = "fixed"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/fixed:v1"
[[task_definitions.containerDefinitions]]
name = "pinned"
image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/web@sha256:4d1a3b4b5c1c5b0b6a0f8e2d9c7e3f1a2b4c6d8e0f1a3b5c7d9e1f3a5b7c9d1e"
[[task_definitions.containerDefinitions]]
name = "proxy"
image = "nginx:1.27"
[[task_definitions.containerDefinitions]]
name = "base"
image = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/base:main"

[[services]]
cluster = "shop"
serviceName = "web"
taskDefinition = "web"
desiredCount = 2
launchType = "FARGATE"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_tags_digests_and_immutable_repos_pass_silently_and_others_cannot_be_checked() {
    let env = start_with(Scenario::from_toml(QUIET).expect("scenario"), SPEED).await;
    let out = env
        .run(
            &[
                "plan",
                "shop/api_key",
                "--cluster",
                "shop",
                "--output",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan = json(&out);
    assert_eq!(
        checks(&plan),
        owned(&[
            ("web", "app", "unchanged"),
            ("web", "base", "cannot_check"),
            ("web", "fixed", "unchanged"),
            ("web", "pinned", "pinned"),
            ("web", "proxy", "cannot_check"),
        ])
    );
    let reason = |container: &str| {
        plan["images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["container"] == container)
            .and_then(|c| c["reason"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        reason("proxy").contains("not an ECR image"),
        "{}",
        reason("proxy")
    );
    assert!(
        reason("base").contains("cannot read repository base (account 210987654321"),
        "{}",
        reason("base")
    );
    // Two repositories of this account asked once each; the other account's once.
    assert_eq!(env.calls("BatchGetImage"), 3);
    let out = env
        .run(&["plan", "shop/api_key", "--cluster", "shop"], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("warning: new image"), "{shown}");
    let notes: Vec<&str> = shown.lines().filter(|l| l.contains("note: ")).collect();
    assert_eq!(notes.len(), 2, "{shown}");
    assert!(
        notes.iter().any(|l| l.contains("nginx:1.27: cannot check")),
        "{shown}"
    );

    // Nothing moved: replace goes on without the flag, and its report names no image.
    let out = env
        .run(
            &[
                "replace",
                "shop/api_key",
                "--generate",
                "--cluster",
                "shop",
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
    let report = json(&out);
    assert!(report.get("image_changed").is_none(), "{report}");
    assert_eq!(env.calls("UpdateService"), 1);
}

/// Read by pdf only.
const PDF: &str = "production/opg_lpa_pdf_owner_password";
const PDF_APP: &str = "online-lpa/pdf_app";

/// Someone writes `secret` by hand (the console): its readers hold an older value.
async fn write_by_hand(env: &TestEnv, secret: &str, value: &str) {
    env.clients
        .sm
        .put_secret_value()
        .secret_id(secret)
        .secret_string(value)
        .send()
        .await
        .expect("PutSecretValue");
}

/// `sync` refuses before any deployment when a redeploy would also ship a moved tag (exit
/// 4), naming the service, container and both digests; with `--allow-image-change` it goes
/// on, its report names the service, and the tasks run the new build and hold the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refuses_a_moved_tag_and_ships_it_only_when_allowed() {
    let env = start(SPEED).await;
    let old = tag(&env, PDF_APP, "v1.0.0");
    write_by_hand(&env, PDF, "written-by-hand-in-the-console").await;
    push(&env, PDF_APP, "v1.0.0", "pdf_app build 2").await;
    let new = tag(&env, PDF_APP, "v1.0.0");
    assert_ne!(old, new);
    let current = env.current_version(PDF);
    assert!(
        !env.versions_read("pdf", PDF).contains(&current),
        "pdf holds an older value"
    );
    env.sandbox.world().lock().unwrap().clear_calls();
    let sync = |extra: &'static [&'static str]| {
        let mut args = vec![
            "sync",
            PDF,
            "--cluster",
            CLUSTER,
            "--yes",
            "--max-poll",
            "50ms",
            "--output",
            "json",
        ];
        args.extend_from_slice(extra);
        args
    };

    let out = env.run(&sync(&[]), None).await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for part in ["/pdf container app", &old, &new, "--allow-image-change"] {
        assert!(err.contains(part), "{part} in {err}");
    }
    assert_eq!(env.calls("UpdateService"), 0, "no deployment");
    assert_all(&running_digests(&env, "pdf", "app"), &old);
    assert!(!env.versions_read("pdf", PDF).contains(&current));

    let out = env.run(&sync(&["--allow-image-change"]), None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["kind"], "sync", "{report}");
    assert_eq!(report["outcome"], "verified", "{report}");
    let changed = report["image_changed"].as_array().expect("image_changed");
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["service"], "pdf");
    assert_eq!(changed[0]["container"], "app");
    assert_eq!(changed[0]["new"], new.as_str());
    // Ground truth: only pdf redeployed, its tasks on the new build holding the value.
    let updated: Vec<String> = env
        .calls_of("UpdateService")
        .iter()
        .map(|c| {
            c["subject"]["service"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(updated, ["pdf"]);
    assert_all(&running_digests(&env, "pdf", "app"), &new);
    assert_eq!(
        env.versions_read("pdf", PDF),
        std::collections::BTreeSet::from([current])
    );
    assert_eq!(env.calls("PutSecretValue"), 0, "sync writes nothing");
}

/// Lines of the watcher's ndjson output so far, of `kind`.
fn lines_of(path: &std::path::Path, kind: &str) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == kind)
        .collect()
}

/// `sync --watch` never prompts: a change whose sync would ship a moved tag is logged as
/// skipped (with the command to ship it) and not deployed, and the watcher goes on
/// watching; SIGTERM then stops it cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_logs_a_moved_tag_and_skips_that_sync() {
    use common::gate::wait_for;
    use std::process::Stdio;
    let env = start(SPEED).await;
    let old = tag(&env, PDF_APP, "v1.0.0");
    let out_path = env.dir.path().join("watch.out");
    let mut child = env
        .cli()
        .args([
            "sync",
            "--watch",
            "--interval",
            "50ms",
            "--cluster",
            CLUSTER,
            "--max-poll",
            "20ms",
            "--output",
            "ndjson",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(env.dir.path().join("watch.err")).unwrap())
        .spawn()
        .unwrap();
    wait_for("the first health line", || {
        !lines_of(&out_path, "health").is_empty()
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "the watcher runs");

    push(&env, PDF_APP, "v1.0.0", "pdf_app build 2").await;
    let new = tag(&env, PDF_APP, "v1.0.0");
    write_by_hand(&env, PDF, "written-by-hand-in-the-console").await;
    let current = env.current_version(PDF);
    wait_for("a skipped line", || {
        !lines_of(&out_path, "skipped").is_empty()
    })
    .await;
    let skipped = lines_of(&out_path, "skipped");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["secrets"], serde_json::json!([PDF]));
    let why = skipped[0]["why"].as_str().unwrap_or_default();
    for part in ["/pdf container app", &old, &new] {
        assert!(why.contains(part), "{part} in {why}");
    }
    assert!(
        skipped[0]["next_steps"][0]
            .as_str()
            .is_some_and(|s| s.contains("--allow-image-change") && s.contains(PDF)),
        "{}",
        skipped[0]
    );
    // It goes on watching, and does not try that change again.
    let healths = lines_of(&out_path, "health").len();
    wait_for("two more looks", || {
        lines_of(&out_path, "health").len() >= healths + 2
    })
    .await;
    assert!(child.try_wait().unwrap().is_none(), "the watcher runs");
    assert_eq!(lines_of(&out_path, "skipped").len(), 1);
    assert!(lines_of(&out_path, "report").is_empty());
    assert_eq!(env.calls("UpdateService"), 0, "nothing deployed");
    assert_all(&running_digests(&env, "pdf", "app"), &old);
    assert!(!env.versions_read("pdf", PDF).contains(&current));

    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let err = std::fs::read_to_string(env.dir.path().join("watch.err")).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
}

/// Journal records of `kind` so far, across the state directory's rotations.
fn journalled(env: &TestEnv, kind: &str) -> usize {
    let dir = env.state_dir().join("rotations");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .filter(|r| r["type"] == kind)
                .collect::<Vec<_>>()
        })
        .count()
}

/// The tag moves while the rollout is under way (its deployments already resolved the old
/// build) and the rollout fails: the restore checks the images again before it redeploys,
/// goes on (a restore is never refused), and its report names the service whose restore
/// ships the new build, which its tasks then run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_moved_during_a_failing_rollout_is_named_by_its_restore() {
    use sandbox::faults::{FaultRule, Release, Which};
    use std::io::Write;
    use std::process::Stdio;
    const REJECTED: &str = "rejected-by-api-2f9c1e";
    let env = start(SPEED).await;
    let old = tag(&env, API_APP, "v1.0.0");
    assert_all(&running_digests(&env, "api", "app"), &old);
    let before = env.current_version(SHARED);
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .ecs
        .set_health_rules(vec![sandbox::ecs::HealthRule {
            cluster: None,
            service: Some("api".into()),
            secret: Some(SHARED.into()),
            value: Some(REJECTED.into()),
            version_id: None,
            probability: None,
            effect: sandbox::ecs::HealthEffect::AppRejectsValue,
        }]);
    // The clock stands still while the rollout's deployments are created, so none of
    // them moves on before the push.
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    env.gate(vec![FaultRule::gate("ecs", "UpdateService")]);
    let out_path = env.dir.path().join("replace.out");
    let err_path = env.dir.path().join("replace.err");
    let mut child = env
        .cli()
        .args([
            "replace",
            SHARED,
            "--value-stdin",
            "--cluster",
            CLUSTER,
            "--yes",
            "--max-poll",
            "50ms",
            "--output",
            "json",
        ])
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(REJECTED.as_bytes())
        .unwrap();
    // The rollout's three deployments (front, api, admin), one at a time.
    for n in 1..=3 {
        env.wait_held(&mut child, &format!("UpdateService {n}"), 1)
            .await;
        env.release(Which::Oldest(1), Release::Run);
    }
    common::gate::wait_for("three redeploys journalled", || {
        journalled(&env, "redeployed") == 3
    })
    .await;
    assert_eq!(env.calls("UpdateService"), 3);
    push(&env, API_APP, "v1.0.0", "api_app build 2").await;
    let new = tag(&env, API_APP, "v1.0.0");
    assert_ne!(old, new);
    env.open_gate();
    env.sandbox
        .world()
        .lock()
        .unwrap()
        .set_speed(SPEED)
        .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let out = std::fs::read_to_string(&out_path).unwrap();
    let err = std::fs::read_to_string(&err_path).unwrap();
    assert_eq!(status.code(), Some(exit::FAILED_RESTORED), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert!(report["restore"].is_object(), "a restore ran: {report}");
    // Nothing had moved when the rollout began; its restore ships the new build to api.
    assert!(report.get("image_changed").is_none(), "{report}");
    let changed = report["restore_image_changed"]
        .as_array()
        .unwrap_or_else(|| panic!("restore_image_changed: {report}"));
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["service"], "api");
    assert_eq!(changed[0]["container"], "app");
    assert_eq!(changed[0]["tag"], "v1.0.0");
    assert_eq!(changed[0]["running"], serde_json::json!([old]));
    assert_eq!(changed[0]["new"], new.as_str());
    assert!(
        err.contains("restoring (a restore is never refused) although") && err.contains(&new),
        "{err}"
    );
    // Ground truth: the previous version is current again, every api task runs the new
    // build (the restore's deployment resolved the moved tag), front and admin their own.
    assert_eq!(env.current_version(SHARED), before);
    assert_eq!(
        env.calls("UpdateService"),
        6,
        "three rollout, three restore"
    );
    assert_all(&running_digests(&env, "api", "app"), &new);
    for (service, repo) in [
        ("front", "online-lpa/front_app"),
        ("admin", "online-lpa/admin_app"),
    ] {
        let digest = tag(&env, repo, "v1.0.0");
        assert_all(&running_digests(&env, service, "app"), &digest);
    }
}

/// `status SHARED --output json`, which must exit 0.
async fn status_json(env: &TestEnv) -> Value {
    let out = env
        .run(
            &["status", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    json(&out)
}

/// Per (service, container, digest): how many running tasks, from the sandbox's tasks.
fn digests_truth(env: &TestEnv, services: &[&str]) -> Vec<(String, String, String, u64)> {
    let mut counts: std::collections::BTreeMap<(String, String, String), u64> = Default::default();
    for service in services {
        for t in env.running_tasks(service) {
            for c in t["containers"].as_array().expect("containers") {
                let key = (
                    service.to_string(),
                    c["name"].as_str().unwrap().to_string(),
                    c["imageDigest"].as_str().unwrap_or_default().to_string(),
                );
                *counts.entry(key).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .map(|((s, c, d), n)| (s, c, d, n))
        .collect()
}

/// `status` shows, per service and container, the image as written and the digests its
/// running tasks run (text and JSON), as the sandbox's tasks launched them; mid-deployment
/// (tasks on the old and the new build) both digests are there with their task counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_digests_running_tasks_run() {
    let env = start(SPEED).await;
    let services = ["front", "api", "admin"];
    let shown = |st: &Value| -> Vec<(String, String, String, u64)> {
        let mut v: Vec<(String, String, String, u64)> = st["services"]
            .as_array()
            .expect("services")
            .iter()
            .flat_map(|s| {
                let service = s["name"].as_str().unwrap().to_string();
                s["images"]
                    .as_array()
                    .unwrap_or_else(|| panic!("images of {service}: {s}"))
                    .iter()
                    .map(move |i| {
                        (
                            service.clone(),
                            i["container"].as_str().unwrap().to_string(),
                            i["digest"].as_str().unwrap_or_default().to_string(),
                            i["tasks"].as_u64().unwrap(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        v.sort();
        v
    };
    let st = status_json(&env).await;
    let truth = digests_truth(&env, &services);
    assert_eq!(
        truth.len(),
        6,
        "two containers of three services: {truth:?}"
    );
    assert_eq!(shown(&st), truth);
    let api_app = st["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "api")
        .and_then(|s| {
            s["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["container"] == "app")
        })
        .cloned()
        .expect("api app");
    let old = tag(&env, API_APP, "v1.0.0");
    assert_eq!(api_app["digest"], old.as_str());
    assert_eq!(
        api_app["image"],
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/online-lpa/api_app:v1.0.0"
    );

    // Text: a table of one row per service and container, the digest short.
    let out = env
        .run(&["status", SHARED, "--cluster", CLUSTER], None)
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let shown_text = String::from_utf8_lossy(&out.stdout).to_string();
    let section: Vec<&str> = shown_text
        .lines()
        .skip_while(|l| !l.starts_with("Running images"))
        .skip(2)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(section.len(), 6, "{shown_text}");
    let row = |service: &str, container: &str| -> Vec<String> {
        section
            .iter()
            .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .find(|w| w[0] == service && w[1] == container)
            .unwrap_or_else(|| panic!("{service} {container} in {shown_text}"))
    };
    assert_eq!(
        row("api", "app"),
        ["api", "app", "online-lpa/api_app:v1.0.0", &old[..19], "3"]
    );
    assert_eq!(row("admin", "web")[4], "1");

    // A new build under the tag, shipped to api, the clock stopped half way: old and new
    // tasks side by side, each digest with its own count.
    push(&env, API_APP, "v1.0.0", "api_app build 2").await;
    let new = tag(&env, API_APP, "v1.0.0");
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    env.clients
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("api")
        .force_new_deployment(true)
        .send()
        .await
        .expect("UpdateService");
    let mut mixed = false;
    for _ in 0..600 {
        env.sandbox
            .world()
            .lock()
            .unwrap()
            .advance_clock(1.0)
            .unwrap();
        // Every task ECS means to run has pulled its image (ECS reports a digest then).
        let tasks = env.running_tasks("api");
        let pulled = tasks.iter().all(|t| t["lastStatus"] == "RUNNING");
        let digests: std::collections::BTreeSet<String> =
            running_digests_or_none(&env, "api", "app")
                .into_iter()
                .flatten()
                .collect();
        if pulled && digests.contains(&old) && digests.contains(&new) {
            mixed = true;
            break;
        }
    }
    assert!(mixed, "api ran both builds at some moment");
    let st = status_json(&env).await;
    assert_eq!(shown(&st), digests_truth(&env, &services));
    let api_digests: Vec<String> = shown(&st)
        .into_iter()
        .filter(|(s, c, _, _)| s == "api" && c == "app")
        .map(|(_, _, d, _)| d)
        .collect();
    assert!(
        api_digests.contains(&old) && api_digests.contains(&new),
        "{api_digests:?}"
    );
}

/// The digests of `service`'s running tasks for `container` (`None`: not pulled yet).
fn running_digests_or_none(env: &TestEnv, service: &str, container: &str) -> Vec<Option<String>> {
    env.running_tasks(service)
        .iter()
        .map(|t| {
            t["containers"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["name"] == container))
                .and_then(|c| c["imageDigest"].as_str())
                .map(str::to_string)
        })
        .collect()
}

/// Pushes `manifest` to `repo` (under `tag` when given) with its media type, as
/// `aws ecr put-image` would; returns its digest.
async fn put(env: &TestEnv, repo: &str, tag: Option<&str>, manifest: &str, media: &str) -> String {
    env.clients
        .ecr
        .put_image()
        .repository_name(repo)
        .set_image_tag(tag.map(str::to_string))
        .image_manifest(manifest)
        .image_manifest_media_type(media)
        .send()
        .await
        .expect("PutImage")
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("digest")
        .to_string()
}

/// A multi-architecture image: two platform manifests and the OCI index of both, pushed
/// under `tag`; returns the index's digest and its platform manifests' digests.
async fn push_index(env: &TestEnv, repo: &str, tag: &str, build: &str) -> (String, Vec<String>) {
    let mut children = Vec::new();
    for platform in ["amd64", "arm64"] {
        let m = sandbox::ecr::sample_manifest(&format!("{build} {platform}"));
        children.push(put(env, repo, None, &m, sandbox::ecr::DOCKER_MANIFEST).await);
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": sandbox::ecr::OCI_INDEX,
        "manifests": children.iter().map(|d| serde_json::json!({
            "mediaType": sandbox::ecr::DOCKER_MANIFEST, "digest": d, "size": 100,
        })).collect::<Vec<_>>(),
    })
    .to_string();
    let digest = put(env, repo, Some(tag), &index, sandbox::ecr::OCI_INDEX).await;
    (digest, children)
}

/// The verdict and the whole check of `service`'s `container` in a plan of SHARED.
async fn verdict_of(env: &TestEnv, service: &str, container: &str) -> (String, Value) {
    let out = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan = json(&out);
    let check = plan["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|c| c["service"] == service && c["container"] == container)
        .cloned()
        .unwrap_or_else(|| panic!("{service}/{container} in {plan}"));
    (check["verdict"].as_str().unwrap().to_string(), check)
}

/// Multi-architecture images are compared like with like: tasks running an image index
/// are unchanged when the tag moves to one of its platform manifests (no false alarm),
/// changed when it moves to another index while the running one is still in the
/// repository, and "cannot check" once the running index is gone (it cannot be told
/// whether it held the new one), which refuses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_architecture_images_are_compared_like_with_like() {
    let env = start(SPEED).await;
    let (i1, platforms) = push_index(&env, API_APP, "v1.0.0", "api_app build 2").await;
    env.clients
        .ecs
        .update_service()
        .cluster(CLUSTER)
        .service("api")
        .force_new_deployment(true)
        .send()
        .await
        .expect("UpdateService");
    common::gate::wait_for("every api task on the index", || {
        let digests = running_digests_or_none(&env, "api", "app");
        digests.len() == 3
            && digests.iter().all(|d| d.as_deref() == Some(i1.as_str()))
            && env
                .running_tasks("api")
                .iter()
                .all(|t| t["lastStatus"] == "RUNNING")
    })
    .await;
    assert_eq!(verdict_of(&env, "api", "app").await.0, "unchanged");

    // The tag moves to the amd64 manifest of the running index: the same image there.
    put(
        &env,
        API_APP,
        Some("v1.0.0"),
        &sandbox::ecr::sample_manifest("api_app build 2 amd64"),
        sandbox::ecr::DOCKER_MANIFEST,
    )
    .await;
    assert_eq!(tag(&env, API_APP, "v1.0.0"), platforms[0]);
    assert_eq!(verdict_of(&env, "api", "app").await.0, "unchanged");

    // Another index: the running one is still in the repository, so both are known.
    let (i2, _) = push_index(&env, API_APP, "v1.0.0", "api_app build 3").await;
    let (verdict, check) = verdict_of(&env, "api", "app").await;
    assert_eq!(verdict, "changed", "{check}");
    assert_eq!(check["running"], serde_json::json!([i1]));
    assert_eq!(check["new"], i2.as_str());

    // The running index deleted: whether it held the new image cannot be told.
    env.clients
        .ecr
        .batch_delete_image()
        .repository_name(API_APP)
        .image_ids(
            secret_rollout_core::aws::ecr::ImageIdentifier::builder()
                .image_digest(&i1)
                .build(),
        )
        .send()
        .await
        .expect("BatchDeleteImage");
    let (verdict, check) = verdict_of(&env, "api", "app").await;
    assert_eq!(verdict, "cannot_check", "{check}");
    assert!(
        check["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&i1) && r.contains("no longer in the repository")),
        "{check}"
    );
    // Nothing to refuse: a redeploy of api goes on without the flag.
    let out = env
        .run(
            &[
                "redeploy",
                "--services",
                "api",
                "--cluster",
                CLUSTER,
                "--yes",
                "--max-poll",
                "50ms",
            ],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    assert_all(&running_digests(&env, "api", "app"), &i2);
}

/// A cluster that runs many tasks besides the services checked: its listing is given up
/// once it costs what listing each service would (three pages here, against three
/// services of one page and one DescribeTasks each), and the services are then listed one
/// by one: the image check's calls stay bounded, counted in the JSON as the sandbox
/// counted them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_many_other_tasks_is_listed_service_by_service() {
    let env = start(SPEED).await;
    env.sandbox.world().lock().unwrap().set_speed(0.0).unwrap();
    for _ in 0..40 {
        env.clients
            .ecs
            .run_task()
            .cluster(CLUSTER)
            .task_definition("production-seeding")
            .count(10)
            .started_by("batch")
            .send()
            .await
            .expect("RunTask");
    }
    env.sandbox.world().lock().unwrap().clear_calls();
    let out = env
        .run(
            &["plan", SHARED, "--cluster", CLUSTER, "--output", "json"],
            None,
        )
        .await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let plan = json(&out);
    // Three pages of the cluster's 400-odd tasks, then one page per service (front, api,
    // admin); DescribeTasks only for the services' tasks.
    assert_eq!(env.calls("ListTasks"), 6);
    assert_eq!(env.calls("DescribeTasks"), 3);
    assert_eq!(
        plan["image_check_calls"],
        serde_json::json!({"list_tasks": 6, "describe_tasks": 3, "batch_get_image": 6})
    );
    assert_eq!(env.calls("BatchGetImage"), 6);
    assert!(
        plan["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["verdict"] == "unchanged"),
        "{plan}"
    );
}
