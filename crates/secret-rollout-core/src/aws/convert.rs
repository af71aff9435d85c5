//! SDK shapes into the core's observations ([`super::model`]): the only place that reads
//! the SDK's ECS and Secrets Manager output types.

use std::collections::BTreeMap;

use aws_sdk_ecs::types::{Deployment, Service, Task, TaskDefinition};
use aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput;
use aws_sdk_secretsmanager::types::SecretVersionsListEntry;

use super::model::{
    name_from_arn, Controller, DeploymentObs, HookObs, Place, RefSite, SecretInfo,
    ServiceDeploymentRecord, ServiceInfo, ServiceObs, TaskDef, TaskObs, VersionInfo,
};

fn secs(t: Option<&aws_smithy_types::DateTime>) -> f64 {
    t.map(|t| t.as_secs_f64()).unwrap_or(0.0)
}

impl From<&TaskDefinition> for TaskDef {
    fn from(td: &TaskDefinition) -> Self {
        let mut refs = Vec::new();
        for c in td.container_definitions() {
            let container = c.name().unwrap_or_default().to_string();
            for s in c.secrets() {
                refs.push(RefSite {
                    container: container.clone(),
                    place: Place::Secret {
                        env: s.name().to_string(),
                    },
                    value_from: s.value_from().to_string(),
                });
            }
            if let Some(log) = c.log_configuration() {
                for s in log.secret_options() {
                    refs.push(RefSite {
                        container: container.clone(),
                        place: Place::LogOption {
                            name: s.name().to_string(),
                        },
                        value_from: s.value_from().to_string(),
                    });
                }
            }
            if let Some(creds) = c.repository_credentials() {
                refs.push(RefSite {
                    container: container.clone(),
                    place: Place::RepositoryCredentials,
                    value_from: creds.credentials_parameter().to_string(),
                });
            }
        }
        TaskDef {
            arn: td.task_definition_arn().unwrap_or_default().to_string(),
            family: td.family().unwrap_or_default().to_string(),
            revision: td.revision(),
            refs,
            images: td
                .container_definitions()
                .iter()
                .map(|c| {
                    (
                        c.name().unwrap_or_default().to_string(),
                        c.image().unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        }
    }
}

impl From<&Service> for ServiceInfo {
    /// The cluster name is taken from the service's `clusterArn`.
    fn from(s: &Service) -> Self {
        use aws_sdk_ecs::types::DeploymentControllerType as T;
        let controller = match s.deployment_controller().map(|c| c.r#type()) {
            Some(T::CodeDeploy) => Controller::CodeDeploy,
            Some(T::External) => Controller::External,
            // ECS, absent (the default), or a type this SDK does not know: an unknown one
            // is treated as ECS's own, since refusing it would block every rotation.
            _ => Controller::Ecs,
        };
        let config = s.deployment_configuration();
        ServiceInfo {
            cluster: name_from_arn(s.cluster_arn().unwrap_or_default()).to_string(),
            name: s.service_name().unwrap_or_default().to_string(),
            arn: s.service_arn().unwrap_or_default().to_string(),
            status: s.status().unwrap_or_default().to_string(),
            task_definition_arn: s.task_definition().unwrap_or_default().to_string(),
            desired: s.desired_count(),
            running: s.running_count(),
            pending: s.pending_count(),
            controller,
            min_healthy_percent: config
                .and_then(|c| c.minimum_healthy_percent())
                .unwrap_or(100),
            max_percent: config.and_then(|c| c.maximum_percent()).unwrap_or(200),
            circuit_breaker: config
                .and_then(|c| c.deployment_circuit_breaker())
                .map(|b| (b.enable(), b.rollback())),
            strategy: config
                .and_then(|c| c.strategy())
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            least_rollout_secs: crate::rollout::strategy::least_rollout_seconds(
                config.and_then(|c| c.strategy()).map_or("", |s| s.as_str()),
                config.and_then(|c| c.bake_time_in_minutes()),
                config
                    .and_then(|c| c.linear_configuration())
                    .map(|l| (l.step_percent(), l.step_bake_time_in_minutes())),
                config
                    .and_then(|c| c.canary_configuration())
                    .map(|c| (c.canary_percent(), c.canary_bake_time_in_minutes())),
            ),
            // The same without the final bake: the traffic steps alone.
            least_traffic_secs: crate::rollout::strategy::least_rollout_seconds(
                config.and_then(|c| c.strategy()).map_or("", |s| s.as_str()),
                None,
                config
                    .and_then(|c| c.linear_configuration())
                    .map(|l| (l.step_percent(), l.step_bake_time_in_minutes())),
                config
                    .and_then(|c| c.canary_configuration())
                    .map(|c| (c.canary_percent(), c.canary_bake_time_in_minutes())),
            ),
        }
    }
}

/// One deployment.
pub fn deployment(d: &Deployment) -> DeploymentObs {
    DeploymentObs {
        id: d.id().unwrap_or_default().to_string(),
        status: d.status().unwrap_or_default().to_string(),
        rollout_state: d
            .rollout_state()
            .map(|r| r.as_str().to_string())
            .unwrap_or_default(),
        reason: d.rollout_state_reason().unwrap_or_default().to_string(),
        desired: d.desired_count(),
        running: d.running_count(),
        pending: d.pending_count(),
        failed_tasks: d.failed_tasks(),
        created_at: secs(d.created_at()),
        updated_at: secs(d.updated_at()),
        task_definition_arn: d.task_definition().unwrap_or_default().to_string(),
    }
}

/// A described service of `cluster` (the cluster as it was asked for).
pub fn service(cluster: &str, s: &Service) -> ServiceObs {
    let mut info = ServiceInfo::from(s);
    info.cluster = cluster.to_string();
    ServiceObs {
        info,
        deployments: s.deployments().iter().map(deployment).collect(),
        events: s
            .events()
            .iter()
            .map(|e| {
                (
                    secs(e.created_at()),
                    e.message().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        current_service_deployment: s
            .current_service_deployment()
            .filter(|a| !a.is_empty())
            .map(str::to_string),
    }
}

/// A service deployment, as DescribeServiceDeployments describes it.
pub fn service_deployment(d: &aws_sdk_ecs::types::ServiceDeployment) -> ServiceDeploymentRecord {
    let target = d.target_service_revision();
    ServiceDeploymentRecord {
        arn: d.service_deployment_arn().unwrap_or_default().to_string(),
        status: d
            .status()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        status_reason: d.status_reason().unwrap_or_default().to_string(),
        lifecycle_stage: d
            .lifecycle_stage()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        production_weight: target.and_then(|t| t.requested_production_traffic_weight()),
        test_weight: target.and_then(|t| t.requested_test_traffic_weight()),
        bake_minutes: d
            .deployment_configuration()
            .and_then(|c| c.bake_time_in_minutes()),
        hooks: d
            .lifecycle_hook_details()
            .iter()
            .map(|h| HookObs {
                id: h.hook_id().unwrap_or_default().to_string(),
                target_type: h
                    .target_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                status: h
                    .status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        rollback_reason: d
            .rollback()
            .map(|r| r.reason().unwrap_or("rolled back").to_string()),
        breaker_status: d
            .deployment_circuit_breaker()
            .and_then(|b| b.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        failure_count: d
            .deployment_circuit_breaker()
            .map_or(0, |b| b.failure_count()),
        triggered_alarms: d
            .alarms()
            .map(|a| a.triggered_alarm_names().to_vec())
            .unwrap_or_default(),
        started_at: d
            .started_at()
            .or(d.created_at())
            .map(|t| t.as_secs_f64())
            .unwrap_or(0.0),
    }
}

/// A described task.
pub fn task(t: &Task) -> TaskObs {
    TaskObs {
        arn: t.task_arn().unwrap_or_default().to_string(),
        started_by: t.started_by().unwrap_or_default().to_string(),
        last_status: t.last_status().unwrap_or_default().to_string(),
        desired_status: t.desired_status().unwrap_or_default().to_string(),
        created_at: secs(t.created_at()),
        started_at: t.started_at().map(|d| d.as_secs_f64()),
        task_definition_arn: t.task_definition_arn().unwrap_or_default().to_string(),
        group: t.group().unwrap_or_default().to_string(),
        containers: t
            .containers()
            .iter()
            .map(|c| {
                (
                    c.name().unwrap_or_default().to_string(),
                    c.image_digest().map(str::to_string),
                )
            })
            .collect(),
    }
}

/// What DescribeSecret said about `id` (no value: DescribeSecret has none).
pub fn secret(id: &str, d: &DescribeSecretOutput) -> SecretInfo {
    let stages: BTreeMap<String, Vec<String>> = d
        .version_ids_to_stages()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let with = |label: &str| {
        stages
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == label))
            .map(|(v, _)| v.clone())
    };
    SecretInfo {
        arn: d.arn().unwrap_or(id).to_string(),
        name: d.name().unwrap_or(id).to_string(),
        current: with("AWSCURRENT"),
        previous: with("AWSPREVIOUS"),
        rotation_enabled: d.rotation_enabled().unwrap_or(false),
        deleted_date: d.deleted_date().map(|t| t.as_secs_f64()),
        owning_service: d.owning_service().map(str::to_string),
        last_changed: d.last_changed_date().map(|t| t.as_secs_f64()),
        last_rotated: d.last_rotated_date().map(|t| t.as_secs_f64()),
        stages,
    }
}

/// One version from ListSecretVersionIds.
pub fn version(v: &SecretVersionsListEntry) -> VersionInfo {
    VersionInfo {
        id: v.version_id().unwrap_or_default().to_string(),
        stages: v.version_stages().to_vec(),
        created: v.created_date().map(|t| t.as_secs_f64()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types as t;

    #[test]
    fn converts_sdk_types() {
        let td = t::TaskDefinition::builder()
            .task_definition_arn(
                "arn:aws:ecs:eu-west-1:123456789012:task-definition/production-api:7",
            )
            .family("production-api")
            .revision(7)
            .container_definitions(
                t::ContainerDefinition::builder()
                    .name("app")
                    .secrets(
                        t::Secret::builder()
                            .name("A")
                            .value_from("/aws/reference/secretsmanager/a")
                            .build()
                            .unwrap(),
                    )
                    .log_configuration(
                        t::LogConfiguration::builder()
                            .log_driver(t::LogDriver::Awsfirelens)
                            .secret_options(
                                t::Secret::builder()
                                    .name("key")
                                    .value_from("b")
                                    .build()
                                    .unwrap(),
                            )
                            .build()
                            .unwrap(),
                    )
                    .repository_credentials(
                        t::RepositoryCredentials::builder()
                            .credentials_parameter("c")
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
            .build();
        let ours = TaskDef::from(&td);
        assert_eq!(ours.family, "production-api");
        assert_eq!(ours.revision, 7);
        assert_eq!(
            ours.refs,
            vec![
                RefSite {
                    container: "app".into(),
                    place: Place::Secret { env: "A".into() },
                    value_from: "/aws/reference/secretsmanager/a".into()
                },
                RefSite {
                    container: "app".into(),
                    place: Place::LogOption { name: "key".into() },
                    value_from: "b".into()
                },
                RefSite {
                    container: "app".into(),
                    place: Place::RepositoryCredentials,
                    value_from: "c".into()
                },
            ]
        );

        let svc = t::Service::builder()
            .service_name("api")
            .service_arn("arn:aws:ecs:eu-west-1:123456789012:service/production-online-lpa/api")
            .cluster_arn("arn:aws:ecs:eu-west-1:123456789012:cluster/production-online-lpa")
            .task_definition("arn:aws:ecs:eu-west-1:123456789012:task-definition/production-api:7")
            .desired_count(3)
            .running_count(2)
            .pending_count(1)
            .deployment_controller(
                t::DeploymentController::builder()
                    .r#type(t::DeploymentControllerType::CodeDeploy)
                    .build()
                    .unwrap(),
            )
            .deployment_configuration(
                t::DeploymentConfiguration::builder()
                    .minimum_healthy_percent(50)
                    .deployment_circuit_breaker(
                        t::DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(false)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let info = ServiceInfo::from(&svc);
        assert_eq!(info.cluster, "production-online-lpa");
        assert_eq!(info.name, "api");
        assert_eq!((info.desired, info.running, info.pending), (3, 2, 1));
        assert_eq!(info.controller, Controller::CodeDeploy);
        assert_eq!((info.min_healthy_percent, info.max_percent), (50, 200));
        assert_eq!(info.circuit_breaker, Some((true, false)));

        let bare = ServiceInfo::from(&t::Service::builder().service_name("x").build());
        assert_eq!(bare.controller, Controller::Ecs);
        assert_eq!((bare.min_healthy_percent, bare.max_percent), (100, 200));
        assert_eq!(bare.circuit_breaker, None);
    }

    fn sdk_deployment(
        id: &str,
        status: &str,
        state: t::DeploymentRolloutState,
        reason: &str,
    ) -> t::Deployment {
        t::Deployment::builder()
            .id(id)
            .status(status)
            .task_definition("arn:aws:ecs:eu-west-1:1:task-definition/api:7")
            .desired_count(3)
            .running_count(2)
            .pending_count(1)
            .failed_tasks(0)
            .rollout_state(state)
            .rollout_state_reason(reason)
            .created_at(aws_smithy_types::DateTime::from_secs(100))
            .updated_at(aws_smithy_types::DateTime::from_secs(160))
            .build()
    }

    fn sdk_service(breaker_rollback: bool, deployments: Vec<t::Deployment>) -> t::Service {
        t::Service::builder()
            .service_name("api")
            .cluster_arn("arn:aws:ecs:eu-west-1:1:cluster/production")
            .status("ACTIVE")
            .task_definition("arn:aws:ecs:eu-west-1:1:task-definition/api:7")
            .desired_count(3)
            .deployment_configuration(
                t::DeploymentConfiguration::builder()
                    .deployment_circuit_breaker(
                        t::DeploymentCircuitBreaker::builder()
                            .enable(true)
                            .rollback(breaker_rollback)
                            .build(),
                    )
                    .build(),
            )
            .set_deployments(Some(deployments))
            .events(
                t::ServiceEvent::builder()
                    .created_at(aws_smithy_types::DateTime::from_secs(150))
                    .message("(service api) has started 1 tasks")
                    .build(),
            )
            .build()
    }

    #[test]
    fn a_service_with_its_deployments_and_primary() {
        use t::DeploymentRolloutState as R;
        let s = sdk_service(
            true,
            vec![
                sdk_deployment(
                    "ecs-svc/2",
                    "PRIMARY",
                    R::InProgress,
                    "ECS deployment ecs-svc/2 in progress.",
                ),
                sdk_deployment("ecs-svc/1", "ACTIVE", R::Completed, ""),
            ],
        );
        let obs = service("production-as-asked", &s);
        assert_eq!(obs.info.cluster, "production-as-asked");
        assert_eq!(
            (obs.info.name.as_str(), obs.info.status.as_str()),
            ("api", "ACTIVE")
        );
        assert_eq!(obs.deployments.len(), 2);
        let p = obs.primary().unwrap();
        assert_eq!(p.id, "ecs-svc/2");
        assert_eq!(p.rollout_state, "IN_PROGRESS");
        assert_eq!(
            (p.desired, p.running, p.pending, p.failed_tasks),
            (3, 2, 1, 0)
        );
        assert_eq!((p.created_at, p.updated_at), (100.0, 160.0));
        assert_eq!(
            p.task_definition_arn,
            "arn:aws:ecs:eu-west-1:1:task-definition/api:7"
        );
        assert_eq!(
            obs.events,
            vec![(150.0, "(service api) has started 1 tasks".to_string())]
        );
        assert!(!obs.rolling_back());
        // The JSON of `status` does not grow: updated_at and the task definition stay out.
        let json = serde_json::to_value(p).unwrap();
        assert!(json.get("updated_at").is_none() && json.get("task_definition_arn").is_none());
        assert!(service("c", &t::Service::builder().build())
            .primary()
            .is_none());
    }

    #[test]
    fn a_circuit_breaker_rollback_is_seen_by_structure_or_by_its_wording() {
        use t::DeploymentRolloutState as R;
        // Structure: PRIMARY in progress, the failed one still listed, breaker rolls back.
        // The reason is reworded here on purpose: the structure alone decides.
        let failed = sdk_deployment("ecs-svc/2", "ACTIVE", R::Failed, "tasks failed to start.");
        let back = sdk_deployment("ecs-svc/1", "PRIMARY", R::InProgress, "reworded by AWS");
        let s = sdk_service(true, vec![back.clone(), failed.clone()]);
        assert!(service("c", &s).rolling_back());
        // Without rollback on the breaker, the same listing is no rollback.
        let s = sdk_service(false, vec![back.clone(), failed]);
        assert!(!service("c", &s).rolling_back());
        // Fallback: the failed deployment has left the list; ECS's wording remains.
        let wording = sdk_deployment(
            "ecs-svc/1",
            "PRIMARY",
            R::InProgress,
            "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/1.",
        );
        assert!(service("c", &sdk_service(true, vec![wording])).rolling_back());
        assert!(!service("c", &sdk_service(true, vec![back])).rolling_back());
    }

    #[test]
    fn a_task() {
        let task = t::Task::builder()
            .task_arn("arn:aws:ecs:eu-west-1:1:task/production/0123abcd")
            .started_by("ecs-svc/2")
            .last_status("RUNNING")
            .desired_status("RUNNING")
            .created_at(aws_smithy_types::DateTime::from_secs(200))
            .task_definition_arn("arn:aws:ecs:eu-west-1:1:task-definition/api:7")
            .build();
        let obs = super::task(&task);
        assert_eq!(obs.id(), "0123abcd");
        assert_eq!(obs.started_by, "ecs-svc/2");
        assert_eq!((obs.created_at, obs.started_at), (200.0, None));
        assert_eq!(obs.desired_status, "RUNNING");
    }

    #[test]
    fn a_secret_and_its_versions() {
        use aws_sdk_secretsmanager::types::SecretVersionsListEntry;
        let d = DescribeSecretOutput::builder()
            .arn("arn:aws:secretsmanager:eu-west-1:1:secret:production/x-AbCdEf")
            .name("production/x")
            .version_ids_to_stages("v2", vec!["AWSCURRENT".to_string()])
            .version_ids_to_stages("v1", vec!["AWSPREVIOUS".to_string()])
            .rotation_enabled(true)
            .last_changed_date(aws_smithy_types::DateTime::from_secs(300))
            .build();
        let info = secret("production/x", &d);
        assert_eq!(
            info.arn,
            "arn:aws:secretsmanager:eu-west-1:1:secret:production/x-AbCdEf"
        );
        assert_eq!(info.current.as_deref(), Some("v2"));
        assert_eq!(info.previous.as_deref(), Some("v1"));
        assert!(info.rotation_enabled);
        assert_eq!((info.deleted_date, info.last_changed), (None, Some(300.0)));
        assert_eq!(info.stages.len(), 2);
        // Asked by name and DescribeSecret said nothing: the name stands in.
        let bare = secret("production/y", &DescribeSecretOutput::builder().build());
        assert_eq!((bare.arn.as_str(), bare.current), ("production/y", None));

        let v = SecretVersionsListEntry::builder()
            .version_id("v1")
            .version_stages("AWSPREVIOUS")
            .created_date(aws_smithy_types::DateTime::from_secs(10))
            .build();
        assert_eq!(
            version(&v),
            VersionInfo {
                id: "v1".into(),
                stages: vec!["AWSPREVIOUS".into()],
                created: Some(10.0)
            }
        );
    }
}
