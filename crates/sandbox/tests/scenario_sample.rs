//! The built-in sample scenario served over HTTP: its 13 secrets, the 4 settled services and
//! their task definitions' 16 secret references. Needs the real ECS module (these fail
//! against the ECS stub, whose operations are all unknown).

mod sm_common;

use sandbox::{Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};
use sm_common::*;

async fn ecs(sb: &Sandbox, op: &str, body: Value) -> Value {
    let a = raw_json(
        sb,
        &format!("AmazonEC2ContainerServiceV20141113.{op}"),
        None,
        &body.to_string(),
    )
    .await;
    assert_eq!(a.status, 200, "{op}: {}", a.body);
    a.body
}

#[tokio::test]
async fn sample_loads_with_secrets_services_and_references() {
    let sb = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let list = sm_ok(&sb, "ListSecrets", json!({})).await;
    let names: Vec<_> = list["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.len(), 13, "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("production/")));

    let out = ecs(
        &sb,
        "DescribeServices",
        json!({"cluster": "production-online-lpa", "services": ["front", "api", "pdf", "admin"]}),
    )
    .await;
    let services = out["services"].as_array().unwrap();
    assert_eq!(services.len(), 4);
    let mut refs = 0;
    for (svc, want, min_healthy) in [
        ("front", 3, 50),
        ("api", 3, 50),
        ("pdf", 2, 100),
        ("admin", 1, 50),
    ] {
        let s = services.iter().find(|s| s["serviceName"] == svc).unwrap();
        assert_eq!(s["desiredCount"], want, "{svc}");
        assert_eq!(s["runningCount"], want, "{svc} settled");
        let dc = &s["deploymentConfiguration"];
        assert_eq!(dc["minimumHealthyPercent"], min_healthy);
        assert_eq!(dc["maximumPercent"], 200);
        assert_eq!(
            dc["deploymentCircuitBreaker"],
            json!({"enable": true, "rollback": true})
        );
        let td = ecs(
            &sb,
            "DescribeTaskDefinition",
            json!({"taskDefinition": s["taskDefinition"]}),
        )
        .await;
        assert_eq!(td["taskDefinition"]["family"], format!("production-{svc}"));
        for c in td["taskDefinition"]["containerDefinitions"]
            .as_array()
            .unwrap()
        {
            let n = c["secrets"].as_array().map_or(0, Vec::len);
            if c["name"] == "web" {
                assert_eq!(n, 0);
            }
            refs += n;
        }
    }
    assert_eq!(refs, 16);
    let tasks = ecs(
        &sb,
        "ListTasks",
        json!({"cluster": "production-online-lpa", "serviceName": "front"}),
    )
    .await;
    assert_eq!(tasks["taskArns"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn a_small_generated_scenario_loads() {
    let sb = Sandbox::start(SandboxOptions {
        scenario: Scenario::generated(20, 2, 3),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let out = ecs(&sb, "ListClusters", json!({})).await;
    assert_eq!(out["clusterArns"].as_array().unwrap().len(), 3);
}

/// `(service, secret name, version id)` of every secret resolved by a RUNNING task, from
/// the ground-truth state.
fn running_resolutions(sb: &Sandbox) -> Vec<(String, String, String)> {
    let state = sb.snapshot();
    let mut out = vec![];
    for t in state["ecs"]["tasks"].as_array().unwrap() {
        if t["lastStatus"] != "RUNNING" {
            continue;
        }
        let service = t["service"].as_str().unwrap_or_default().to_string();
        for s in t["secrets"].as_array().unwrap() {
            out.push((
                service.clone(),
                s["name"].as_str().unwrap().to_string(),
                s["version_id"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn sample_tasks_read_current_versions_and_a_rollout_picks_up_a_put() {
    let sb = Sandbox::start(SandboxOptions {
        speed: Some(0.0),
        ..SandboxOptions::default()
    })
    .await
    .unwrap();
    let current = |name: &str| {
        let w = sb.world();
        let w = w.lock().unwrap();
        w.secrets.find(name).unwrap().current().unwrap().id.clone()
    };
    let before = running_resolutions(&sb);
    // 3 front tasks x 7 + 3 api x 6 + 2 pdf x 1 + 1 admin x 2.
    assert_eq!(before.len(), 21 + 18 + 2 + 2);
    for (svc, name, vid) in &before {
        assert_eq!(*vid, current(name), "{svc} {name}");
    }

    let key = "production/opg_lpa_api_notify_api_key";
    let put = sm_ok(
        &sb,
        "PutSecretValue",
        json!({"SecretId": key, "SecretString": "new-notify-key"}),
    )
    .await;
    let new_vid = put["VersionId"].as_str().unwrap().to_string();
    ecs(
        &sb,
        "UpdateService",
        json!({"cluster": "production-online-lpa", "service": "front", "forceNewDeployment": true}),
    )
    .await;
    let (status, _) = control(
        &sb,
        "POST",
        "/_sandbox/clock/advance",
        r#"{"seconds": 3600}"#,
    )
    .await;
    assert_eq!(status, 200);

    let after = running_resolutions(&sb);
    let notify: Vec<_> = after.iter().filter(|(_, n, _)| n == key).collect();
    assert_eq!(notify.len(), 6, "3 front + 3 api tasks read it");
    for (svc, _, vid) in notify {
        // Only the redeployed service picks up the new version.
        assert_eq!(*vid == new_vid, svc == "front", "{svc}");
    }
}

#[tokio::test]
async fn sample_with_blue_green_adds_viewer_and_keeps_the_sample_as_it_was() {
    let plain = Scenario::sample();
    let s = Scenario::sample_with_blue_green();
    assert_eq!(plain.services.len(), 4);
    assert_eq!(s.services.len(), 5);
    assert_eq!(s.secrets.len(), plain.secrets.len(), "no new secret");
    // The four services read exactly what they read before.
    let refs = |sc: &Scenario| {
        let mut r: Vec<_> = sc
            .secret_references()
            .into_iter()
            .filter(|(f, _, _)| f != "production-viewer")
            .collect();
        r.sort();
        r
    };
    assert_eq!(refs(&s), refs(&plain));
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: s,
        speed: Some(0.0),
        seed: Some(2),
    })
    .await
    .unwrap();
    let state = sb.snapshot();
    let viewer = state["ecs"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "viewer")
        .unwrap()
        .clone();
    assert_eq!(viewer["strategy"], "BLUE_GREEN");
    assert_eq!(viewer["runningCount"], 2);
    assert_eq!(viewer["serviceDeployments"][0]["status"], "SUCCESSFUL");
    let serving: Vec<&Value> = state["ecs"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["service"] == "viewer" && t["traffic"] == "production")
        .collect();
    assert_eq!(serving.len(), 2);
    assert_eq!(
        serving[0]["secrets"][0]["name"],
        "production/opg_lpa_common_account_cleanup_notification_recipients"
    );
}
