//! ECS calls, batched as the API allows (ListServices and ListTasks page a hundred,
//! DescribeServices takes ten services, DescribeTasks a hundred tasks, task definitions
//! are described at most [`DESCRIBE_CONCURRENCY`] at a time), answering in observations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_ecs::types::{DesiredStatus, TaskDefinitionStatus};
use aws_smithy_types::retry::RetryConfig;
use futures::StreamExt;

use super::convert;
use super::errors::{AwsError, Fault};
use super::model::{
    ServiceDeploymentObs, ServiceDeploymentRecord, ServiceObs, TaskDef, TaskObs,
    SERVICE_DEPLOYMENT_UNDER_WAY,
};

/// DescribeTaskDefinition calls in flight at once.
pub const DESCRIBE_CONCURRENCY: usize = 16;

/// The ECS client.
pub type Client = aws_sdk_ecs::Client;

/// Lists every service of a cluster, by name.
pub async fn list_services(ecs: &Client, cluster: &str) -> Result<Vec<String>, AwsError> {
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_services()
            .cluster(cluster)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("ListServices", "ListServices", e, |e| {
                    e.is_cluster_not_found_exception()
                        .then_some(Fault::NotFound)
                })
            })?;
        // DescribeServices takes names or ARNs; the name is the last path segment.
        names.extend(
            page.service_arns()
                .iter()
                .map(|a| a.rsplit('/').next().unwrap_or(a).to_string()),
        );
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(names)
}

/// Describes services of one cluster, ten per call, all batches concurrently. Services
/// ECS reports MISSING are absent from the result.
pub async fn describe_services(
    ecs: &Client,
    cluster: &str,
    names: &[String],
) -> Result<Vec<ServiceObs>, AwsError> {
    let calls = names.chunks(10).map(|chunk| {
        ecs.describe_services()
            .cluster(cluster)
            .set_services(Some(chunk.to_vec()))
            .send()
    });
    let mut out = Vec::with_capacity(names.len());
    for result in futures::future::join_all(calls).await {
        let resp = result.map_err(|e| {
            AwsError::from_sdk("DescribeServices", "DescribeServices", e, |e| {
                e.is_cluster_not_found_exception()
                    .then_some(Fault::NotFound)
            })
        })?;
        out.extend(resp.services().iter().map(|s| convert::service(cluster, s)));
    }
    Ok(out)
}

/// The service deployments of one service that are still under way (pending, in
/// progress, being stopped or rolled back): what a blue/green, linear or canary deployment
/// shows while it shifts traffic or bakes. One page of twenty: one under way is enough to
/// know the service is busy.
pub async fn service_deployments_under_way(
    ecs: &Client,
    cluster: &str,
    service: &str,
) -> Result<Vec<ServiceDeploymentObs>, AwsError> {
    use aws_sdk_ecs::types::ServiceDeploymentStatus;
    let statuses = SERVICE_DEPLOYMENT_UNDER_WAY
        .iter()
        .map(|s| ServiceDeploymentStatus::from(*s))
        .collect();
    let resp = ecs
        .list_service_deployments()
        .cluster(cluster)
        .service(service)
        .set_status(Some(statuses))
        .max_results(20)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("ListServiceDeployments", "ListServiceDeployments", e, |e| {
                (e.is_cluster_not_found_exception() || e.is_service_not_found_exception())
                    .then_some(Fault::NotFound)
            })
        })?;
    Ok(resp
        .service_deployments()
        .iter()
        .map(|d| ServiceDeploymentObs {
            arn: d.service_deployment_arn().unwrap_or_default().to_string(),
            status: d
                .status()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            started_at: d
                .started_at()
                .or(d.created_at())
                .map(|t| t.as_secs_f64())
                .unwrap_or(0.0),
        })
        .collect())
}

/// Describes service deployments by ARN, twenty per call (the API's limit), all batches
/// concurrently. ARNs ECS answers `MISSING` (history is kept 90 days) are absent.
pub async fn describe_service_deployments(
    ecs: &Client,
    arns: &[String],
) -> Result<Vec<ServiceDeploymentRecord>, AwsError> {
    let calls = arns.chunks(20).map(|chunk| {
        ecs.describe_service_deployments()
            .set_service_deployment_arns(Some(chunk.to_vec()))
            .send()
    });
    let mut out = Vec::with_capacity(arns.len());
    for result in futures::future::join_all(calls).await {
        let resp = result.map_err(|e| {
            AwsError::from_sdk(
                "DescribeServiceDeployments",
                "DescribeServiceDeployments",
                e,
                |_| None,
            )
        })?;
        out.extend(
            resp.service_deployments()
                .iter()
                .map(convert::service_deployment),
        );
    }
    Ok(out)
}

/// Stops a service deployment and rolls it back to the service revision before it
/// (`StopServiceDeployment` `ROLLBACK`: it works even when the service never configured
/// rollback). `ABORT` is not used: what it does is not documented.
pub async fn stop_service_deployment(ecs: &Client, arn: &str) -> Result<(), AwsError> {
    use aws_sdk_ecs::types::StopServiceDeploymentStopType;
    ecs.stop_service_deployment()
        .service_deployment_arn(arn)
        .stop_type(StopServiceDeploymentStopType::Rollback)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            AwsError::from_sdk(
                "StopServiceDeployment",
                &format!("StopServiceDeployment {arn}"),
                e,
                |_| None,
            )
        })
}

/// Answers a `PAUSE` lifecycle hook with `CONTINUE` (`ContinueServiceDeployment`).
pub async fn continue_service_deployment(
    ecs: &Client,
    arn: &str,
    hook_id: &str,
) -> Result<(), AwsError> {
    use aws_sdk_ecs::types::DeploymentLifecycleHookAction;
    ecs.continue_service_deployment()
        .service_deployment_arn(arn)
        .hook_id(hook_id)
        .action(DeploymentLifecycleHookAction::Continue)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            AwsError::from_sdk(
                "ContinueServiceDeployment",
                &format!("ContinueServiceDeployment {arn} hook {hook_id}"),
                e,
                |_| None,
            )
        })
}

/// Describes task definitions by ARN, once each (those already in `into` are not asked
/// again), at most [`DESCRIBE_CONCURRENCY`] at a time: an account with a thousand
/// families must not meet ECS's rate limit all at once.
pub async fn describe_task_definitions(
    ecs: &Client,
    arns: BTreeSet<String>,
    into: &mut HashMap<String, TaskDef>,
) -> Result<(), AwsError> {
    let calls = arns
        .into_iter()
        .filter(|a| !into.contains_key(a))
        .map(|arn| async move {
            let out = ecs
                .describe_task_definition()
                .task_definition(&arn)
                .send()
                .await;
            (arn, out)
        });
    let answers: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(DESCRIBE_CONCURRENCY)
        .collect()
        .await;
    for (arn, out) in answers {
        let out = out.map_err(|e| {
            AwsError::from_sdk(
                "DescribeTaskDefinition",
                &format!("DescribeTaskDefinition {arn}"),
                e,
                |_| None,
            )
        })?;
        if let Some(td) = out.task_definition() {
            into.insert(arn, TaskDef::from(td));
        }
    }
    Ok(())
}

/// The latest ACTIVE revision of each task family: family -> ARN.
pub async fn latest_revisions(ecs: &Client) -> Result<BTreeMap<String, String>, AwsError> {
    let mut latest: BTreeMap<String, (i64, String)> = BTreeMap::new();
    let mut token = None;
    loop {
        let page = ecs
            .list_task_definitions()
            .status(TaskDefinitionStatus::Active)
            .max_results(100)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("ListTaskDefinitions", "ListTaskDefinitions", e, |_| None)
            })?;
        for arn in page.task_definition_arns() {
            if let Some((family, rev)) = family_revision(arn) {
                let e = latest
                    .entry(family.to_string())
                    .or_insert((rev, arn.clone()));
                if rev > e.0 {
                    *e = (rev, arn.clone());
                }
            }
        }
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(latest.into_iter().map(|(f, (_, arn))| (f, arn)).collect())
}

/// `arn:...:task-definition/FAMILY:REV` -> (FAMILY, REV).
pub fn family_revision(arn: &str) -> Option<(&str, i64)> {
    let tail = arn.rsplit_once("task-definition/")?.1;
    let (family, rev) = tail.rsplit_once(':')?;
    Some((family, rev.parse().ok()?))
}

/// Forces a new deployment of one service and returns the new PRIMARY deployment's id.
///
/// Exactly one deployment per call: the SDK's automatic retry is off for this call,
/// because a request whose answer was lost may still have started a deployment. On a
/// failure we look at the service: if its PRIMARY is no longer `previous_primary`, our
/// call went through and we adopt that deployment; otherwise we retry ourselves.
pub async fn force_new_deployment(
    ecs: &Client,
    cluster: &str,
    service: &str,
    previous_primary: Option<&str>,
    attempts: u32,
) -> Result<String, AwsError> {
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
                    .map(|s| convert::service(cluster, s))
                    .and_then(|s| s.primary().map(|d| d.id.clone()))
                    .filter(|id| !id.is_empty());
                return primary.ok_or_else(|| {
                    AwsError::answer(
                        "UpdateService",
                        format!("UpdateService on {service} answered without a PRIMARY deployment"),
                    )
                });
            }
            Err(e) => {
                let err = AwsError::from_sdk(
                    "UpdateService",
                    &format!("UpdateService {service}"),
                    e,
                    |e| {
                        (e.is_cluster_not_found_exception() || e.is_service_not_found_exception())
                            .then_some(Fault::NotFound)
                    },
                );
                // Client errors (bad parameter, unknown service, CODE_DEPLOY) will not heal.
                if !err.fault.may_heal() {
                    return Err(err);
                }
                last = Some(err);
            }
        }
    }
    if let Some(id) = adopt_new_primary(ecs, cluster, service, previous_primary).await {
        return Ok(id);
    }
    Err(last.unwrap_or_else(|| {
        AwsError::answer("UpdateService", format!("UpdateService {service} failed"))
    }))
}

async fn adopt_new_primary(
    ecs: &Client,
    cluster: &str,
    service: &str,
    previous_primary: Option<&str>,
) -> Option<String> {
    let previous = previous_primary?;
    let services = describe_services(ecs, cluster, &[service.to_string()])
        .await
        .ok()?;
    let primary = services.first()?.primary()?.id.clone();
    (!primary.is_empty() && primary != previous).then_some(primary)
}

/// Every task of a service that ECS still means to run (desiredStatus RUNNING), described.
pub async fn running_tasks(
    ecs: &Client,
    cluster: &str,
    service: &str,
) -> Result<Vec<TaskObs>, AwsError> {
    let mut arns = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = running_task_page(ecs, cluster, Some(service), token).await?;
        arns.extend(page);
        token = next;
        if token.is_none() {
            break;
        }
    }
    describe_tasks(ecs, cluster, &arns).await
}

/// One `ListTasks` page (a hundred ARNs at most) of the tasks ECS means to run
/// (desiredStatus RUNNING) in `cluster`, of `service` when given, and the next page's token.
pub async fn running_task_page(
    ecs: &Client,
    cluster: &str,
    service: Option<&str>,
    token: Option<String>,
) -> Result<(Vec<String>, Option<String>), AwsError> {
    let resp = ecs
        .list_tasks()
        .cluster(cluster)
        .set_service_name(service.map(str::to_string))
        .desired_status(DesiredStatus::Running)
        .max_results(100)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("ListTasks", "ListTasks", e, |e| {
                (e.is_cluster_not_found_exception() || e.is_service_not_found_exception())
                    .then_some(Fault::NotFound)
            })
        })?;
    let next = resp
        .next_token()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok((resp.task_arns().to_vec(), next))
}

/// The stoppedReasons of the stopped tasks a deployment started.
pub async fn stopped_reasons(
    ecs: &Client,
    cluster: &str,
    deployment_id: &str,
) -> Result<Vec<String>, AwsError> {
    let resp = ecs
        .list_tasks()
        .cluster(cluster)
        .started_by(deployment_id)
        .desired_status(DesiredStatus::Stopped)
        .max_results(100)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("ListTasks", "ListTasks", e, |_| None))?;
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
        .map_err(|e| AwsError::from_sdk("DescribeTasks", "DescribeTasks", e, |_| None))?;
    Ok(resp
        .tasks()
        .iter()
        .filter_map(|t| t.stopped_reason().map(str::to_string))
        .collect())
}

/// Describes tasks, a hundred per call, all batches concurrently.
pub async fn describe_tasks(
    ecs: &Client,
    cluster: &str,
    arns: &[String],
) -> Result<Vec<TaskObs>, AwsError> {
    let calls = arns.chunks(100).map(|chunk| {
        ecs.describe_tasks()
            .cluster(cluster)
            .set_tasks(Some(chunk.to_vec()))
            .send()
    });
    let mut out = Vec::with_capacity(arns.len());
    for result in futures::future::join_all(calls).await {
        let resp = result
            .map_err(|e| AwsError::from_sdk("DescribeTasks", "DescribeTasks", e, |_| None))?;
        out.extend(resp.tasks().iter().map(convert::task));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_and_revision_from_arn() {
        assert_eq!(
            family_revision("arn:aws:ecs:eu-west-1:123456789012:task-definition/production-api:42"),
            Some(("production-api", 42))
        );
        assert_eq!(family_revision("production-api"), None);
        assert_eq!(
            family_revision("arn:aws:ecs:eu-west-1:1:task-definition/x:notanumber"),
            None
        );
    }
}
