//! Unit tests of the ECS simulation, with a fake secret source and a manual clock.

use std::cell::RefCell;
use std::collections::HashMap;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::model::Rollout;
use super::{Ecs, HealthEffect, HealthRule};
use crate::secrets::{Resolved, SecretSource};
use crate::{Ctx, OpResult};

const T0: f64 = 1_700_000_000.0;

/// Secrets by name: (version id, value). Interior mutability so a test can change a secret
/// between calls like PutSecretValue would.
#[derive(Default)]
struct Fake {
    secrets: RefCell<HashMap<String, (String, String)>>,
}

impl Fake {
    fn put(&self, name: &str, version: &str, value: &str) {
        self.secrets
            .borrow_mut()
            .insert(name.to_string(), (version.to_string(), value.to_string()));
    }
}

impl SecretSource for Fake {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String> {
        if crate::ssm::is_parameter_reference(value_from) {
            let (version, value) =
                self.secrets
                    .borrow()
                    .get(value_from)
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                        "service call has been retried 1 time(s): invalid parameters: {value_from}"
                    )
                    })?;
            return Ok(Resolved {
                secret_arn: format!("arn:aws:ssm:{region}:{account}:parameter{value_from}"),
                name: value_from.to_string(),
                version_id: version,
                json_key: None,
                value,
            });
        }
        let (name, key) = if let Some(n) = value_from.strip_prefix("/aws/reference/secretsmanager/")
        {
            (n.to_string(), None)
        } else {
            let rest = value_from.split(":secret:").nth(1).ok_or("bad reference")?;
            let mut parts = rest.split(':');
            let name = parts.next().unwrap_or_default();
            let name = name.strip_suffix("-AbCdEf").unwrap_or(name).to_string();
            let key = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
            (name, key)
        };
        let (version, value) = self.secrets.borrow().get(&name).cloned().ok_or_else(|| {
            "ResourceNotFoundException: Secrets Manager can't find the specified secret."
                .to_string()
        })?;
        let value = match &key {
            None => value,
            Some(k) => serde_json::from_str::<Value>(&value)
                .ok()
                .and_then(|v| v.get(k).and_then(Value::as_str).map(str::to_string))
                .ok_or_else(|| {
                    format!("retrieved secret from Secrets Manager did not contain json key {k}")
                })?,
        };
        Ok(Resolved {
            secret_arn: format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"),
            name,
            version_id: version,
            json_key: key,
            value,
        })
    }
}

struct H {
    ecs: Ecs,
    rng: ChaCha8Rng,
    now: f64,
    src: Fake,
}

impl H {
    fn new(seed: u64) -> H {
        let mut h = H {
            ecs: Ecs::default(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            now: T0,
            src: Fake::default(),
        };
        h.src.put("db_password", "v1", "old-password");
        h.call_ok("CreateCluster", json!({"clusterName": "prod"}));
        h
    }

    fn ctx_call(&mut self, op: &str, body: &Value) -> OpResult {
        let mut ctx = Ctx {
            now: self.now,
            region: "eu-west-1",
            account: "123456789012",
            rng: &mut self.rng,
        };
        self.ecs.advance(&mut ctx, &self.src);
        let r = self.ecs.handle(&mut ctx, &self.src, op, body);
        self.ecs.advance(&mut ctx, &self.src);
        r
    }

    fn call_ok(&mut self, op: &str, body: Value) -> Value {
        match self.ctx_call(op, &body) {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    fn err(&mut self, op: &str, body: Value) -> (String, String) {
        let e = self.ctx_call(op, &body).expect_err("expected an error");
        (e.code, e.message)
    }

    fn at(&mut self, t: f64) {
        self.now = t;
        let mut ctx = Ctx {
            now: t,
            region: "eu-west-1",
            account: "123456789012",
            rng: &mut self.rng,
        };
        self.ecs.advance(&mut ctx, &self.src);
    }

    fn wait(&mut self, secs: f64) {
        let t = self.now + secs;
        self.at(t);
    }

    /// Steps from event time to event time until `until`, calling `check` after each.
    fn step_events(&mut self, until: f64, mut check: impl FnMut(&Ecs)) {
        loop {
            let next = self.ecs.heap.peek().map(|r| r.0.at);
            match next {
                Some(t) if t <= until => {
                    self.at(t);
                    check(&self.ecs);
                }
                _ => break,
            }
        }
        self.at(until);
        check(&self.ecs);
    }

    fn register(&mut self, family: &str, secrets: Value) -> String {
        let v = self.call_ok(
            "RegisterTaskDefinition",
            json!({
                "family": family,
                "containerDefinitions": [
                    {"name": "web", "image": "nginx"},
                    {"name": "app", "image": "app", "secrets": secrets},
                ],
            }),
        );
        v["taskDefinition"]["taskDefinitionArn"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn service(&mut self, name: &str, desired: u32, min: u32, max: u32, breaker: Value) -> Value {
        self.register(
            &format!("prod-{name}"),
            json!([{"name": "DB_PASSWORD", "valueFrom": "/aws/reference/secretsmanager/db_password"}]),
        );
        self.call_ok(
            "CreateService",
            json!({
                "cluster": "prod",
                "serviceName": name,
                "taskDefinition": format!("prod-{name}"),
                "desiredCount": desired,
                "deploymentConfiguration": {
                    "minimumHealthyPercent": min,
                    "maximumPercent": max,
                    "deploymentCircuitBreaker": breaker,
                },
            }),
        )
    }

    fn describe(&mut self, name: &str) -> Value {
        let v = self.call_ok(
            "DescribeServices",
            json!({"cluster": "prod", "services": [name]}),
        );
        v["services"][0].clone()
    }

    fn svc_idx(&self, name: &str) -> usize {
        let c = self.ecs.cluster_idx("prod").unwrap();
        self.ecs.service_idx(c, name).unwrap()
    }

    fn force(&mut self, name: &str) -> String {
        let v = self.call_ok(
            "UpdateService",
            json!({"cluster": "prod", "service": name, "forceNewDeployment": true}),
        );
        v["service"]["deployments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn messages(&mut self, name: &str) -> Vec<String> {
        self.describe(name)["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap().to_string())
            .collect()
    }

    /// Tasks of a service from the snapshot.
    fn tasks_of(&self, name: &str) -> Vec<Value> {
        self.ecs.snapshot()["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["service"] == json!(name))
            .cloned()
            .collect()
    }
}

fn no_breaker() -> Value {
    json!({"enable": false, "rollback": false})
}

fn breaker(rollback: bool) -> Value {
    json!({"enable": true, "rollback": rollback})
}

fn deployments(svc: &Value) -> Vec<Value> {
    svc["deployments"].as_array().unwrap().clone()
}

/// Runs a forced deployment and checks maximumPercent / minimumHealthyPercent after every
/// simulation event. Returns (max live seen, min healthy seen).
fn rolling(desired: u32, min: u32, max: u32) -> (u32, u32, H) {
    let mut h = H::new(1);
    h.service("api", desired, min, max, no_breaker());
    h.wait(600.0);
    let first = h.describe("api");
    assert_eq!(deployments(&first).len(), 1);
    assert_eq!(first["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(first["runningCount"], json!(desired));
    let s = h.svc_idx("api");
    let max_total = desired * max / 100;
    let min_healthy = (desired * min).div_ceil(100);
    let mut seen_max = 0;
    let mut seen_min = u32::MAX;
    let check = |e: &Ecs, seen_max: &mut u32, seen_min: &mut u32| {
        let c = e.services[s].counts();
        assert!(c.live <= max_total, "{} live > max {max_total}", c.live);
        assert!(
            c.healthy >= min_healthy,
            "{} healthy < min {min_healthy}",
            c.healthy
        );
        e.assert_counts_consistent();
        *seen_max = (*seen_max).max(c.live);
        *seen_min = (*seen_min).min(c.healthy);
    };
    h.force("api");
    check(&h.ecs, &mut seen_max, &mut seen_min);
    let until = h.now + 600.0;
    h.step_events(until, |e| check(e, &mut seen_max, &mut seen_min));
    (seen_max, seen_min, h)
}

#[test]
fn rolling_min_100_max_200_starts_all_new_tasks_first() {
    let (seen_max, seen_min, mut h) = rolling(3, 100, 200);
    assert_eq!(
        seen_max, 6,
        "all three new tasks start before any old one stops"
    );
    assert_eq!(seen_min, 3);
    let svc = h.describe("api");
    let deps = deployments(&svc);
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0]["status"], "PRIMARY");
    assert_eq!(deps[0]["rolloutState"], "COMPLETED");
    let new_id = deps[0]["id"].as_str().unwrap().to_string();
    let tasks = h.tasks_of("api");
    let running: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect();
    assert_eq!(running.len(), 3);
    assert!(running.iter().all(|t| t["startedBy"] == json!(new_id)));
    let replaced: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["startedBy"] != json!(new_id))
        .collect();
    assert_eq!(replaced.len(), 3);
    for t in replaced {
        assert_eq!(t["lastStatus"], "STOPPED");
        assert_eq!(t["stopCode"], "ServiceSchedulerInitiated");
        let reason = t["stoppedReason"].as_str().unwrap();
        assert_eq!(
            reason,
            format!(
                "Scaling activity initiated by (deployment {})",
                t["startedBy"].as_str().unwrap()
            )
        );
    }
}

#[test]
fn rolling_min_50_stops_half_the_old_tasks_at_once() {
    let mut h = H::new(2);
    h.service("api", 4, 50, 200, no_breaker());
    h.wait(600.0);
    let old = h.describe("api")["deployments"][0]["id"].clone();
    h.force("api");
    let tasks = h.tasks_of("api");
    let old_live = tasks
        .iter()
        .filter(|t| t["startedBy"] == old && t["desiredStatus"] == "RUNNING")
        .count();
    assert_eq!(old_live, 2, "min 50% of 4 lets two old tasks stop at once");
    let (seen_max, seen_min, _) = rolling(4, 50, 200);
    assert!(seen_max <= 8);
    assert_eq!(seen_min, 2);
}

#[test]
fn rolling_max_100_never_exceeds_desired() {
    let (seen_max, seen_min, mut h) = rolling(4, 50, 100);
    assert_eq!(seen_max, 4);
    assert_eq!(seen_min, 2);
    assert_eq!(
        h.describe("api")["deployments"][0]["rolloutState"],
        "COMPLETED"
    );
}

#[test]
fn rolling_min_0_max_100_replaces_everything_at_once() {
    let (seen_max, seen_min, _) = rolling(2, 0, 100);
    assert_eq!(seen_max, 2);
    assert_eq!(seen_min, 0);
}

#[test]
fn deployment_fields_during_a_forced_deployment() {
    let mut h = H::new(3);
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    let old = h.describe("api")["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let new = h.force("api");
    assert_ne!(old, new);
    for id in [&old, &new] {
        let digits = id.strip_prefix("ecs-svc/").unwrap();
        assert_eq!(digits.len(), 19);
        assert!(digits.chars().all(|c| c.is_ascii_digit()));
    }
    h.wait(1.0);
    let svc = h.describe("api");
    let deps = deployments(&svc);
    assert_eq!(deps.len(), 2);
    assert_eq!(deps[0]["id"], json!(new));
    assert_eq!(deps[0]["status"], "PRIMARY");
    assert_eq!(deps[0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(
        deps[0]["rolloutStateReason"],
        format!("ECS deployment {new} in progress.")
    );
    assert_eq!(deps[0]["pendingCount"], 2);
    assert_eq!(deps[1]["status"], "ACTIVE");
    assert_eq!(deps[1]["desiredCount"], 0);
    assert_eq!(deps[1]["runningCount"], 2);
    assert_eq!(deps[1]["rolloutState"], "COMPLETED");
    assert_eq!(
        deps[1]["rolloutStateReason"],
        format!("ECS deployment {old} completed.")
    );
    // New tasks run, old ones drain: the service counts both.
    h.wait(40.0);
    let svc = h.describe("api");
    assert_eq!(
        svc["runningCount"], 2,
        "old tasks told to stop are draining, not RUNNING"
    );
    let tasks = h.tasks_of("api");
    assert!(tasks
        .iter()
        .filter(|t| t["startedBy"] == json!(old))
        .all(|t| t["lastStatus"] == "DEACTIVATING" && t["desiredStatus"] == "STOPPED"));
    assert_eq!(
        deployments(&svc).len(),
        2,
        "old entry listed while draining"
    );
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(
        svc["deployments"][0]["rolloutStateReason"],
        format!("ECS deployment {new} completed.")
    );
    let msgs = h.messages("api");
    assert_eq!(msgs[0], "(service api) has reached a steady state.");
    assert_eq!(
        msgs[1],
        format!("(service api) (deployment {new}) deployment completed.")
    );
    assert!(msgs
        .iter()
        .any(|m| m.starts_with("(service api) has started 2 tasks: (task ") && m.ends_with(").")));
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("(service api) has stopped 2 running tasks: (task ")),
        "{msgs:?}"
    );
}

#[test]
fn task_timestamps_and_wire_shape() {
    let mut h = H::new(4);
    h.service("api", 1, 100, 200, no_breaker());
    h.wait(600.0);
    let arns = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "serviceName": "api"}),
    );
    let arn = arns["taskArns"][0].as_str().unwrap().to_string();
    let re = arn
        .strip_prefix("arn:aws:ecs:eu-west-1:123456789012:task/prod/")
        .unwrap();
    assert_eq!(re.len(), 32);
    assert!(re.chars().all(|c| c.is_ascii_hexdigit()));
    let t =
        h.call_ok("DescribeTasks", json!({"cluster": "prod", "tasks": [arn]}))["tasks"][0].clone();
    assert_eq!(t["group"], "service:api");
    assert_eq!(t["lastStatus"], "RUNNING");
    assert_eq!(t["healthStatus"], "HEALTHY");
    let c = t["createdAt"].as_f64().unwrap();
    let ps = t["pullStartedAt"].as_f64().unwrap();
    let pe = t["pullStoppedAt"].as_f64().unwrap();
    let s = t["startedAt"].as_f64().unwrap();
    assert!(c < ps && ps < pe && pe <= s);
    h.force("api");
    h.wait(600.0);
    let t =
        h.call_ok("DescribeTasks", json!({"cluster": "prod", "tasks": [re]}))["tasks"][0].clone();
    let s2 = t["stoppingAt"].as_f64().unwrap();
    let e = t["executionStoppedAt"].as_f64().unwrap();
    let st = t["stoppedAt"].as_f64().unwrap();
    assert!(s < s2 && s2 < e && e < st);
}

#[test]
fn tasks_keep_the_secret_version_they_launched_with() {
    let mut h = H::new(5);
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    h.src.put("db_password", "v2", "new-password");
    // Scaling up launches a task now: it reads v2, the running ones keep v1.
    h.call_ok(
        "UpdateService",
        json!({"cluster": "prod", "service": "api", "desiredCount": 3}),
    );
    h.wait(600.0);
    let mut versions: Vec<String> = h
        .tasks_of("api")
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .map(|t| t["secrets"][0]["version_id"].as_str().unwrap().to_string())
        .collect();
    versions.sort();
    assert_eq!(versions, ["v1", "v1", "v2"]);
    let t = &h.tasks_of("api")[0];
    assert_eq!(
        t["secrets"][0]["value_from"],
        "/aws/reference/secretsmanager/db_password"
    );
    assert_eq!(t["secrets"][0]["name"], "db_password");
    assert!(!h.ecs.snapshot().to_string().contains("old-password"));
    h.force("api");
    h.wait(900.0);
    let running: Vec<Value> = h
        .tasks_of("api")
        .into_iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect();
    assert_eq!(running.len(), 3);
    assert!(running
        .iter()
        .all(|t| t["secrets"][0]["version_id"] == "v2"));
}

#[test]
fn ssm_parameters_are_resolved_apart_from_secrets_and_all_reference_fields_are() {
    let mut h = H::new(6);
    h.src.put("/prod/plain-parameter", "3", "v");
    h.src
        .put("registry", "r1", "{\"username\":\"u\",\"password\":\"p\"}");
    h.src.put("logkey", "l1", "k");
    h.call_ok(
        "RegisterTaskDefinition",
        json!({
            "family": "prod-misc",
            "containerDefinitions": [{
                "name": "app",
                "image": "app",
                "secrets": [
                    {"name": "PLAIN", "valueFrom": "/prod/plain-parameter"},
                    {"name": "DB", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db_password-AbCdEf"},
                ],
                "logConfiguration": {"logDriver": "splunk", "secretOptions": [
                    {"name": "splunk-token", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:logkey"}
                ]},
                "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry"},
            }],
        }),
    );
    let td = h.call_ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "prod-misc"}),
    );
    assert_eq!(
        td["taskDefinition"]["containerDefinitions"][0]["logConfiguration"]["secretOptions"][0]
            ["name"],
        "splunk-token"
    );
    h.call_ok(
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "prod-misc"}),
    );
    h.wait(60.0);
    let snap = h.ecs.snapshot();
    let t = &snap["tasks"][0];
    assert_eq!(t["lastStatus"], "RUNNING");
    assert_eq!(t["group"], "family:prod-misc");
    let names: Vec<&str> = t["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db_password", "logkey", "registry"]);
    assert_eq!(
        t["parameters"],
        json!([{"value_from": "/prod/plain-parameter",
                "arn": "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/plain-parameter",
                "name": "/prod/plain-parameter", "version": 3}])
    );
}

#[test]
fn a_pinned_parameter_reference_is_refused_at_registration() {
    let mut h = H::new(7);
    for vf in [
        "/prod/db:3",
        "/prod/db:label",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db:3",
    ] {
        let body = json!({"family": "prod-x", "containerDefinitions": [
            {"name": "app", "image": "app", "secrets": [{"name": "DB", "valueFrom": vf}]}
        ]});
        let e = h.ctx_call("RegisterTaskDefinition", &body).unwrap_err();
        assert_eq!(e.code, "ClientException", "{vf}");
        assert!(
            e.message.starts_with(
                "The Systems Manager parameter name specified for secret DB is invalid."
            ),
            "{vf}: {}",
            e.message
        );
    }
    // Nothing was registered.
    let e = h
        .ctx_call(
            "DescribeTaskDefinition",
            &json!({"taskDefinition": "prod-x"}),
        )
        .unwrap_err();
    assert_eq!(e.code, "ClientException");
}

#[test]
fn a_missing_parameter_stops_the_task_with_ssms_message() {
    let mut h = H::new(7);
    h.register("prod-x", json!([{"name": "A", "valueFrom": "/prod/nope"}]));
    h.call_ok(
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "prod-x:1"}),
    );
    h.wait(60.0);
    let snap = h.ecs.snapshot();
    let t = &snap["tasks"][0];
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert_eq!(
        t["stoppedReason"],
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: /prod/nope"
    );
    assert_eq!(t["parameters"], json!([]));
}

#[test]
fn missing_secret_stops_the_task_with_resource_initialization_error() {
    let mut h = H::new(7);
    h.register(
        "prod-x",
        json!([{"name": "A", "valueFrom": "/aws/reference/secretsmanager/nope"}]),
    );
    h.call_ok(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "x", "taskDefinition": "prod-x", "desiredCount": 1}),
    );
    h.wait(60.0);
    let tasks = h.tasks_of("x");
    let t = &tasks[0];
    assert_eq!(t["stopCode"], "TaskFailedToStart");
    assert_eq!(
        t["stoppedReason"],
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: service call has been retried 5 time(s): ResourceNotFoundException: Secrets Manager can't find the specified secret."
    );
    assert!(t["startedAt"].is_null(), "never reached RUNNING");
    let msgs = h.messages("x");
    assert!(msgs.contains(&format!(
        "(service x) was unable to place a task. Reason: {}. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.",
        t["stoppedReason"].as_str().unwrap()
    )));
    let svc = h.describe("x");
    assert_eq!(svc["deployments"][0]["failedTasks"], 2);
    assert_eq!(
        svc["deployments"][0]["rolloutState"], "IN_PROGRESS",
        "no breaker: retries forever"
    );
}

#[test]
fn bad_json_key_is_a_resource_initialization_error() {
    let mut h = H::new(8);
    h.register(
        "prod-x",
        json!([{"name": "A", "valueFrom": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db_password-AbCdEf:password::"}]),
    );
    h.call_ok(
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "prod-x:1"}),
    );
    h.wait(60.0);
    let t = h.ecs.snapshot()["tasks"][0].clone();
    assert_eq!(t["lastStatus"], "STOPPED");
    assert_eq!(
        t["stoppedReason"],
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from asm: retrieved secret from Secrets Manager did not contain json key password"
    );
}

fn bad_value_rule(effect: HealthEffect) -> Vec<HealthRule> {
    vec![HealthRule {
        cluster: Some("prod".into()),
        service: Some("api".into()),
        secret: Some("db_password".into()),
        value: Some("bad-password".into()),
        version_id: None,
        probability: None,
        effect,
    }]
}

#[test]
fn circuit_breaker_rolls_back_and_the_rollback_rereads_the_bad_secret() {
    let mut h = H::new(9);
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::AppRejectsValue));
    h.service("api", 2, 50, 200, breaker(true));
    h.wait(600.0);
    let old = h.describe("api")["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.src.put("db_password", "v2", "bad-password");
    let new = h.force("api");
    h.wait(600.0);
    let svc = h.describe("api");
    let deps = deployments(&svc);
    assert_eq!(deps[0]["id"], json!(old), "the rollback reuses the old id");
    assert_eq!(deps[0]["status"], "PRIMARY");
    assert_eq!(deps[0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(
        deps[0]["rolloutStateReason"],
        format!("ECS deployment circuit breaker: rolling back to deploymentId {old}.")
    );
    let failed = deps
        .iter()
        .find(|d| d["id"] == json!(new))
        .expect("failed deployment listed");
    assert_eq!(failed["status"], "ACTIVE");
    assert_eq!(failed["rolloutState"], "FAILED");
    assert_eq!(failed["failedTasks"], 4);
    assert_eq!(
        failed["rolloutStateReason"],
        "ECS deployment circuit breaker: tasks failed to start."
    );
    let msgs = h.messages("api");
    assert!(msgs.contains(&format!(
        "(service api) (deployment {new}) deployment failed: tasks failed to start."
    )));
    assert!(msgs.contains(&format!("(service api) rolling back to deployment {old}.")));
    // The rollback's own launches read the secret as it is now (still bad) and fail.
    assert_eq!(deps[0]["failedTasks"], 22);
    let rollback_launches: Vec<Value> = h
        .tasks_of("api")
        .into_iter()
        .filter(|t| t["startedBy"] == json!(old) && t["secrets"][0]["version_id"] == "v2")
        .collect();
    assert_eq!(rollback_launches.len(), 23);
    assert!(rollback_launches
        .iter()
        .filter(|t| t["desiredStatus"] == "STOPPED")
        .all(|t| t["stopCode"] == "EssentialContainerExited"
            && t["stoppedReason"] == "Essential container in task exited"));
    assert!(rollback_launches
        .iter()
        .any(|t| t["desiredStatus"] == "STOPPED"));
    // Moving the value back lets the rollback finish.
    h.src.put("db_password", "v1", "old-password");
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(old));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(svc["runningCount"], 2);
    assert!(svc["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with("prod-api:1"));
}

#[test]
fn circuit_breaker_without_rollback_leaves_the_primary_failed_and_idle() {
    let mut h = H::new(10);
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::FailHealthCheck));
    h.service("api", 2, 100, 200, breaker(false));
    h.wait(600.0);
    h.src.put("db_password", "v2", "bad-password");
    let new = h.force("api");
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "FAILED");
    assert_eq!(svc["deployments"][0]["status"], "PRIMARY");
    let launched = h
        .tasks_of("api")
        .iter()
        .filter(|t| t["startedBy"] == json!(new))
        .count();
    h.wait(2400.0); // less than the hour stopped tasks stay visible
    let svc = h.describe("api");
    assert_eq!(svc["deployments"][0]["failedTasks"], 4);
    assert_eq!(
        h.tasks_of("api")
            .iter()
            .filter(|t| t["startedBy"] == json!(new))
            .count(),
        launched,
        "a FAILED primary launches nothing"
    );
    assert_eq!(svc["runningCount"], 2, "old tasks keep serving");
    let msgs = h.messages("api");
    assert!(msgs.iter().any(|m| m.starts_with("(service api) (task ")
        && m.ends_with(") failed container health checks.")));
    let failed = h
        .tasks_of("api")
        .into_iter()
        .find(|t| t["stoppedReason"] == "Task failed container health checks")
        .expect("a task failed its health check");
    assert!(!failed["startedAt"].is_null(), "it was RUNNING first");
}

#[test]
fn without_the_breaker_a_failing_deployment_retries_forever() {
    let mut h = H::new(11);
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::AppRejectsValue));
    h.service("api", 1, 100, 200, no_breaker());
    h.wait(600.0);
    h.src.put("db_password", "v2", "bad-password");
    h.force("api");
    h.wait(3600.0);
    let svc = h.describe("api");
    assert_eq!(svc["deployments"][0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(svc["deployments"][0]["failedTasks"], 144);
    assert_eq!(svc["runningCount"], 1);
}

#[test]
fn probability_rules_hit_some_tasks() {
    let mut h = H::new(12);
    h.ecs.set_health_rules(vec![HealthRule {
        cluster: None,
        service: Some("api".into()),
        secret: None,
        value: None,
        version_id: None,
        probability: Some(0.5),
        effect: HealthEffect::AppRejectsValue,
    }]);
    h.service("api", 10, 100, 200, no_breaker());
    h.wait(600.0);
    let svc = h.describe("api");
    let failed = svc["deployments"][0]["failedTasks"].as_u64().unwrap();
    // Seeded: the same tasks are hit on every run.
    assert_eq!(failed, 3, "some tasks hit");
    assert_eq!(svc["runningCount"], 10, "failed ones were replaced");
}

#[test]
fn code_deploy_and_external_services_refuse_forced_deployments() {
    let mut h = H::new(13);
    h.register("prod-cd", json!([]));
    for (name, kind) in [("cd", "CODE_DEPLOY"), ("ext", "EXTERNAL")] {
        h.call_ok(
            "CreateService",
            json!({"cluster": "prod", "serviceName": name, "taskDefinition": "prod-cd",
                   "desiredCount": 1, "deploymentController": {"type": kind}}),
        );
        let (code, msg) = h.err(
            "UpdateService",
            json!({"cluster": "prod", "service": name, "forceNewDeployment": true}),
        );
        assert_eq!(code, "InvalidParameterException");
        assert!(msg.starts_with(&format!(
            "Unable to update task definition on services with a {kind} deployment controller."
        )));
        // A desired-count change is allowed.
        h.call_ok(
            "UpdateService",
            json!({"cluster": "prod", "service": name, "desiredCount": 2}),
        );
    }
    let (_, msg) = h.err(
        "UpdateService",
        json!({"cluster": "prod", "service": "cd", "taskDefinition": "prod-cd:1"}),
    );
    assert_eq!(msg, "Unable to update task definition on services with a CODE_DEPLOY deployment controller. Use AWS CodeDeploy to trigger a new deployment.");
}

#[test]
fn desired_zero_deployment_completes_after_90_seconds() {
    let mut h = H::new(14);
    h.service("dev", 0, 100, 200, breaker(true));
    h.wait(600.0);
    let new = h.force("dev");
    h.wait(89.0);
    let svc = h.describe("dev");
    assert_eq!(svc["deployments"][0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(svc["deployments"][0]["runningCount"], 0);
    h.wait(1.5);
    let svc = h.describe("dev");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert!(h.tasks_of("dev").is_empty(), "nothing to replace");
}

#[test]
fn scaling_changes_the_current_deployment() {
    let mut h = H::new(15);
    h.service("api", 3, 100, 200, no_breaker());
    h.wait(600.0);
    let id = h.describe("api")["deployments"][0]["id"].clone();
    h.call_ok(
        "UpdateService",
        json!({"cluster": "prod", "service": "api", "desiredCount": 1}),
    );
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(svc["deployments"][0]["id"], id);
    assert_eq!(svc["runningCount"], 1);
    assert_eq!(svc["desiredCount"], 1);
    let cluster = h.call_ok("DescribeClusters", json!({"clusters": ["prod"]}));
    assert_eq!(cluster["clusters"][0]["runningTasksCount"], 1);
    assert_eq!(cluster["clusters"][0]["pendingTasksCount"], 0);
    assert_eq!(cluster["clusters"][0]["activeServicesCount"], 1);
}

#[test]
fn stop_task_by_user_is_replaced() {
    let mut h = H::new(16);
    h.service("api", 1, 100, 200, no_breaker());
    h.wait(600.0);
    let arn = h.call_ok("ListTasks", json!({"cluster": "prod"}))["taskArns"][0]
        .as_str()
        .unwrap()
        .to_string();
    let t = h.call_ok("StopTask", json!({"cluster": "prod", "task": arn}))["task"].clone();
    assert_eq!(t["desiredStatus"], "STOPPED");
    assert_eq!(t["stoppedReason"], "Task stopped by user");
    assert_eq!(t["stopCode"], "UserInitiated");
    let listed = h.call_ok("ListTasks", json!({"cluster": "prod"}));
    assert_eq!(listed["taskArns"].as_array().unwrap().len(), 1);
    assert_ne!(
        listed["taskArns"][0],
        json!(arn),
        "the scheduler replaced it at once"
    );
    let stopped = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "desiredStatus": "STOPPED"}),
    );
    assert_eq!(
        stopped["taskArns"],
        json!([arn]),
        "draining tasks list as STOPPED"
    );
    let (code, _) = h.err("StopTask", json!({"cluster": "prod", "task": "0123"}));
    assert_eq!(code, "InvalidParameterException");
    // Stopped tasks stay listable for about an hour.
    h.wait(3000.0);
    let stopped = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "desiredStatus": "STOPPED"}),
    );
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 1);
    h.wait(1200.0);
    let stopped = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "desiredStatus": "STOPPED"}),
    );
    assert_eq!(stopped["taskArns"].as_array().unwrap().len(), 0);
}

#[test]
fn list_services_paginates() {
    let mut h = H::new(17);
    h.register("prod-s", json!([]));
    for i in 0..25 {
        h.call_ok(
            "CreateService",
            json!({"cluster": "prod", "serviceName": format!("s{i:02}"), "taskDefinition": "prod-s", "desiredCount": 0}),
        );
    }
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut body = json!({"cluster": "prod"});
        if let Some(t) = &token {
            body["nextToken"] = json!(t);
        }
        let page = h.call_ok("ListServices", body);
        let arns = page["serviceArns"].as_array().unwrap().clone();
        pages.push(arns.len());
        all.extend(arns);
        match page["nextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, [10, 10, 5]);
    assert_eq!(all.len(), 25);
    assert_eq!(
        all[0],
        "arn:aws:ecs:eu-west-1:123456789012:service/prod/s00"
    );
    let big = h.call_ok(
        "ListServices",
        json!({"cluster": "prod", "maxResults": 100}),
    );
    assert_eq!(big["serviceArns"].as_array().unwrap().len(), 25);
    assert!(big.get("nextToken").is_none());
    let (code, _) = h.err(
        "ListServices",
        json!({"cluster": "prod", "maxResults": 101}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "ListServices",
        json!({"cluster": "prod", "nextToken": "garbage"}),
    );
    assert_eq!(code, "InvalidParameterException");
}

#[test]
fn list_tasks_paginates_and_filters() {
    let mut h = H::new(18);
    h.register("prod-job", json!([]));
    h.register("prod-other", json!([]));
    for _ in 0..15 {
        h.call_ok("RunTask", json!({"cluster": "prod", "taskDefinition": "prod-job", "count": 10, "startedBy": "cron"}));
    }
    h.call_ok(
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "prod-other"}),
    );
    let p1 = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "family": "prod-job"}),
    );
    assert_eq!(p1["taskArns"].as_array().unwrap().len(), 100);
    let tok = p1["nextToken"].as_str().unwrap().to_string();
    let p2 = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "family": "prod-job", "nextToken": tok}),
    );
    assert_eq!(p2["taskArns"].as_array().unwrap().len(), 50);
    assert!(p2.get("nextToken").is_none());
    let all = h.call_ok("ListTasks", json!({"cluster": "prod", "maxResults": 100}));
    assert!(all.get("nextToken").is_some());
    let by = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "startedBy": "cron", "maxResults": 100}),
    );
    assert_eq!(by["taskArns"].as_array().unwrap().len(), 100);
    let other = h.call_ok(
        "ListTasks",
        json!({"cluster": "prod", "family": "prod-other"}),
    );
    assert_eq!(other["taskArns"].as_array().unwrap().len(), 1);
    let (code, _) = h.err(
        "ListTasks",
        json!({"cluster": "prod", "serviceName": "ghost"}),
    );
    assert_eq!(code, "ServiceNotFoundException");
}

#[test]
fn describe_limits_and_missing() {
    let mut h = H::new(19);
    h.service("api", 1, 100, 200, no_breaker());
    let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    let (code, _) = h.err(
        "DescribeServices",
        json!({"cluster": "prod", "services": eleven}),
    );
    assert_eq!(code, "InvalidParameterException");
    let v = h.call_ok(
        "DescribeServices",
        json!({"cluster": "prod", "services": ["api", "ghost",
        "arn:aws:ecs:eu-west-1:123456789012:service/other/api"]}),
    );
    assert_eq!(v["services"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["failures"],
        json!([
            {"arn": "arn:aws:ecs:eu-west-1:123456789012:service/ghost", "reason": "MISSING"},
            {"arn": "arn:aws:ecs:eu-west-1:123456789012:service/other/api", "reason": "MISSING"},
        ])
    );
    let v = h.call_ok("DescribeServices", json!({"cluster": "prod", "services": ["arn:aws:ecs:eu-west-1:123456789012:service/prod/api"]}));
    assert_eq!(v["services"][0]["serviceName"], "api");
    let many: Vec<String> = (0..101).map(|i| format!("{i:032x}")).collect();
    let (code, _) = h.err("DescribeTasks", json!({"cluster": "prod", "tasks": many}));
    assert_eq!(code, "InvalidParameterException");
    let v = h.call_ok(
        "DescribeTasks",
        json!({"cluster": "prod", "tasks": ["ffff"]}),
    );
    assert_eq!(v["failures"], json!([{"arn": "ffff", "reason": "MISSING"}]));
    let (code, msg) = h.err(
        "DescribeServices",
        json!({"cluster": "nope", "services": ["api"]}),
    );
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("ClusterNotFoundException", "Cluster not found.")
    );
    let (code, _) = h.err(
        "UpdateService",
        json!({"cluster": "prod", "service": "ghost"}),
    );
    assert_eq!(code, "ServiceNotFoundException");
    let (code, _) = h.err("Frobnicate", json!({}));
    assert_eq!(code, "UnknownOperationException");
    let (code, msg) = h.err(
        "CreateService",
        json!({"cluster": "prod", "taskDefinition": "prod-api", "desiredCount": 1}),
    );
    assert_eq!(code, "InvalidParameterException");
    assert!(msg.contains("serviceName"));
    let (code, _) = h.err("DescribeServices", json!({"cluster": "prod"}));
    assert_eq!(code, "InvalidParameterException");
    let v = h.call_ok("DescribeClusters", json!({"clusters": ["prod", "nope"]}));
    assert_eq!(v["failures"][0]["reason"], "MISSING");
    assert_eq!(
        v["clusters"][0]["clusterArn"],
        "arn:aws:ecs:eu-west-1:123456789012:cluster/prod"
    );
}

#[test]
fn task_definitions_register_describe_list() {
    let mut h = H::new(20);
    let a1 = h.register(
        "prod-api",
        json!([{"name": "X", "valueFrom": "/aws/reference/secretsmanager/db_password"}]),
    );
    let a2 = h.register("prod-api", json!([]));
    h.register("prod-pdf", json!([]));
    assert_eq!(
        a1,
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/prod-api:1"
    );
    assert!(a2.ends_with("prod-api:2"));
    for r in ["prod-api", "prod-api:2", a2.as_str()] {
        let v = h.call_ok("DescribeTaskDefinition", json!({"taskDefinition": r}));
        assert_eq!(v["taskDefinition"]["revision"], 2);
    }
    let v = h.call_ok(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "prod-api:1"}),
    );
    assert_eq!(
        v["taskDefinition"]["containerDefinitions"][1]["secrets"][0]["name"],
        "X"
    );
    let (code, _) = h.err(
        "DescribeTaskDefinition",
        json!({"taskDefinition": "prod-api:9"}),
    );
    assert_eq!(code, "ClientException");
    let v = h.call_ok("ListTaskDefinitions", json!({"familyPrefix": "prod-api"}));
    assert_eq!(v["taskDefinitionArns"].as_array().unwrap().len(), 2);
    let v = h.call_ok(
        "ListTaskDefinitions",
        json!({"maxResults": 2, "sort": "DESC"}),
    );
    assert_eq!(
        v["taskDefinitionArns"][0],
        "arn:aws:ecs:eu-west-1:123456789012:task-definition/prod-pdf:1"
    );
    let tok = v["nextToken"].as_str().unwrap().to_string();
    let v = h.call_ok(
        "ListTaskDefinitions",
        json!({"maxResults": 2, "sort": "DESC", "nextToken": tok}),
    );
    assert_eq!(v["taskDefinitionArns"].as_array().unwrap().len(), 1);
    let (code, _) = h.err("RegisterTaskDefinition", json!({"family": "x"}));
    assert_eq!(code, "InvalidParameterException");
}

fn scenario_snapshot(seed: u64) -> Value {
    let mut h = H::new(seed);
    h.ecs.set_health_rules(vec![HealthRule {
        cluster: None,
        service: None,
        secret: None,
        value: None,
        version_id: None,
        probability: Some(0.3),
        effect: HealthEffect::FailHealthCheck,
    }]);
    h.service("api", 3, 50, 200, breaker(true));
    h.service("front", 2, 100, 200, breaker(true));
    h.wait(600.0);
    h.src.put("db_password", "v2", "x");
    h.force("api");
    h.wait(7.5);
    h.force("front");
    h.wait(900.0);
    h.ecs.assert_counts_consistent();
    h.ecs.snapshot()
}

#[test]
fn same_seed_and_call_times_give_the_same_snapshot() {
    let a = scenario_snapshot(42);
    let b = scenario_snapshot(42);
    assert_eq!(a, b);
    let c = scenario_snapshot(43);
    assert_ne!(a, c);
}

#[test]
fn many_services_settle() {
    let mut h = H::new(21);
    h.register(
        "prod-s",
        json!([{"name": "X", "valueFrom": "/aws/reference/secretsmanager/db_password"}]),
    );
    for i in 0..200 {
        h.call_ok(
            "CreateService",
            json!({"cluster": "prod", "serviceName": format!("s{i}"), "taskDefinition": "prod-s", "desiredCount": 10}),
        );
    }
    h.wait(3600.0);
    let c = h.call_ok("DescribeClusters", json!({"clusters": ["prod"]}));
    assert_eq!(c["clusters"][0]["runningTasksCount"], 2000);
    let s = h.ecs.svc_idx_for_test("s199");
    assert_eq!(h.ecs.services[s].deployments[0].rollout, Rollout::Completed);
}

impl Ecs {
    /// Recounts every deployment's and cluster's counters from the tasks and compares them
    /// with the incrementally kept ones.
    fn assert_counts_consistent(&self) {
        use super::model::Counts;
        let mut clusters = vec![Counts::default(); self.clusters.len()];
        for t in &self.tasks {
            clusters[t.cluster].add(Counts::of(t));
        }
        for (c, want) in self.clusters.iter().zip(clusters) {
            assert_eq!(c.counts, want, "cluster {}", c.name);
        }
        for svc in &self.services {
            for d in &svc.deployments {
                let mut want = Counts::default();
                for t in self.tasks.iter().filter(|t| t.dep_uid == Some(d.uid)) {
                    want.add(Counts::of(t));
                }
                assert_eq!(d.counts, want, "service {} deployment {}", svc.name, d.id);
                assert_eq!(d.tasks.len() as u32, want.present);
            }
        }
    }

    fn svc_idx_for_test(&self, name: &str) -> usize {
        let c = self.cluster_idx("prod").unwrap();
        self.service_idx(c, name).unwrap()
    }
}

#[test]
fn load_balanced_services_log_targets_and_draining() {
    let mut h = H::new(22);
    h.register("prod-api", json!([]));
    let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api/0123456789abcdef";
    h.call_ok(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "prod-api", "desiredCount": 1,
               "loadBalancers": [{"targetGroupArn": tg, "containerName": "app", "containerPort": 80}]}),
    );
    h.wait(600.0);
    let old = h.describe("api")["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    h.force("api");
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(svc["loadBalancers"][0]["targetGroupArn"], tg);
    let msgs = h.messages("api");
    assert!(msgs.contains(&format!(
        "(service api) registered 1 targets in (target-group {tg})"
    )));
    assert!(msgs.contains(&format!(
        "(service api) deregistered 1 targets in (target-group {tg})"
    )));
    assert!(msgs.contains(&format!(
        "(service api, taskSet {old}) has begun draining connections on 1 tasks."
    )));
}

#[test]
fn service_timing_sets_the_draining_time() {
    let mut h = H::new(23);
    h.service("api", 1, 100, 200, no_breaker());
    let slow = super::Timing {
        draining: 300.0,
        ..super::Timing::default()
    };
    h.ecs.set_service_timing("prod", "api", slow).unwrap();
    let err = h
        .ecs
        .set_service_timing("prod", "nope", super::Timing::default());
    assert_eq!(err.unwrap_err().code, "ServiceNotFoundException");
    h.wait(600.0);
    h.force("api");
    h.wait(250.0);
    assert_eq!(
        deployments(&h.describe("api")).len(),
        2,
        "old tasks still draining"
    );
    h.wait(150.0);
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
}

#[test]
fn snapshot_lists_services_flat_and_hides_expired_tasks() {
    let mut h = H::new(24);
    h.service("api", 1, 100, 200, no_breaker());
    h.wait(600.0);
    h.force("api");
    h.wait(600.0);
    let snap = h.ecs.snapshot();
    assert_eq!(snap["clusters"][0]["services"], json!(["api"]));
    assert_eq!(snap["services"][0]["cluster"], "prod");
    assert_eq!(snap["services"][0]["runningCount"], 1);
    assert_eq!(snap["taskDefinitions"].as_array().unwrap().len(), 1);
    assert_eq!(snap["tasks"].as_array().unwrap().len(), 2);
    h.wait(3600.0);
    let snap = h.ecs.snapshot();
    assert_eq!(
        snap["tasks"].as_array().unwrap().len(),
        1,
        "the replaced task expired"
    );
}

#[test]
fn health_rule_debug_hides_the_value() {
    let rules = bad_value_rule(HealthEffect::AppRejectsValue);
    let mut h = H::new(25);
    h.ecs.set_health_rules(rules.clone());
    let shown = format!("{:?} {:?}", rules[0], h.ecs);
    assert!(!shown.contains("bad-password"));
    assert!(shown.contains("<redacted>"));
}

#[test]
fn breaker_stops_evaluating_once_a_task_of_the_deployment_ran_healthy() {
    let mut h = H::new(26);
    h.ecs.set_health_rules(vec![HealthRule {
        cluster: None,
        service: None,
        secret: Some("db_password".into()),
        value: None,
        version_id: Some("v2".into()),
        probability: None,
        effect: HealthEffect::AppRejectsValue,
    }]);
    // max 150% of 2: one new task at a time.
    h.service("api", 2, 100, 150, breaker(true));
    h.wait(600.0);
    let new = h.force("api");
    h.wait(10.0);
    // The first new task read v1; every later one reads v2 and fails.
    h.src.put("db_password", "v2", "other");
    h.wait(1200.0);
    let svc = h.describe("api");
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "IN_PROGRESS");
    assert_eq!(svc["deployments"][0]["failedTasks"], 47);
}

#[test]
fn absurd_counts_and_percentages_are_refused() {
    let mut h = H::new(27);
    h.register("prod-api", json!([]));
    let (code, _) = h.err(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "prod-api", "desiredCount": 1_000_000}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "prod-api", "desiredCount": -1}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "prod-api", "desiredCount": 1,
               "deploymentConfiguration": {"minimumHealthyPercent": 150}}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "prod-api", "desiredCount": 1,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 80}}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "CreateService",
        json!({"cluster": "prod", "serviceName": "api", "taskDefinition": "nope", "desiredCount": 1}),
    );
    assert_eq!(code, "InvalidParameterException");
    let (code, _) = h.err(
        "RunTask",
        json!({"cluster": "prod", "taskDefinition": "prod-api", "count": 11}),
    );
    assert_eq!(code, "InvalidParameterException");
}

#[test]
fn rollback_adopts_the_old_deployments_remaining_tasks() {
    let mut h = H::new(28);
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::AppRejectsValue));
    h.service("pdf", 2, 100, 200, breaker(true));
    // The rule names service api; this one is pdf.
    h.ecs.set_health_rules(vec![HealthRule {
        service: Some("pdf".into()),
        ..bad_value_rule(HealthEffect::AppRejectsValue)[0].clone()
    }]);
    h.wait(600.0);
    let old = h.describe("pdf")["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let old_tasks: Vec<Value> = h.tasks_of("pdf");
    h.src.put("db_password", "v2", "bad-password");
    h.force("pdf");
    h.wait(600.0);
    let svc = h.describe("pdf");
    // min 100%: the old tasks never stopped, so the rollback has nothing to launch.
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(old));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(svc["deployments"][0]["failedTasks"], 0);
    let running: Vec<Value> = h
        .tasks_of("pdf")
        .into_iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect();
    assert_eq!(running.len(), 2);
    for t in &running {
        assert!(
            old_tasks.iter().any(|o| o["arn"] == t["arn"]),
            "the original tasks"
        );
        assert_eq!(t["secrets"][0]["version_id"], "v1");
    }
    h.ecs.assert_counts_consistent();
}

#[test]
fn a_second_forced_deployment_mid_rollout_supersedes_the_first() {
    let mut h = H::new(29);
    h.service("api", 3, 50, 200, no_breaker());
    h.wait(600.0);
    let first = h.force("api");
    h.wait(12.0);
    let second = h.force("api");
    h.wait(1.0);
    let svc = h.describe("api");
    let ids: Vec<Value> = deployments(&svc).iter().map(|d| d["id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], json!(second));
    assert_eq!(ids[1], json!(first));
    assert_eq!(svc["deployments"][1]["desiredCount"], 0);
    assert_eq!(svc["deployments"][1]["rolloutState"], "IN_PROGRESS");
    let s = h.svc_idx("api");
    let until = h.now + 900.0;
    h.step_events(until, |e| {
        let c = e.services[s].counts();
        assert!(c.live <= 6);
        assert!(c.healthy >= 2 || e.services[s].deployments.len() == 1);
        e.assert_counts_consistent();
    });
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(second));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert!(h
        .tasks_of("api")
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .all(|t| t["startedBy"] == json!(second)));
}

#[test]
fn instant_timings_roll_out_in_milliseconds() {
    let mut h = H::new(30);
    h.ecs.set_default_timing(super::Timing {
        provisioning: 0.0,
        pending: 0.0,
        health_check: 0.0,
        draining: 0.0,
        stopping: 0.0,
    });
    h.service("api", 3, 50, 200, breaker(true));
    h.wait(1.0);
    assert_eq!(
        h.describe("api")["deployments"][0]["rolloutState"],
        "COMPLETED"
    );
    let new = h.force("api");
    h.wait(0.1);
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    h.ecs.assert_counts_consistent();
}

mod health_effects;
mod strategies;
