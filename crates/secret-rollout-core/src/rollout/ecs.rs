//! Thin ECS calls for the rollout, batched as the API allows: DescribeServices takes ten
//! services, DescribeTasks a hundred tasks, ListTasks pages a hundred.

use aws_sdk_ecs::types::{DesiredStatus, Service};
use aws_smithy_types::retry::RetryConfig;

use super::verdict::{DeploymentObs, ServiceObs, TaskObs};
use crate::clients::{describe_sdk_error, error_code};

/// An ECS call failed (after the SDK's retries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsError {
    /// The AWS error code, when AWS answered.
    pub code: Option<String>,
    /// Operator-readable description.
    pub message: String,
}

impl EcsError {
    fn from_sdk<E, R>(
        what: &str,
        e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
    ) -> Self
    where
        E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        Self {
            code: error_code(e),
            message: format!("{what}: {}", describe_sdk_error(e)),
        }
    }

    /// AWS throttled us.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some("ThrottlingException" | "Throttling" | "TooManyRequestsException")
        )
    }
}

impl std::fmt::Display for EcsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn secs(t: Option<&aws_smithy_types::DateTime>) -> f64 {
    t.map(|t| t.as_secs_f64()).unwrap_or(0.0)
}

/// Converts the SDK's service into the observation the verdicts take.
pub fn service_obs(cluster: &str, s: &Service) -> ServiceObs {
    ServiceObs {
        cluster: cluster.to_string(),
        name: s.service_name().unwrap_or_default().to_string(),
        desired: s.desired_count(),
        deployments: s
            .deployments()
            .iter()
            .map(|d| DeploymentObs {
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
            })
            .collect(),
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
    }
}

/// Describes services of one cluster, ten per call, all batches concurrently. Services
/// ECS reports MISSING are absent from the result.
pub async fn describe_services(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    names: &[String],
) -> Result<Vec<Service>, EcsError> {
    let calls = names.chunks(10).map(|chunk| {
        ecs.describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
    });
    let mut out = Vec::with_capacity(names.len());
    for result in futures::future::join_all(calls).await {
        let resp = result.map_err(|e| EcsError::from_sdk("DescribeServices", &e))?;
        out.extend(resp.services().iter().cloned());
    }
    Ok(out)
}

/// Forces a new deployment of one service and returns the new PRIMARY deployment's id.
///
/// Exactly one deployment per call: the SDK's automatic retry is off for this call,
/// because a request whose answer was lost may still have started a deployment. On a
/// failure we look at the service: if its PRIMARY is no longer `previous_primary`, our
/// call went through and we adopt that deployment; otherwise we retry ourselves.
pub async fn force_new_deployment(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    previous_primary: Option<&str>,
    attempts: u32,
) -> Result<String, EcsError> {
    let mut last = None;
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                200 * (1 << attempt.min(5)),
            ))
            .await;
            if let Some(id) = adopt_new_primary(ecs, cluster, service, previous_primary).await {
                return Ok(id);
            }
        }
        let sent = ecs
            .update_service()
            .cluster(cluster)
            .service(service)
            .force_new_deployment(true)
            .customize()
            .config_override(
                aws_sdk_ecs::config::Config::builder().retry_config(RetryConfig::disabled()),
            )
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let primary = resp
                    .service()
                    .and_then(|s| {
                        s.deployments()
                            .iter()
                            .find(|d| d.status() == Some("PRIMARY"))
                    })
                    .and_then(|d| d.id())
                    .map(str::to_string);
                return primary.ok_or_else(|| EcsError {
                    code: None,
                    message: format!(
                        "UpdateService on {service} answered without a PRIMARY deployment"
                    ),
                });
            }
            Err(e) => {
                let err = EcsError::from_sdk(&format!("UpdateService {service}"), &e);
                // Client errors (bad parameter, unknown service, CODE_DEPLOY) will not heal.
                let transient = err.is_throttling()
                    || e.as_service_error().is_none()
                    || e.raw_response()
                        .map(|r| r.status().is_server_error())
                        .unwrap_or(false);
                if !transient {
                    return Err(err);
                }
                last = Some(err);
            }
        }
    }
    if let Some(id) = adopt_new_primary(ecs, cluster, service, previous_primary).await {
        return Ok(id);
    }
    Err(last.unwrap_or(EcsError {
        code: None,
        message: format!("UpdateService {service} failed"),
    }))
}

async fn adopt_new_primary(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    previous_primary: Option<&str>,
) -> Option<String> {
    let previous = previous_primary?;
    let services = describe_services(ecs, cluster, &[service.to_string()])
        .await
        .ok()?;
    let primary = services
        .first()?
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))?
        .id()?
        .to_string();
    (primary != previous).then_some(primary)
}

/// Every task of a service that ECS still means to run (desiredStatus RUNNING), described.
pub async fn running_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Vec<TaskObs>, EcsError> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let resp = ecs
            .list_tasks()
            .cluster(cluster)
            .service_name(service)
            .desired_status(DesiredStatus::Running)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| EcsError::from_sdk("ListTasks", &e))?;
        arns.extend(resp.task_arns().iter().cloned());
        token = resp
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    describe_tasks(ecs, cluster, &arns).await
}

/// The stoppedReasons of the stopped tasks a deployment started.
pub async fn stopped_reasons(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    deployment_id: &str,
) -> Result<Vec<String>, EcsError> {
    let resp = ecs
        .list_tasks()
        .cluster(cluster)
        .started_by(deployment_id)
        .desired_status(DesiredStatus::Stopped)
        .max_results(100)
        .send()
        .await
        .map_err(|e| EcsError::from_sdk("ListTasks", &e))?;
    let arns = resp.task_arns().to_vec();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let resp = ecs
        .describe_tasks()
        .cluster(cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .map_err(|e| EcsError::from_sdk("DescribeTasks", &e))?;
    Ok(resp
        .tasks()
        .iter()
        .filter_map(|t| t.stopped_reason().map(str::to_string))
        .collect())
}

/// Describes tasks, a hundred per call, all batches concurrently.
pub async fn describe_tasks(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<TaskObs>, EcsError> {
    let calls = arns.chunks(100).map(|chunk| {
        ecs.describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
    });
    let mut out = Vec::with_capacity(arns.len());
    for result in futures::future::join_all(calls).await {
        let resp = result.map_err(|e| EcsError::from_sdk("DescribeTasks", &e))?;
        out.extend(resp.tasks().iter().map(|t| TaskObs {
            arn: t.task_arn().unwrap_or_default().to_string(),
            started_by: t.started_by().unwrap_or_default().to_string(),
            last_status: t.last_status().unwrap_or_default().to_string(),
            desired_status: t.desired_status().unwrap_or_default().to_string(),
            created_at: secs(t.created_at()),
            started_at: t.started_at().map(|d| d.as_secs_f64()),
            task_definition_arn: t.task_definition_arn().unwrap_or_default().to_string(),
        }));
    }
    Ok(out)
}
