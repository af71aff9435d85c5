//! Health rule effects stop tasks with the stop code and reason of what they model.

use super::*;

/// New `api` tasks that read `bad-password` are hit by `effect`; returns those stopped.
fn stopped_with_bad_value(seed: u64, effect: HealthEffect) -> (H, Vec<Value>) {
    let mut h = H::new(seed);
    h.ecs.set_health_rules(bad_value_rule(effect));
    h.service("api", 2, 100, 200, no_breaker());
    h.wait(600.0);
    h.src.put("db_password", "v2", "bad-password");
    h.force("api");
    h.wait(120.0);
    let stopped: Vec<Value> = h
        .tasks_of("api")
        .into_iter()
        .filter(|t| t["lastStatus"] == "STOPPED")
        .collect();
    // The virtual clock and the seed fix how many new tasks were hit by then.
    assert_eq!(stopped.len(), 8, "some new tasks were hit");
    (h, stopped)
}

#[test]
fn app_rejects_value_stops_with_essential_container_exited() {
    let (_, stopped) = stopped_with_bad_value(21, HealthEffect::AppRejectsValue);
    for t in &stopped {
        assert_eq!(t["stopCode"], "EssentialContainerExited", "{t}");
        assert_eq!(t["stoppedReason"], "Essential container in task exited");
        assert!(t["startedAt"].is_null(), "never reached RUNNING");
        // The application read the value it rejected.
        assert_eq!(t["secrets"][0]["version_id"], "v2");
    }
}

#[test]
fn secret_unavailable_stops_with_task_failed_to_start() {
    let (mut h, stopped) = stopped_with_bad_value(22, HealthEffect::SecretUnavailable);
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db_password-AbCdEf";
    for t in &stopped {
        assert_eq!(t["stopCode"], "TaskFailedToStart", "{t}");
        let reason = t["stoppedReason"].as_str().unwrap();
        assert!(
            reason.starts_with(
                "ResourceInitializationError: unable to pull secrets or registry auth: \
execution resource retrieval failed: unable to retrieve secret from asm: service call has \
been retried 5 time(s): AccessDeniedException: "
            ),
            "{reason}"
        );
        assert!(reason.contains(&format!("on resource: {arn} ")), "{reason}");
        assert!(t["startedAt"].is_null(), "never reached RUNNING");
        // The task never got the secret, so it records no version of it.
        assert_eq!(t["secrets"], json!([]), "{t}");
    }
    let msgs = h.messages("api");
    assert!(msgs.iter().any(|m| m.starts_with(
        "(service api) was unable to place a task. Reason: ResourceInitializationError"
    )));
}

#[test]
fn effects_parse_by_name_and_fail_to_start_stays_an_alias() {
    for (text, effect) in [
        ("app_rejects_value", HealthEffect::AppRejectsValue),
        ("fail_to_start", HealthEffect::AppRejectsValue),
        ("secret_unavailable", HealthEffect::SecretUnavailable),
        ("fail_health_check", HealthEffect::FailHealthCheck),
    ] {
        let rule: HealthRule =
            serde_json::from_value(json!({"effect": text})).expect("effect parses");
        assert_eq!(rule.effect, effect, "{text}");
    }
    // Written back under the new name.
    let rule: HealthRule = serde_json::from_value(json!({"effect": "fail_to_start"})).unwrap();
    assert_eq!(
        serde_json::to_value(&rule).unwrap()["effect"],
        "app_rejects_value"
    );
    assert!(serde_json::from_value::<HealthRule>(json!({"effect": "explode"})).is_err());
}
