//! The large generated scenario of the benchmarks.

use std::collections::BTreeMap;

use serde_json::json;

use super::{default_account, default_region, obj, Scenario, SecretSpec, ServiceSpec};
use crate::sts::StsConfig;

impl Scenario {
    /// A large generated scenario for benchmarks: `services` services of
    /// `tasks_per_service` tasks spread over `clusters` clusters, reading secrets from a
    /// pool of one secret per ten services plus one shared secret, by reference path and
    /// by full ARN.
    pub fn generated(services: usize, tasks_per_service: usize, clusters: usize) -> Scenario {
        let clusters = clusters.max(1);
        let pool = (services / 10).max(1);
        let mut secrets = vec![SecretSpec {
            name: "generated/shared".into(),
            value: Some("shared-value".into()),
            arn_suffix: Some("Shared".into()),
            ..Default::default()
        }];
        for i in 0..pool {
            secrets.push(SecretSpec {
                name: format!("generated/secret-{i}"),
                value: Some(format!("value-{i}")),
                ..Default::default()
            });
        }
        let shared_arn =
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:generated/shared-Shared";
        let mut task_definitions = Vec::with_capacity(services);
        let mut service_specs = Vec::with_capacity(services);
        for i in 0..services {
            let family = format!("svc-{i}");
            task_definitions.push(obj(json!({
                "family": family,
                "requiresCompatibilities": ["FARGATE"],
                "networkMode": "awsvpc",
                "cpu": "256",
                "memory": "512",
                "containerDefinitions": [{
                    "name": "app",
                    "image": "example/app:1",
                    "essential": true,
                    "secrets": [
                        {"name": "SHARED", "valueFrom": shared_arn},
                        {"name": "OWN", "valueFrom": format!("/aws/reference/secretsmanager/generated/secret-{}", i % pool)},
                    ],
                }],
            })));
            service_specs.push(ServiceSpec {
                timing: None,
                request: obj(json!({
                    "cluster": format!("cluster-{}", i % clusters),
                    "serviceName": family,
                    "taskDefinition": family,
                    "desiredCount": tasks_per_service,
                    "launchType": "FARGATE",
                    "deploymentConfiguration": {
                        "minimumHealthyPercent": 50,
                        "maximumPercent": 200,
                        "deploymentCircuitBreaker": {"enable": true, "rollback": true},
                    },
                })),
            });
        }
        Scenario {
            region: default_region(),
            account: default_account(),
            seed: 1,
            speed: 1.0,
            start: None,
            sts: StsConfig::default(),
            secrets,
            parameters: Vec::new(),
            clusters: (0..clusters)
                .map(|c| obj(json!({"clusterName": format!("cluster-{c}")})))
                .collect(),
            ecr_repositories: Vec::new(),
            task_definitions,
            services: service_specs,
            timing: None,
            health_rules: Vec::new(),
            faults: Vec::new(),
            hook_rules: Vec::new(),
            alarms: BTreeMap::new(),
            limits: None,
        }
    }
}
