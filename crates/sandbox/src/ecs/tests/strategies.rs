//! Blue/green, linear and canary deployments, lifecycle hooks, alarms and the service
//! deployments API, on the in-process harness (manual virtual clock).

use super::*;

/// A service of `desired` tasks with the given strategy fields in its
/// deploymentConfiguration; settled.
fn staged(h: &mut H, name: &str, desired: u32, dc: Value) {
    h.register(
        &format!("prod-{name}"),
        json!([{"name": "DB_PASSWORD", "valueFrom": "/aws/reference/secretsmanager/db_password"}]),
    );
    let mut config = json!({
        "minimumHealthyPercent": 100,
        "maximumPercent": 200,
        "deploymentCircuitBreaker": {"enable": true, "rollback": true},
    });
    for (k, v) in dc.as_object().unwrap() {
        config[k] = v.clone();
    }
    h.call_ok(
        "CreateService",
        json!({
            "cluster": "prod",
            "serviceName": name,
            "taskDefinition": format!("prod-{name}"),
            "desiredCount": desired,
            "deploymentConfiguration": config,
        }),
    );
    h.wait(3600.0);
}

fn bg(bake: u32) -> Value {
    json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": bake})
}

impl H {
    fn current_sd(&mut self, name: &str) -> Value {
        let arn = self.describe(name)["currentServiceDeployment"].clone();
        let v = self.call_ok(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [arn]}),
        );
        v["serviceDeployments"][0].clone()
    }

    /// (task id, traffic, version) of every live task of a service.
    fn traffic(&self, name: &str) -> Vec<(String, String, String)> {
        self.tasks_of(name)
            .into_iter()
            .filter(|t| t["desiredStatus"] == "RUNNING")
            .map(|t| {
                (
                    t["startedBy"].as_str().unwrap().to_string(),
                    t["traffic"].as_str().unwrap().to_string(),
                    t["secrets"][0]["version_id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Steps the clock until the current service deployment of `name` is at `stage` (or
    /// the limit passes); returns the time spent.
    fn until_stage(&mut self, name: &str, stage: &str, limit: f64) -> f64 {
        let start = self.now;
        while self.now - start < limit {
            if self.current_sd(name)["lifecycleStage"] == stage {
                return self.now - start;
            }
            self.wait(1.0);
        }
        panic!("{name} never reached {stage}: {}", self.current_sd(name));
    }
}

#[test]
fn blue_green_runs_its_stages_then_cleans_up_blue() {
    let mut h = H::new(21);
    staged(&mut h, "web", 2, bg(10));
    let first = h.current_sd("web");
    assert_eq!(first["status"], "SUCCESSFUL", "{first}");
    let old = h.describe("web")["deployments"][0]["id"].clone();
    h.src.put("db_password", "v2", "new-password");
    let new = h.force("web");
    let sd = h.current_sd("web");
    assert_eq!(sd["status"], "IN_PROGRESS");
    assert_ne!(sd["serviceDeploymentArn"], first["serviceDeploymentArn"]);
    assert_eq!(sd["sourceServiceRevisions"].as_array().unwrap().len(), 1);
    // Scale-up: green starts beside blue; blue keeps production.
    h.until_stage("web", "SCALE_UP", 60.0);
    h.wait(15.0);
    let svc = h.describe("web");
    assert_eq!(deployments(&svc).len(), 2);
    assert_eq!(svc["deployments"][1]["id"], old);
    assert_eq!(
        svc["deployments"][1]["desiredCount"], 2,
        "blue keeps its tasks"
    );
    h.until_stage("web", "BAKE_TIME", 600.0);
    let svc = h.describe("web");
    assert_eq!(
        svc["runningCount"], 4,
        "about twice the tasks during the bake"
    );
    let sd = h.current_sd("web");
    assert_eq!(
        sd["targetServiceRevision"]["requestedProductionTrafficWeight"],
        100.0
    );
    assert_eq!(
        sd["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"],
        0.0
    );
    let tr = h.traffic("web");
    assert!(tr
        .iter()
        .filter(|t| t.0 == new)
        .all(|t| t.1 == "production" && t.2 == "v2"));
    assert!(tr
        .iter()
        .filter(|t| t.0 != new)
        .all(|t| t.1 == "none" && t.2 == "v1"));
    // Bake time: 10 minutes, then clean-up and success.
    let baked = h.until_stage("web", "CLEAN_UP", 700.0);
    assert!((599.0..=601.0).contains(&baked), "{baked}");
    h.wait(120.0);
    let sd = h.current_sd("web");
    assert_eq!(sd["status"], "SUCCESSFUL", "{sd}");
    let svc = h.describe("web");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], json!(new));
    assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    assert_eq!(svc["runningCount"], 2);
}

#[test]
fn blue_green_needs_a_bake_time_and_rejects_bad_ranges() {
    let mut h = H::new(22);
    h.register("prod-x", json!([]));
    let base = json!({"cluster": "prod", "serviceName": "x", "taskDefinition": "prod-x", "desiredCount": 1});
    for (dc, what) in [
        (json!({"strategy": "BLUE_GREEN"}), "bakeTimeInMinutes"),
        (
            json!({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 1441}),
            "bakeTimeInMinutes",
        ),
        (
            json!({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 2.0}}),
            "stepPercent",
        ),
        (json!({"strategy": "SIDEWAYS"}), "strategy"),
    ] {
        let mut b = base.clone();
        b["deploymentConfiguration"] = dc;
        let (code, msg) = h.err("CreateService", b);
        assert_eq!(code, "InvalidParameterException");
        assert!(msg.contains(what), "{msg}");
    }
}
