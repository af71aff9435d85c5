//! The ECS simulation at benchmark scale: 1,000 services with 10 tasks each, created an hour
//! in the past the way the scenario builder does it, settle by simulation.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use sandbox::ecs::Ecs;
use sandbox::secrets::{Resolved, SecretSource};
use sandbox::Ctx;
use serde_json::{json, Value};

/// Every secret resolves to version `v1`.
struct Always;

impl SecretSource for Always {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String> {
        let name = value_from
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Resolved {
            secret_arn: format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-AbCdEf"),
            name,
            version_id: "v1".into(),
            json_key: None,
            value: "x".into(),
        })
    }
}

fn call(ecs: &mut Ecs, rng: &mut ChaCha8Rng, now: f64, op: &str, body: Value) -> Value {
    let mut ctx = Ctx {
        now,
        region: "eu-west-1",
        account: "123456789012",
        rng,
    };
    ecs.handle(&mut ctx, &Always, op, &body)
        .unwrap_or_else(|e| panic!("{op}: {e}"))
}

#[test]
fn thousand_services_ten_thousand_tasks_settle() {
    let started = std::time::Instant::now();
    let now = 1_700_000_000.0;
    let past = now - 3600.0;
    let mut ecs = Ecs::default();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    call(
        &mut ecs,
        &mut rng,
        past,
        "CreateCluster",
        json!({"clusterName": "big"}),
    );
    for i in 0..1000 {
        let family = format!("fam-{i}");
        call(
            &mut ecs,
            &mut rng,
            past,
            "RegisterTaskDefinition",
            json!({
                "family": family,
                "containerDefinitions": [{"name": "app", "image": "app", "secrets": [
                    {"name": "A", "valueFrom": "/aws/reference/secretsmanager/prod/a"},
                    {"name": "B", "valueFrom": "/aws/reference/secretsmanager/prod/b"},
                ]}],
            }),
        );
        call(
            &mut ecs,
            &mut rng,
            past,
            "CreateService",
            json!({
                "cluster": "big", "serviceName": format!("svc-{i}"), "taskDefinition": family,
                "desiredCount": 10,
                "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true}},
            }),
        );
    }
    let mut ctx = Ctx {
        now,
        region: "eu-west-1",
        account: "123456789012",
        rng: &mut rng,
    };
    ecs.advance(&mut ctx, &Always);
    let loaded = started.elapsed();
    let c = call(
        &mut ecs,
        &mut rng,
        now,
        "DescribeClusters",
        json!({"clusters": ["big"]}),
    );
    assert_eq!(c["clusters"][0]["runningTasksCount"], 10_000);
    assert_eq!(c["clusters"][0]["pendingTasksCount"], 0);
    let names: Vec<String> = (0..10).map(|i| format!("svc-{}", i * 97)).collect();
    let t = std::time::Instant::now();
    let d = call(
        &mut ecs,
        &mut rng,
        now,
        "DescribeServices",
        json!({"cluster": "big", "services": names}),
    );
    let describe = t.elapsed();
    let services = d["services"].as_array().unwrap();
    assert_eq!(services.len(), 10);
    for s in services {
        assert_eq!(s["runningCount"], 10);
        assert_eq!(s["deployments"].as_array().unwrap().len(), 1);
        assert_eq!(s["deployments"][0]["rolloutState"], "COMPLETED");
    }
    // Informational (no timing assertion: CI machines vary); BENCHMARKS.md has the real numbers.
    eprintln!("loaded in {loaded:?}, DescribeServices(10) in {describe:?}");
}
