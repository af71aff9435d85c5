//! The AWS SDK for Rust parses every ECS response the sandbox gives: the same code path
//! secret-rollout uses against real AWS.

use aws_sdk_ecs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ecs::types::{
    ContainerDefinition, DeploymentCircuitBreaker, DeploymentConfiguration, DesiredStatus,
    LaunchType, Secret,
};
use sandbox::{Sandbox, SandboxOptions, Scenario};

async fn start() -> (Sandbox, aws_sdk_ecs::Client) {
    let sb = Sandbox::start(SandboxOptions {
        port: 0,
        scenario: Scenario::default(),
        speed: Some(0.0),
        seed: Some(3),
    })
    .await
    .expect("sandbox starts");
    let conf = aws_sdk_ecs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(sb.endpoint())
        .credentials_provider(Credentials::new(
            "AKIDSANDBOX",
            "sandbox",
            None,
            None,
            "test",
        ))
        .build();
    (sb, aws_sdk_ecs::Client::from_conf(conf))
}

fn advance(sb: &Sandbox, secs: f64) {
    sb.world().lock().unwrap().clock.advance(secs);
}

#[tokio::test]
async fn sdk_round_trip_of_a_forced_deployment() {
    let (sb, ecs) = start().await;
    ecs.create_cluster()
        .cluster_name("ecs-sdk-test")
        .send()
        .await
        .unwrap();
    // A task definition with a secret reference round-trips as given.
    let td = ecs
        .register_task_definition()
        .family("ecs-sdk-migrations")
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("migrations")
                .secrets(
                    Secret::builder()
                        .name("OWNER_PASSWORD")
                        .value_from(
                            "/aws/reference/secretsmanager/production/opg_lpa_pdf_owner_password",
                        )
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let td = td.task_definition().unwrap();
    assert_eq!(td.revision(), 1);
    assert_eq!(
        td.container_definitions()[0].secrets()[0].value_from(),
        "/aws/reference/secretsmanager/production/opg_lpa_pdf_owner_password"
    );
    let described = ecs
        .describe_task_definition()
        .task_definition("ecs-sdk-migrations:1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.task_definition().unwrap().task_definition_arn(),
        Some("arn:aws:ecs:eu-west-1:123456789012:task-definition/ecs-sdk-migrations:1")
    );

    // The service's tasks read no secret: this test is about the wire format, not secrets.
    ecs.register_task_definition()
        .family("ecs-sdk-pdf")
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder()
                .name("web")
                .image("nginx")
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("pdf")
                .build(),
        )
        .send()
        .await
        .unwrap();

    ecs.create_service()
        .cluster("ecs-sdk-test")
        .service_name("pdf")
        .task_definition("ecs-sdk-pdf")
        .desired_count(2)
        .launch_type(LaunchType::Fargate)
        .deployment_configuration(
            DeploymentConfiguration::builder()
                .minimum_healthy_percent(100)
                .maximum_percent(200)
                .deployment_circuit_breaker(
                    DeploymentCircuitBreaker::builder()
                        .enable(false)
                        .rollback(false)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    advance(&sb, 600.0);

    let out = ecs
        .update_service()
        .cluster("ecs-sdk-test")
        .service("pdf")
        .force_new_deployment(true)
        .send()
        .await
        .unwrap();
    let svc = out.service().unwrap();
    assert_eq!(svc.deployments().len(), 2);
    let new = svc.deployments()[0].id().unwrap().to_string();
    advance(&sb, 900.0);

    let out = ecs
        .describe_services()
        .cluster("ecs-sdk-test")
        .services("pdf")
        .services("ghost")
        .send()
        .await
        .unwrap();
    let svc = &out.services()[0];
    assert_eq!(svc.deployments().len(), 1);
    let d = &svc.deployments()[0];
    assert_eq!(d.id(), Some(new.as_str()));
    assert_eq!(d.rollout_state().map(|s| s.as_str()), Some("COMPLETED"));
    assert_eq!(svc.running_count(), 2);
    assert!(d.created_at().is_some());
    // The events are the sandbox's, newest first, every one parsed (the clock is stopped:
    // nothing happens between the call and the snapshot); the newest says steady state.
    let snap = sb.snapshot();
    let truth: Vec<&str> = snap["ecs"]["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["name"] == "pdf")
        .expect("pdf in the sandbox")["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["message"].as_str().expect("message"))
        .collect();
    let got: Vec<&str> = svc.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(got.len(), svc.events().len(), "every event has a message");
    assert_eq!(got, truth);
    assert!(
        got[0].ends_with("has reached a steady state."),
        "newest event: {got:?}"
    );
    assert!(svc
        .events()
        .iter()
        .all(|e| e.id().is_some() && e.created_at().is_some()));
    assert_eq!(out.failures()[0].reason(), Some("MISSING"));

    let clusters = ecs
        .describe_clusters()
        .clusters("ecs-sdk-test")
        .send()
        .await
        .unwrap();
    assert_eq!(clusters.clusters()[0].running_tasks_count(), 2);

    // The replaced tasks, all fields parsed (stop codes, timestamps).
    let stopped = ecs
        .list_tasks()
        .cluster("ecs-sdk-test")
        .service_name("pdf")
        .desired_status(DesiredStatus::Stopped)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.task_arns().len(), 2);
    let tasks = ecs
        .describe_tasks()
        .cluster("ecs-sdk-test")
        .set_tasks(Some(stopped.task_arns().to_vec()))
        .send()
        .await
        .unwrap();
    for t in tasks.tasks() {
        assert_eq!(t.last_status(), Some("STOPPED"));
        assert_eq!(
            t.stop_code().map(|c| c.as_str()),
            Some("ServiceSchedulerInitiated")
        );
        assert!(t.stopped_at().is_some() && t.started_at().is_some());
        assert_eq!(t.cpu(), Some("256"));
    }

    let err = ecs
        .describe_services()
        .cluster("nope")
        .services("pdf")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_cluster_not_found_exception());
}
