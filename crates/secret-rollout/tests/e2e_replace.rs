//! The CLI end to end against the sandbox, through the real AWS SDK: every way a task can
//! read a secret, the consumers that must not be redeployed (pinned, desired 0, one-off
//! families), the one that must stop everything (CODE_DEPLOY), several secrets in one run,
//! `redeploy` alone, `plan` writing nothing, and discovery at scale. Every assertion about
//! what tasks run is made on the sandbox's ground truth, not on what the tool says.
//!
//! Cases the sample environment lacks are in `tests/data/e2e_cases.toml`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Output;

use common::{start, start_with, text, TestEnv, CLUSTER, SHARED};
use sandbox::Scenario;
use secret_rollout_core::error::exit;
use serde_json::{json, Value};

/// The cluster of `tests/data/e2e_cases.toml`.
const CASES: &str = "e2e";
/// Sandbox speed: a rolling deployment of a few virtual minutes takes well under a second.
const SPEED: f64 = 2000.0;

async fn start_cases() -> TestEnv {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/e2e_cases.toml");
    start_with(Scenario::load(path).expect("e2e_cases.toml loads"), SPEED).await
}

/// Runs a rollout command (`replace`, `redeploy`) on `cluster`, non-interactive, with a
/// short poll so completion is noticed quickly, and JSON output.
async fn rollout(env: &TestEnv, cluster: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut all: Vec<&str> = args.to_vec();
    all.extend([
        "--cluster",
        cluster,
        "--yes",
        "--max-poll",
        "50ms",
        "--output",
        "json",
    ]);
    env.run(&all, stdin).await
}

/// Runs `plan SECRET... --cluster C --output json` and returns its JSON.
async fn plan(env: &TestEnv, clusters: &[&str], secrets: &[&str]) -> Value {
    let mut args = vec!["plan"];
    args.extend(secrets);
    for c in clusters {
        args.extend(["--cluster", c]);
    }
    args.extend(["--output", "json"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("plan JSON: {e}\n{}", text(&out)))
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("report JSON: {e}\n{}", text(out)))
}

/// How many UpdateService calls each service got.
fn updates(env: &TestEnv) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in env.calls_of("UpdateService") {
        let s = c["subject"]["service"].as_str().unwrap_or_default();
        // The subject is the name or ARN the tool sent: keep the name.
        let name = s.rsplit('/').next().unwrap_or(s).to_string();
        *m.entry(name).or_insert(0) += 1;
    }
    m
}

fn once_each(services: &[&str]) -> BTreeMap<String, usize> {
    services.iter().map(|s| (s.to_string(), 1)).collect()
}

/// Ids of the tasks ECS means to keep running for a service.
fn task_ids(env: &TestEnv, service: &str) -> BTreeSet<String> {
    env.running_tasks(service)
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

/// Service names listed under `key` in the plan JSON.
fn listed(plan: &Value, key: &str) -> BTreeSet<String> {
    plan[key]
        .as_array()
        .unwrap_or_else(|| panic!("plan has no {key}: {plan}"))
        .iter()
        .filter_map(|c| c["service"].as_str().map(str::to_string))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Every running task of `service` resolved `secret` to exactly `version`.
fn assert_reads(env: &TestEnv, service: &str, secret: &str, version: &str) {
    // As many tasks as the service (of that name, in any cluster) wants, and at least one:
    // a rollout that left a service short, or a name that matches nothing, fails here.
    let desired: u64 = env.state()["ecs"]["services"]
        .as_array()
        .expect("ecs services in the state")
        .iter()
        .filter(|s| s["name"] == service)
        .map(|s| s["desiredCount"].as_u64().expect("desiredCount"))
        .sum();
    assert!(desired > 0, "{service} wants tasks");
    assert_eq!(
        env.running_tasks(service).len() as u64,
        desired,
        "{service} runs its desired tasks"
    );
    assert_eq!(
        env.versions_read(service, secret),
        set(&[version]),
        "{service} reads {secret} at {version}"
    );
}

async fn secret_string(env: &TestEnv, id: &str) -> String {
    env.clients
        .sm
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("a string secret")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_reference_form_reaches_its_reader_and_only_it() {
    let env = start_cases().await;
    let all = ["refpath", "partial", "fullarn", "jsonkey", "follow"];
    let mut rounds = 0;
    for (secret, reader) in [
        ("e2e/ref_path", "refpath"),
        ("e2e/partial", "partial"),
        ("e2e/full", "fullarn"),
    ] {
        let before: BTreeMap<&str, BTreeSet<String>> =
            all.iter().map(|s| (*s, task_ids(&env, s))).collect();
        let out = rollout(&env, CASES, &["replace", secret, "--generate"], None).await;
        assert_eq!(out.status.code(), Some(0), "{secret}: {}", text(&out));
        assert_eq!(report(&out)["outcome"], "verified", "{secret}");
        rounds += 1;
        assert_eq!(env.version_count(secret), 2, "{secret}: one new version");
        assert_reads(&env, reader, secret, &env.current_version(secret));
        assert_eq!(updates(&env)[reader], 1, "{reader} redeployed once");
        assert_eq!(
            updates(&env).values().sum::<usize>(),
            rounds,
            "only the reader of {secret} was redeployed"
        );
        for other in all.iter().filter(|s| **s != reader) {
            assert_eq!(task_ids(&env, other), before[other], "{other} untouched");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_key_replaces_one_key_and_keeps_the_others() {
    let env = start_cases().await;
    let secret = "e2e/db_credentials";
    let file = env.dir.path().join("password.txt");
    std::fs::write(&file, "new-password").unwrap();
    let out = rollout(
        &env,
        CASES,
        &[
            "replace",
            secret,
            "--json-key",
            "password",
            "--value-file",
            file.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stored: Value = serde_json::from_str(&secret_string(&env, secret).await).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"username": "app_user", "password": "new-password", "host": "db.internal", "port": 5432})
    );
    assert_reads(&env, "jsonkey", secret, &env.current_version(secret));
    assert_eq!(updates(&env), once_each(&["jsonkey"]));
    // The value went in through a file: it must not come back out on any stream.
    let all = text(&out);
    assert!(!all.contains("new-password"), "the value was printed");
    assert!(!all.contains("old-password"), "the old value was printed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_readers_are_reported_and_not_redeployed() {
    let env = start_cases().await;
    let secret = "e2e/pinned";
    let p = plan(&env, &[CASES], &[secret]).await;
    assert_eq!(listed(&p, "pinned"), set(&["pinver", "pinprev"]), "{p}");
    assert_eq!(listed(&p, "redeploy"), set(&["follow"]), "{p}");
    // The text plan says so to a person, naming each pinned reader.
    let out = env.run(&["plan", secret, "--cluster", CASES], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    for s in ["pinver", "pinprev"] {
        assert!(
            said.lines().any(|l| l.contains("pinned") && l.contains(s)),
            "{s} reported as pinned: {}",
            text(&out)
        );
    }

    let pinned_before = (task_ids(&env, "pinver"), task_ids(&env, "pinprev"));
    let out = rollout(&env, CASES, &["replace", secret, "--generate"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(updates(&env), once_each(&["follow"]));
    assert_reads(&env, "follow", secret, &env.current_version(secret));
    assert_eq!(
        (task_ids(&env, "pinver"), task_ids(&env, "pinprev")),
        pinned_before,
        "pinned readers keep their tasks"
    );
    assert_reads(
        &env,
        "pinver",
        secret,
        "22222222-0000-4000-8000-000000000000",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_zero_reader_is_listed_and_skipped() {
    let env = start_cases().await;
    let secret = "e2e/idle";
    let p = plan(&env, &[CASES], &[secret]).await;
    assert_eq!(listed(&p, "idle"), set(&["idle"]), "{p}");
    assert_eq!(listed(&p, "redeploy"), set(&["follow"]), "{p}");

    let out = rollout(&env, CASES, &["replace", secret, "--generate"], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(updates(&env), once_each(&["follow"]), "idle not redeployed");
    assert_reads(&env, "follow", secret, &env.current_version(secret));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_deploy_reader_refuses_before_any_write() {
    let env = start_cases().await;
    let secret = "e2e/codedeploy";
    let before = env.current_version(secret);
    let out = rollout(&env, CASES, &["replace", secret, "--generate"], None).await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bluegreen") && stderr.contains("CODE_DEPLOY"),
        "the refusal names the service and why: {}",
        text(&out)
    );
    assert_eq!(env.version_count(secret), 1, "no version written");
    assert_eq!(env.current_version(secret), before);
    assert_eq!(env.calls("PutSecretValue"), 0);
    assert_eq!(env.calls("UpdateService"), 0);

    // An EXTERNAL controller is refused the same way.
    let out = rollout(
        &env,
        CASES,
        &["replace", "e2e/external", "--generate"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::REFUSED), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("EXTERNAL"),
        "{}",
        text(&out)
    );
    assert_eq!(env.version_count("e2e/external"), 1, "no version written");
    assert_eq!(env.calls("PutSecretValue"), 0);
    assert_eq!(env.calls("UpdateService"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_key_on_a_plain_secret_is_refused_before_any_write() {
    let env = start_cases().await;
    let secret = "e2e/ref_path";
    let out = rollout(
        &env,
        CASES,
        &["replace", secret, "--json-key", "password", "--generate"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(exit::BAD_INPUT), "{}", text(&out));
    assert_eq!(env.version_count(secret), 1, "no version written");
    assert_eq!(env.calls("PutSecretValue"), 0);
    assert_eq!(env.calls("UpdateService"), 0);
    assert!(
        !text(&out).contains("ref-path-0"),
        "the current value leaked into the error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_secrets_in_one_run_redeploy_each_service_once() {
    let env = start(SPEED).await;
    let admin = "production/opg_lpa_admin_service_secret";
    let (a, b) = (env.dir.path().join("a"), env.dir.path().join("b"));
    std::fs::write(&a, "recipients-new@example.com").unwrap();
    std::fs::write(&b, "admin-secret-new").unwrap();
    let pdf_tasks = task_ids(&env, "pdf");
    let out = rollout(
        &env,
        CLUSTER,
        &[
            "replace",
            SHARED,
            admin,
            "--value-file",
            a.to_str().unwrap(),
            "--value-file",
            b.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // SHARED is read by front, api and admin; the admin secret by api and admin.
    assert_eq!(updates(&env), once_each(&["front", "api", "admin"]));
    assert_eq!(
        secret_string(&env, SHARED).await,
        "recipients-new@example.com"
    );
    assert_eq!(secret_string(&env, admin).await, "admin-secret-new");
    let (shared_now, admin_now) = (env.current_version(SHARED), env.current_version(admin));
    for s in ["front", "api", "admin"] {
        assert_reads(&env, s, SHARED, &shared_now);
    }
    for s in ["api", "admin"] {
        assert_reads(&env, s, admin, &admin_now);
    }
    assert_eq!(task_ids(&env, "pdf"), pdf_tasks, "pdf untouched");
    let r = report(&out);
    assert_eq!(r["aws_calls"]["SecretsManager.PutSecretValue"], 2, "{r}");
    assert_eq!(r["aws_calls"]["ECS.UpdateService"], 3, "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeploy_by_services_and_by_secret() {
    let env = start(SPEED).await;
    let versions_before = env.current_version(SHARED);
    let (api, admin) = (task_ids(&env, "api"), task_ids(&env, "admin"));
    let out = rollout(
        &env,
        CLUSTER,
        &["redeploy", "--services", "front,pdf"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(updates(&env), once_each(&["front", "pdf"]));
    assert_eq!(env.calls("PutSecretValue"), 0, "redeploy writes no secret");
    assert_eq!(env.current_version(SHARED), versions_before);
    assert_eq!(
        (task_ids(&env, "api"), task_ids(&env, "admin")),
        (api, admin)
    );
    // Every running task of front and pdf was started by the forced deployment.
    let state = env.state();
    for s in ["front", "pdf"] {
        let svc = state["ecs"]["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == s)
            .unwrap()
            .clone();
        let primary = svc["deployments"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            svc["deployments"].as_array().unwrap().len(),
            1,
            "{s} settled"
        );
        for t in env.running_tasks(s) {
            assert_eq!(t["startedBy"], primary.as_str(), "{s}: {t}");
        }
    }

    let env = start(SPEED).await;
    let out = rollout(
        &env,
        CLUSTER,
        &[
            "redeploy",
            "--secret",
            "production/opg_lpa_admin_service_secret",
        ],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(updates(&env), once_each(&["api", "admin"]));
    assert_eq!(env.calls("PutSecretValue"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_writes_nothing_and_lists_consumers_and_one_off_families() {
    let env = start(SPEED).await;
    let p = plan(&env, &[CLUSTER], &[SHARED]).await;
    assert_eq!(
        listed(&p, "redeploy"),
        set(&["front", "api", "admin"]),
        "{p}"
    );
    let families: BTreeSet<String> = p["one_off"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["family"].as_str().map(str::to_string))
        .collect();
    assert_eq!(families, set(&["production-api-cron"]), "{p}");
    assert_eq!(p["secrets"][0]["name"], SHARED);
    assert_eq!(
        p["secrets"][0]["current_version"],
        env.current_version(SHARED).as_str()
    );
    // The plan is the only thing that has run: its count is the sandbox's.
    assert_eq!(
        p["aws_calls"]["ECS.DescribeServices"].as_u64(),
        Some(env.calls("DescribeServices") as u64),
        "{p}"
    );
    assert_eq!(env.calls("DescribeServices"), 1, "one cluster, one call");
    for op in [
        "PutSecretValue",
        "UpdateSecretVersionStage",
        "UpdateService",
    ] {
        assert_eq!(env.calls(op), 0, "plan called {op}");
    }
    assert_eq!(env.version_count(SHARED), 1);

    // The rds password's only readers besides api are the one-off families.
    let p = plan(&env, &[CLUSTER], &["production/api_rds_password"]).await;
    let families: BTreeSet<String> = p["one_off"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["family"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        families,
        set(&["production-migrations", "production-seeding"]),
        "{p}"
    );
    assert_eq!(listed(&p, "redeploy"), set(&["api"]), "{p}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_of_1000_services_in_20_clusters_is_batched() {
    const SERVICES: usize = 1000;
    const CLUSTERS: usize = 20;
    const FAMILIES: usize = 100;
    const REPOS: usize = 10;
    // Every generated service reads generated/shared by full ARN, one task each. Ten
    // services share each task definition, so "once per distinct task definition" is
    // 100 calls where a naive discovery makes 1000.
    let mut scenario = Scenario::generated(SERVICES, 1, CLUSTERS);
    // Families no service runs are described too (one-off readers): keep only the ones
    // in use, so the count below is about sharing.
    scenario.task_definitions.truncate(FAMILIES);
    // Their images are tags in ten ECR repositories (the sandbox pushes them), so the
    // image check (issue 18) reads every service's running tasks and asks ECR.
    for (i, td) in scenario.task_definitions.iter_mut().enumerate() {
        td["containerDefinitions"][0]["image"] = format!(
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com/generated/app-{}:live",
            i % REPOS
        )
        .into();
    }
    for (i, s) in scenario.services.iter_mut().enumerate() {
        s.request.insert(
            "taskDefinition".into(),
            format!("svc-{}", i % FAMILIES).into(),
        );
    }
    let env = start_with(scenario, SPEED).await;
    let clusters: Vec<String> = (0..CLUSTERS).map(|c| format!("cluster-{c}")).collect();
    let cluster_refs: Vec<&str> = clusters.iter().map(String::as_str).collect();
    let p = plan(&env, &cluster_refs, &["generated/shared"]).await;
    assert_eq!(
        p["redeploy"].as_array().map(Vec::len),
        Some(SERVICES),
        "every service is a consumer"
    );

    // DescribeServices: at most ceil(n/10) per cluster, from the sandbox's own log.
    let mut per_cluster: BTreeMap<String, usize> = BTreeMap::new();
    for c in env.calls_of("DescribeServices") {
        let cluster = c["subject"]["cluster"].as_str().unwrap_or_default();
        let name = cluster.rsplit('/').next().unwrap_or(cluster).to_string();
        *per_cluster.entry(name).or_insert(0) += 1;
    }
    let per = SERVICES / CLUSTERS;
    let bound = per.div_ceil(10);
    for c in &clusters {
        let n = per_cluster.get(c).copied().unwrap_or(0);
        assert!(
            n <= bound,
            "{c}: {n} DescribeServices calls, at most {bound}"
        );
    }
    let total: usize = per_cluster.values().sum();
    assert!(
        total <= SERVICES.div_ceil(10),
        "{total} DescribeServices calls"
    );

    // DescribeTaskDefinition: once per distinct task definition.
    let described: Vec<String> = env
        .calls_of("DescribeTaskDefinition")
        .iter()
        .filter_map(|c| c["subject"]["taskDefinition"].as_str().map(str::to_string))
        .collect();
    let distinct: BTreeSet<&String> = described.iter().collect();
    assert_eq!(
        distinct.len(),
        FAMILIES,
        "every task definition in use described"
    );
    assert_eq!(
        described.len(),
        FAMILIES,
        "none described twice: {described:?}"
    );
    // The tool counts attempts, retries included: a machine loaded enough to time out a
    // connection (the sandbox answering 2,000 task listings besides) adds one. The
    // sandbox's count above is the exact one.
    let counted = p["aws_calls"]["ECS.DescribeTaskDefinition"]
        .as_u64()
        .unwrap();
    assert!(
        (FAMILIES as u64..=FAMILIES as u64 + 5).contains(&counted),
        "{}",
        p["aws_calls"]
    );

    // The image check: each cluster's running tasks (fifty, one per service) listed in one
    // ListTasks page and described in one DescribeTasks, not two calls per service; ECR
    // asked once per repository (one tag and the digests its tasks run: under a hundred).
    let per_cluster = |operation: &str| {
        let mut m: BTreeMap<String, usize> = BTreeMap::new();
        for c in env.calls_of(operation) {
            let cluster = c["subject"]["cluster"].as_str().unwrap_or_default();
            let name = cluster.rsplit('/').next().unwrap_or(cluster).to_string();
            *m.entry(name).or_insert(0) += 1;
        }
        m
    };
    let once: BTreeMap<String, usize> = clusters.iter().map(|c| (c.clone(), 1)).collect();
    assert_eq!(per_cluster("ListTasks"), once, "ListTasks per cluster");
    assert_eq!(
        per_cluster("DescribeTasks"),
        once,
        "DescribeTasks per cluster"
    );
    assert_eq!(env.calls("BatchGetImage"), REPOS);
    // Counted in the JSON output as the sandbox counted them.
    assert_eq!(
        p["image_check_calls"],
        json!({"list_tasks": CLUSTERS, "describe_tasks": CLUSTERS, "batch_get_image": REPOS}),
        "{p}"
    );
    // Every service runs what its tag points to: nothing moved, nothing to say.
    let images = p["images"].as_array().expect("images");
    assert_eq!(images.len(), SERVICES);
    assert!(images.iter().all(|c| c["verdict"] == "unchanged"), "{p}");

    // status (and so sync, which plans with it) lists the tasks the same way.
    env.sandbox.world().lock().unwrap().clear_calls();
    let mut args = vec!["status", "generated/shared"];
    for c in &cluster_refs {
        args.extend(["--cluster", c]);
    }
    args.extend(["--output", "json"]);
    let out = env.run(&args, None).await;
    assert_eq!(out.status.code(), Some(exit::OK), "{}", text(&out));
    let st: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let services = st["services"].as_array().expect("services");
    assert_eq!(services.len(), SERVICES);
    assert!(
        services
            .iter()
            .all(|s| s["tasks"].as_array().map(Vec::len) == Some(1)),
        "one task each"
    );
    assert_eq!(
        per_cluster("ListTasks"),
        once,
        "status: ListTasks per cluster"
    );
    assert_eq!(
        per_cluster("DescribeTasks"),
        once,
        "status: DescribeTasks per cluster"
    );
}
