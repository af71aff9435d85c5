//! Discovery: what runs in the environment's clusters, read with as few calls as the API
//! allows (ListServices by 100, DescribeServices by 10, DescribeTaskDefinition once per
//! distinct task definition). Deciding who reads a secret is pure, in `consumers`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use futures::StreamExt;

use aws_sdk_ecs::types::{Service, TaskDefinition, TaskDefinitionStatus};

use crate::clients::{describe_sdk_error, error_code, refused_credentials};
use crate::error::{Error, Result};
use crate::rollout::ecs::describe_services;

/// DescribeTaskDefinition calls in flight at once.
pub const DESCRIBE_CONCURRENCY: usize = 16;

/// Everything discovery saw.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Services with their cluster.
    pub services: Vec<(String, Service)>,
    /// Task definitions by ARN: those of the services, and the latest revision of each
    /// family no service runs.
    pub task_defs: HashMap<String, TaskDefinition>,
    /// ARNs (in `task_defs`) of the latest revisions of families that no service runs.
    pub one_off: Vec<String>,
}

fn ecs_error<E, R>(
    what: &str,
    cluster: &str,
    e: &aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if let Some(refused) = refused_credentials(e) {
        return refused;
    }
    match error_code(e).as_deref() {
        Some("ClusterNotFoundException") => Error::bad_input(format!("cluster {cluster} not found"))
            .hint("check the cluster name and region (aws ecs list-clusters) or the environment's clusters in secret-rollout.toml"),
        Some("AccessDeniedException") => Error::credentials(format!("not allowed to {what} in cluster {cluster}"))
            .hint("use a role allowed ecs:ListServices, DescribeServices, DescribeTaskDefinition, UpdateService, ListTasks and DescribeTasks"),
        _ => Error::aws(format!("{what} failed in cluster {cluster}: {}", describe_sdk_error(e)))
            .hint("check the network and the endpoint, then rerun; nothing was changed"),
    }
}

/// Lists every service ARN of a cluster.
pub async fn list_services(ecs: &aws_sdk_ecs::Client, cluster: &str) -> Result<Vec<String>> {
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
            .map_err(|e| ecs_error("ListServices", cluster, &e))?;
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

/// Reads the services of `clusters` (all of them, or only `only` when given) and their task
/// definitions; with `one_off_families`, also the latest revision of every family that no
/// service runs.
pub async fn inventory(
    ecs: &aws_sdk_ecs::Client,
    clusters: &[String],
    only: Option<&[String]>,
    one_off_families: bool,
) -> Result<Inventory> {
    let mut inv = Inventory::default();
    let listed = futures::future::join_all(clusters.iter().map(|c| async move {
        let names = match only {
            Some(names) => names.to_vec(),
            None => list_services(ecs, c).await?,
        };
        let services = describe_services(ecs, c, &names).await.map_err(|e| {
            if e.code.as_deref() == Some("ClusterNotFoundException") {
                Error::bad_input(format!("cluster {c} not found"))
                    .hint("check the cluster name and region (aws ecs list-clusters)")
            } else {
                Error::aws(format!("{e} (cluster {c})"))
                    .hint("check the network and the endpoint, then rerun")
            }
        })?;
        Ok::<_, Error>((c.clone(), services))
    }))
    .await;
    for result in listed {
        let (cluster, services) = result?;
        inv.services
            .extend(services.into_iter().map(|s| (cluster.clone(), s)));
    }
    let wanted: BTreeSet<String> = inv
        .services
        .iter()
        .filter_map(|(_, s)| s.task_definition().map(str::to_string))
        .collect();
    describe_task_definitions(ecs, wanted, &mut inv.task_defs).await?;
    if one_off_families {
        let used: BTreeSet<String> = inv
            .task_defs
            .values()
            .filter_map(|t| t.family().map(str::to_string))
            .collect();
        let latest = latest_revisions(ecs).await?;
        let arns: BTreeSet<String> = latest
            .into_iter()
            .filter(|(family, _)| !used.contains(family))
            .map(|(_, arn)| arn)
            .collect();
        inv.one_off = arns.iter().cloned().collect();
        describe_task_definitions(ecs, arns, &mut inv.task_defs).await?;
    }
    Ok(inv)
}

/// Describes task definitions by ARN, once each (those already in `into` are not asked
/// again), at most [`DESCRIBE_CONCURRENCY`] at a time: an account with a thousand
/// families must not meet ECS's rate limit all at once.
pub async fn describe_task_definitions(
    ecs: &aws_sdk_ecs::Client,
    arns: BTreeSet<String>,
    into: &mut HashMap<String, TaskDefinition>,
) -> Result<()> {
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
            Error::aws(format!(
                "DescribeTaskDefinition {arn} failed: {}",
                describe_sdk_error(&e)
            ))
            .hint("check the network and permissions (ecs:DescribeTaskDefinition), then rerun")
        })?;
        if let Some(td) = out.task_definition() {
            into.insert(arn, td.clone());
        }
    }
    Ok(())
}

/// The latest ACTIVE revision of each task family: family -> ARN.
async fn latest_revisions(ecs: &aws_sdk_ecs::Client) -> Result<BTreeMap<String, String>> {
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
                Error::aws(format!(
                    "ListTaskDefinitions failed: {}",
                    describe_sdk_error(&e)
                ))
                .hint("check the network and permissions (ecs:ListTaskDefinitions), then rerun")
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
