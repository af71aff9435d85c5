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

/// The three staged strategies, each with a 5-minute bake and short steps.
fn strategies() -> Vec<(&'static str, Value)> {
    vec![
        ("BLUE_GREEN", bg(5)),
        (
            "LINEAR",
            json!({"strategy": "LINEAR", "bakeTimeInMinutes": 5,
                   "linearConfiguration": {"stepPercent": 50.0, "stepBakeTimeInMinutes": 1}}),
        ),
        (
            "CANARY",
            json!({"strategy": "CANARY", "bakeTimeInMinutes": 5,
                   "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 2}}),
        ),
    ]
}

fn with(mut dc: Value, key: &str, v: Value) -> Value {
    dc[key] = v;
    dc
}

/// The production weights green had, polled every 5 s until the deployment ends.
fn walk(h: &mut H, name: &str, limit: f64) -> Vec<f64> {
    let mut weights: Vec<f64> = Vec::new();
    let start = h.now;
    while h.now - start < limit {
        let sd = h.current_sd(name);
        let w = sd["targetServiceRevision"]["requestedProductionTrafficWeight"]
            .as_f64()
            .unwrap();
        if weights.last() != Some(&w) {
            weights.push(w);
        }
        if sd["status"] != "IN_PROGRESS" {
            break;
        }
        h.wait(5.0);
    }
    weights
}

/// The stages the current service deployment of `name` entered (ground truth).
fn stages(h: &H, name: &str) -> Vec<String> {
    let snap = h.ecs.snapshot();
    let svc = snap["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap();
    let sd = svc["serviceDeployments"]
        .as_array()
        .unwrap()
        .last()
        .unwrap();
    sd["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

const ALL_STAGES: [&str; 9] = [
    "PRE_SCALE_UP",
    "SCALE_UP",
    "POST_SCALE_UP",
    "TEST_TRAFFIC_SHIFT",
    "POST_TEST_TRAFFIC_SHIFT",
    "PRODUCTION_TRAFFIC_SHIFT",
    "POST_PRODUCTION_TRAFFIC_SHIFT",
    "BAKE_TIME",
    "CLEAN_UP",
];

#[test]
fn each_strategy_goes_through_the_documented_stages_and_traffic_steps() {
    for (strategy, dc) in strategies() {
        let mut h = H::new(31);
        staged(&mut h, "web", 4, dc);
        h.src.put("db_password", "v2", "new-password");
        h.force("web");
        let weights = walk(&mut h, "web", 7200.0);
        assert_eq!(
            stages(&h, "web"),
            ALL_STAGES.map(String::from),
            "{strategy}"
        );
        let want: Vec<f64> = match strategy {
            "BLUE_GREEN" => vec![0.0, 100.0],
            "LINEAR" => vec![0.0, 50.0, 100.0],
            _ => vec![0.0, 10.0, 100.0],
        };
        assert_eq!(weights, want, "{strategy}");
        let sd = h.current_sd("web");
        assert_eq!(sd["status"], "SUCCESSFUL", "{strategy}: {sd}");
        assert_eq!(sd["lifecycleStage"], "CLEAN_UP");
        let tr = h.traffic("web");
        assert_eq!(tr.len(), 4);
        assert!(
            tr.iter().all(|t| t.1 == "production" && t.2 == "v2"),
            "{tr:?}"
        );
    }
}

fn pause(stages: &[&str], minutes: u32, action: &str) -> Value {
    json!([{"targetType": "PAUSE", "lifecycleStages": stages,
            "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": action}}])
}

/// The hook of the current deployment awaiting action, once it is there.
fn awaiting(h: &mut H, name: &str) -> (String, String) {
    for _ in 0..600 {
        let sd = h.current_sd(name);
        if let Some(hook) = sd["lifecycleHookDetails"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["status"] == "AWAITING_ACTION")
        {
            return (
                hook["hookId"].as_str().unwrap().to_string(),
                sd["lifecycleStage"].as_str().unwrap().to_string(),
            );
        }
        h.wait(1.0);
    }
    panic!("no hook awaits action: {}", h.current_sd(name));
}

fn cont(h: &mut H, name: &str, hook: &str, action: &str) -> Value {
    let arn = h.describe(name)["currentServiceDeployment"].clone();
    h.call_ok(
        "ContinueServiceDeployment",
        json!({"serviceDeploymentArn": arn, "hookId": hook, "action": action}),
    )
}

/// Traffic of green (started by `green`) and blue tasks: (green traffic, blue traffic).
fn sides(h: &H, name: &str, green: &str) -> (Vec<String>, Vec<String>) {
    let tr = h.traffic(name);
    let g = tr
        .iter()
        .filter(|t| t.0 == green)
        .map(|t| t.1.clone())
        .collect();
    let b = tr
        .iter()
        .filter(|t| t.0 != green)
        .map(|t| t.1.clone())
        .collect();
    (g, b)
}

fn all(v: &[String], what: &str) -> bool {
    !v.is_empty() && v.iter().all(|x| x == what)
}

/// Blue's task ids before a deployment.
fn task_ids(h: &H, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = h
        .tasks_of(name)
        .into_iter()
        .filter(|t| t["desiredStatus"] == "RUNNING")
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

#[test]
fn pause_hooks_continued_show_which_tasks_serve_at_each_stage() {
    let hook_stages = [
        "PRE_SCALE_UP",
        "POST_SCALE_UP",
        "TEST_TRAFFIC_SHIFT",
        "POST_TEST_TRAFFIC_SHIFT",
        "PRE_PRODUCTION_TRAFFIC_SHIFT",
        "PRODUCTION_TRAFFIC_SHIFT",
        "POST_PRODUCTION_TRAFFIC_SHIFT",
    ];
    for (strategy, dc) in strategies() {
        let mut h = H::new(41);
        // The hooks would pause the first deployment too (and it would time out while
        // the harness settles it): add them afterwards.
        staged(&mut h, "web", 2, dc);
        h.call_ok(
            "UpdateService",
            json!({"cluster": "prod", "service": "web", "deploymentConfiguration":
                   {"lifecycleHooks": pause(&hook_stages, 60, "ROLLBACK")}}),
        );
        let first = h.describe("web")["deployments"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        h.src.put("db_password", "v2", "new-password");
        let green = h.force("web");
        let mut seen = Vec::new();
        for _ in hook_stages {
            let (hook, stage) = awaiting(&mut h, "web");
            let (g, b) = sides(&h, "web", &green);
            seen.push(stage.clone());
            match stage.as_str() {
                "PRE_SCALE_UP" => assert!(g.is_empty() && all(&b, "production"), "{g:?} {b:?}"),
                "POST_SCALE_UP" => assert!(all(&g, "none") && all(&b, "production")),
                "TEST_TRAFFIC_SHIFT" | "POST_TEST_TRAFFIC_SHIFT" => {
                    assert!(
                        all(&g, "test") && all(&b, "production"),
                        "{stage}: {g:?} {b:?}"
                    )
                }
                "PRODUCTION_TRAFFIC_SHIFT" if strategy == "BLUE_GREEN" => {
                    assert!(all(&g, "production") && all(&b, "none"))
                }
                "PRODUCTION_TRAFFIC_SHIFT" => {
                    // Linear and canary: both serve production during the first step.
                    assert!(
                        all(&g, "production") && all(&b, "production"),
                        "{g:?} {b:?}"
                    )
                }
                "POST_PRODUCTION_TRAFFIC_SHIFT" => {
                    assert!(all(&g, "production") && all(&b, "none"))
                }
                other => panic!("unexpected stage {other}"),
            }
            let sd = h.current_sd("web");
            let hooks = sd["lifecycleHookDetails"].as_array().unwrap();
            let this = hooks.iter().find(|x| x["hookId"] == json!(hook)).unwrap();
            assert_eq!(this["targetType"], "PAUSE");
            assert_eq!(this["timeoutAction"], "ROLLBACK");
            assert!(this.get("targetArn").is_none());
            cont(&mut h, "web", &hook, "CONTINUE");
            let sd = h.current_sd("web");
            let this = sd["lifecycleHookDetails"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["hookId"] == json!(hook))
                .unwrap()
                .clone();
            assert_eq!(this["status"], "SUCCEEDED");
            h.wait(1.0);
        }
        // PRE_PRODUCTION hooks run at the end of POST_TEST_TRAFFIC_SHIFT.
        assert_eq!(
            seen,
            [
                "PRE_SCALE_UP",
                "POST_SCALE_UP",
                "TEST_TRAFFIC_SHIFT",
                "POST_TEST_TRAFFIC_SHIFT",
                "POST_TEST_TRAFFIC_SHIFT",
                "PRODUCTION_TRAFFIC_SHIFT",
                "POST_PRODUCTION_TRAFFIC_SHIFT"
            ],
            "{strategy}"
        );
        h.wait(3600.0);
        let sd = h.current_sd("web");
        assert_eq!(sd["status"], "SUCCESSFUL", "{strategy}");
        let (g, b) = sides(&h, "web", &green);
        assert!(all(&g, "production") && b.is_empty(), "{strategy}");
        assert_ne!(green, first);
    }
}

#[test]
fn pause_timing_out_with_rollback_returns_production_to_blue() {
    for (strategy, dc) in strategies() {
        let mut h = H::new(42);
        staged(&mut h, "web", 2, dc.clone());
        // Hooks added after the first deployment, through UpdateService.
        h.call_ok(
            "UpdateService",
            json!({"cluster": "prod", "service": "web", "deploymentConfiguration":
                   {"lifecycleHooks": pause(&["POST_PRODUCTION_TRAFFIC_SHIFT"], 3, "ROLLBACK")}}),
        );
        let blue_ids = task_ids(&h, "web");
        let blue_id = h.describe("web")["deployments"][0]["id"].clone();
        h.src.put("db_password", "v2", "new-password");
        let green = h.force("web");
        let (_, stage) = awaiting(&mut h, "web");
        assert_eq!(stage, "POST_PRODUCTION_TRAFFIC_SHIFT");
        let (g, b) = sides(&h, "web", &green);
        assert!(all(&g, "production") && all(&b, "none"), "{strategy}");
        h.wait(181.0);
        let sd = h.current_sd("web");
        assert_eq!(sd["lifecycleHookDetails"][0]["status"], "TIMED_OUT", "{sd}");
        assert_eq!(sd["status"], "ROLLBACK_IN_PROGRESS", "{strategy}");
        assert!(sd["rollback"]["reason"]
            .as_str()
            .unwrap()
            .contains("timed out"));
        assert_eq!(
            sd["rollback"]["serviceRevisionArn"],
            sd["sourceServiceRevisions"][0]["arn"]
        );
        let (g, b) = sides(&h, "web", &green);
        assert!(
            g.is_empty() && all(&b, "production"),
            "{strategy}: {g:?} {b:?}"
        );
        h.wait(300.0);
        let sd = h.current_sd("web");
        assert_eq!(sd["status"], "ROLLBACK_SUCCESSFUL", "{strategy}");
        // Blue's tasks never stopped and still hold the value they started with.
        assert_eq!(task_ids(&h, "web"), blue_ids);
        assert!(h
            .traffic("web")
            .iter()
            .all(|t| t.2 == "v1" && t.1 == "production"));
        let svc = h.describe("web");
        assert_eq!(deployments(&svc).len(), 1);
        assert_eq!(svc["deployments"][0]["id"], blue_id);
        assert_eq!(svc["deployments"][0]["rolloutState"], "COMPLETED");
    }
}

#[test]
fn failing_green_tasks_trip_the_breaker_and_blue_keeps_serving() {
    for (strategy, dc) in strategies() {
        let mut h = H::new(43);
        staged(&mut h, "web", 2, dc);
        h.ecs.set_health_rules(vec![HealthRule {
            cluster: None,
            service: None,
            secret: Some("db_password".into()),
            value: Some("bad".into()),
            version_id: None,
            probability: None,
            effect: HealthEffect::AppRejectsValue,
        }]);
        let blue_ids = task_ids(&h, "web");
        h.src.put("db_password", "v2", "bad");
        let green = h.force("web");
        h.wait(600.0);
        let sd = h.current_sd("web");
        assert_eq!(sd["status"], "ROLLBACK_SUCCESSFUL", "{strategy}: {sd}");
        assert_eq!(sd["lifecycleStage"], "SCALE_UP");
        assert_eq!(sd["deploymentCircuitBreaker"]["status"], "TRIGGERED");
        assert!(
            sd["deploymentCircuitBreaker"]["failureCount"]
                .as_u64()
                .unwrap()
                >= 3
        );
        assert_eq!(task_ids(&h, "web"), blue_ids, "{strategy}");
        let msgs = h.messages("web");
        assert!(msgs.contains(&format!(
            "(service web) (deployment {green}) deployment failed: tasks failed to start."
        )));
        assert!(h
            .traffic("web")
            .iter()
            .all(|t| t.1 == "production" && t.2 == "v1"));
    }
}

#[test]
fn an_alarm_mid_deployment_fails_it_and_rolls_back_when_asked() {
    for (strategy, dc) in strategies() {
        for rollback in [true, false] {
            let mut h = H::new(44);
            let alarms = json!({"alarmNames": ["web-5xx"], "enable": true, "rollback": rollback});
            staged(&mut h, "web", 2, with(dc.clone(), "alarms", alarms));
            let blue_ids = task_ids(&h, "web");
            h.src.put("db_password", "v2", "new-password");
            let green = h.force("web");
            h.until_stage("web", "BAKE_TIME", 3600.0);
            h.ecs.set_alarm_state("other", "ALARM").unwrap();
            h.wait(1.0);
            assert_eq!(
                h.current_sd("web")["status"],
                "IN_PROGRESS",
                "an unwatched alarm"
            );
            h.ecs.set_alarm_state("web-5xx", "ALARM").unwrap();
            h.wait(1.0);
            let sd = h.current_sd("web");
            assert_eq!(sd["alarms"]["status"], "TRIGGERED");
            assert_eq!(sd["alarms"]["triggeredAlarmNames"], json!(["web-5xx"]));
            let msgs = h.messages("web");
            assert!(msgs.contains(&format!(
                "(service web) (deployment {green}) deployment failed: alarm detected."
            )));
            if rollback {
                assert_eq!(sd["status"], "ROLLBACK_IN_PROGRESS", "{strategy}");
                let (g, b) = sides(&h, "web", &green);
                assert!(g.is_empty() && all(&b, "production"));
                h.wait(300.0);
                assert_eq!(h.current_sd("web")["status"], "ROLLBACK_SUCCESSFUL");
                assert_eq!(task_ids(&h, "web"), blue_ids);
            } else {
                assert_eq!(sd["status"], "STOPPED", "{strategy}");
                h.wait(3600.0);
                let svc = h.describe("web");
                assert_eq!(deployments(&svc).len(), 2, "both revisions keep running");
                assert_eq!(svc["deployments"][0]["rolloutState"], "FAILED");
            }
        }
    }
}

#[test]
fn a_deployment_superseded_mid_bake_ends_stopped_and_the_next_one_reconciles() {
    for (strategy, dc) in strategies() {
        let mut h = H::new(45);
        staged(&mut h, "web", 2, dc);
        h.src.put("db_password", "v2", "second");
        h.force("web");
        h.until_stage("web", "BAKE_TIME", 3600.0);
        let first = h.current_sd("web");
        h.src.put("db_password", "v3", "third");
        let third = h.force("web");
        let old = h.call_ok(
            "DescribeServiceDeployments",
            json!({"serviceDeploymentArns": [first["serviceDeploymentArn"]]}),
        )["serviceDeployments"][0]
            .clone();
        assert_eq!(old["status"], "STOPPED", "{strategy}");
        assert!(old["stoppedAt"].is_f64());
        assert_eq!(stages(&h, "web")[0], "RECONCILE_SERVICE", "{strategy}");
        h.wait(7200.0);
        let sd = h.current_sd("web");
        assert_eq!(sd["status"], "SUCCESSFUL", "{strategy}");
        assert_eq!(sd["sourceServiceRevisions"].as_array().unwrap().len(), 2);
        let tr = h.traffic("web");
        assert_eq!(tr.len(), 2);
        assert!(tr
            .iter()
            .all(|t| t.0 == third && t.2 == "v3" && t.1 == "production"));
        let listed = h.call_ok(
            "ListServiceDeployments",
            json!({"cluster": "prod", "service": "web"}),
        );
        let st: Vec<&str> = listed["serviceDeployments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["status"].as_str().unwrap())
            .collect();
        assert_eq!(st, ["SUCCESSFUL", "STOPPED", "SUCCESSFUL"], "newest first");
        let stopped = h.call_ok(
            "ListServiceDeployments",
            json!({"cluster": "prod", "service": "web", "status": ["STOPPED"]}),
        );
        assert_eq!(stopped["serviceDeployments"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn lambda_hooks_answer_by_rule_and_a_failure_rolls_back() {
    let mut h = H::new(46);
    let lambda = "arn:aws:lambda:eu-west-1:123456789012:function:smoke";
    let hooks = json!([{"targetType": "AWS_LAMBDA", "hookTargetArn": lambda,
        "roleArn": "arn:aws:iam::123456789012:role/ecs-hooks",
        "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]);
    staged(&mut h, "web", 2, with(bg(5), "lifecycleHooks", hooks));
    assert_eq!(
        h.current_sd("web")["status"],
        "SUCCESSFUL",
        "no rule: it succeeds"
    );
    h.ecs.set_hook_rules(vec![crate::ecs::HookRule {
        cluster: None,
        service: Some("web".into()),
        hook_target_arn: Some(lambda.into()),
        stage: Some("POST_TEST_TRAFFIC_SHIFT".into()),
        result: crate::ecs::HookResult::Fail,
        after_seconds: 30.0,
    }]);
    let green = h.force("web");
    h.until_stage("web", "POST_TEST_TRAFFIC_SHIFT", 600.0);
    let sd = h.current_sd("web");
    let hook = &sd["lifecycleHookDetails"][0];
    assert_eq!(hook["status"], "IN_PROGRESS");
    assert_eq!(hook["targetType"], "AWS_LAMBDA");
    assert_eq!(hook["targetArn"], lambda);
    assert_eq!(hook["timeoutAction"], "ROLLBACK");
    h.wait(31.0);
    let sd = h.current_sd("web");
    assert_eq!(sd["lifecycleHookDetails"][0]["status"], "FAILED");
    assert_eq!(sd["status"], "ROLLBACK_IN_PROGRESS");
    let (g, b) = sides(&h, "web", &green);
    assert!(g.is_empty() && all(&b, "production"));
}

#[test]
fn stop_service_deployment_rolls_back_staged_and_rolling_deployments() {
    let mut h = H::new(47);
    staged(&mut h, "web", 2, bg(30));
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    let api_first = h.describe("api")["deployments"][0]["id"].clone();
    let blue_ids = task_ids(&h, "web");
    h.src.put("db_password", "v2", "new");
    // Rolling, without any rollback configured: StopServiceDeployment still rolls back.
    h.force("api");
    let arn = h.describe("api")["currentServiceDeployment"].clone();
    let v = h.call_ok(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": arn, "stopType": "ROLLBACK"}),
    );
    assert_eq!(v["serviceDeploymentArn"], arn);
    assert_eq!(h.current_sd("api")["status"], "ROLLBACK_IN_PROGRESS");
    h.wait(600.0);
    let sd = h.current_sd("api");
    assert_eq!(sd["status"], "ROLLBACK_SUCCESSFUL", "{sd}");
    assert!(sd.get("lifecycleStage").is_none(), "rolling has no stages");
    let svc = h.describe("api");
    assert_eq!(deployments(&svc).len(), 1);
    assert_eq!(svc["deployments"][0]["id"], api_first);
    // Staged, mid-bake.
    h.force("web");
    h.until_stage("web", "BAKE_TIME", 3600.0);
    let arn = h.describe("web")["currentServiceDeployment"].clone();
    h.call_ok(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": arn}),
    );
    h.wait(600.0);
    assert_eq!(h.current_sd("web")["status"], "ROLLBACK_SUCCESSFUL");
    assert_eq!(task_ids(&h, "web"), blue_ids);
    let (code, _) = h.err(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": arn}),
    );
    assert_eq!(
        code, "ConflictException",
        "a finished deployment cannot be stopped"
    );
    let (code, _) = h.err(
        "StopServiceDeployment",
        json!({"serviceDeploymentArn": "arn:aws:ecs:eu-west-1:123456789012:service-deployment/prod/web/nope"}),
    );
    assert_eq!(code, "ServiceDeploymentNotFoundException");
}

#[test]
fn rolling_deployments_have_service_deployment_records_too() {
    let mut h = H::new(48);
    h.service("api", 2, 100, 200, breaker(true));
    h.wait(600.0);
    assert_eq!(h.current_sd("api")["status"], "SUCCESSFUL");
    // Superseded mid-rollout: STOPPED, not a failure.
    h.force("api");
    let first = h.describe("api")["currentServiceDeployment"].clone();
    h.wait(2.0);
    h.force("api");
    h.wait(600.0);
    let second = h.describe("api")["currentServiceDeployment"].clone();
    let both = h.call_ok(
        "DescribeServiceDeployments",
        json!({"serviceDeploymentArns": [first, second, "arn:nope"]}),
    );
    assert_eq!(both["serviceDeployments"][0]["status"], "STOPPED");
    assert_eq!(both["serviceDeployments"][1]["status"], "SUCCESSFUL");
    assert_eq!(both["failures"][0]["reason"], "MISSING");
    // Breaker rollback: ROLLBACK_SUCCESSFUL once the old revision runs alone.
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::AppRejectsValue));
    h.src.put("db_password", "v2", "bad-password");
    h.force("api");
    h.wait(120.0);
    let sd = h.current_sd("api");
    assert!(
        sd["status"].as_str().unwrap().starts_with("ROLLBACK_"),
        "{sd}"
    );
    assert_eq!(sd["deploymentCircuitBreaker"]["status"], "TRIGGERED");
    assert!(
        sd["deploymentCircuitBreaker"]["failureCount"]
            .as_u64()
            .unwrap()
            >= 3
    );
    assert_eq!(sd["deploymentCircuitBreaker"]["threshold"], 3);
    h.src.put("db_password", "v1", "old-password");
    h.wait(600.0);
    let sd = h.current_sd("api");
    assert_eq!(sd["status"], "ROLLBACK_SUCCESSFUL");
    let rev = h.call_ok(
        "DescribeServiceRevisions",
        json!({"serviceRevisionArns": [sd["rollback"]["serviceRevisionArn"]]}),
    );
    assert!(rev["serviceRevisions"][0]["taskDefinition"]
        .as_str()
        .unwrap()
        .ends_with("prod-api:1"));
}

#[test]
fn without_a_breaker_failing_tasks_say_the_service_cannot_start_them() {
    let mut h = H::new(49);
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    h.ecs
        .set_health_rules(bad_value_rule(HealthEffect::AppRejectsValue));
    h.src.put("db_password", "v2", "bad-password");
    h.force("api");
    h.wait(600.0);
    let msgs = h.messages("api");
    let unable = "(service api) is unable to consistently start tasks successfully. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";
    assert_eq!(msgs.iter().filter(|m| *m == unable).count(), 1, "{msgs:?}");
    assert_eq!(h.current_sd("api")["status"], "IN_PROGRESS");
}

#[test]
fn delete_service_drains_then_turns_inactive() {
    let mut h = H::new(50);
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    let (code, _) = h.err(
        "DeleteService",
        json!({"cluster": "prod", "service": "api"}),
    );
    assert_eq!(code, "InvalidParameterException", "scaled above 0");
    let v = h.call_ok(
        "DeleteService",
        json!({"cluster": "prod", "service": "api", "force": true}),
    );
    assert_eq!(v["service"]["status"], "DRAINING");
    h.wait(600.0);
    let svc = h.describe("api");
    assert_eq!(svc["status"], "INACTIVE");
    assert_eq!(svc["runningCount"], 0);
    let listed = h.call_ok("ListServices", json!({"cluster": "prod"}));
    assert!(listed["serviceArns"].as_array().unwrap().is_empty());
    // The name can be used again.
    h.service("api", 1, 100, 200, no_breaker());
    h.wait(600.0);
    assert_eq!(h.describe("api")["status"], "ACTIVE");
    assert_eq!(h.describe("api")["runningCount"], 1);
}

#[test]
fn an_alarm_fails_a_rolling_deployment_too() {
    for rollback in [true, false] {
        let mut h = H::new(51);
        h.service("api", 2, 100, 200, no_breaker());
        h.call_ok(
            "UpdateService",
            json!({"cluster": "prod", "service": "api", "deploymentConfiguration":
                   {"alarms": {"alarmNames": ["api-errors"], "enable": true, "rollback": rollback}}}),
        );
        h.wait(600.0);
        let old = h.describe("api")["deployments"][0]["id"].clone();
        let new = h.force("api");
        h.wait(10.0);
        h.ecs.set_alarm_state("api-errors", "ALARM").unwrap();
        h.wait(1.0);
        let svc = h.describe("api");
        let failed = deployments(&svc)
            .into_iter()
            .find(|d| d["id"] == json!(new))
            .unwrap();
        assert_eq!(failed["rolloutState"], "FAILED");
        let sd = h.current_sd("api");
        assert_eq!(sd["alarms"]["status"], "TRIGGERED");
        if rollback {
            assert_eq!(svc["deployments"][0]["id"], old);
            h.wait(600.0);
            assert_eq!(h.current_sd("api")["status"], "ROLLBACK_SUCCESSFUL");
        } else {
            assert_eq!(sd["status"], "STOPPED");
            assert_eq!(svc["deployments"][0]["id"], json!(new));
        }
    }
}
