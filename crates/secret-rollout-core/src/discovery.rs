//! Discovery: what runs in the environment's clusters, read with as few calls as the API
//! allows (ListServices by 100, DescribeServices by 10, DescribeTaskDefinition once per
//! distinct task definition), as observations. Deciding who reads a secret is pure, in
//! `consumers`.

use std::collections::{BTreeSet, HashMap};

use crate::aws::ecs::{self, Client};
use crate::aws::errors::{AwsError, Fault};
use crate::aws::model::{ServiceObs, TaskDef};
use crate::error::{Error, Result};

pub use crate::aws::ecs::{family_revision, DESCRIBE_CONCURRENCY};

/// Everything discovery saw.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Services (their `info.cluster` is the cluster as configured).
    pub services: Vec<ServiceObs>,
    /// Task definitions by ARN: those of the services, and the latest revision of each
    /// family no service runs.
    pub task_defs: HashMap<String, TaskDef>,
    /// ARNs (in `task_defs`) of the latest revisions of families that no service runs.
    pub one_off: Vec<String>,
}

/// What an ECS failure in `cluster` means for the user.
pub(crate) fn ecs_error(cluster: &str, e: AwsError) -> Error {
    match e.fault {
        Fault::NotFound => {
            let err = Error::bad_input(format!("cluster {cluster} not found"))
                .hint("check the cluster name and region (aws ecs list-clusters) or the environment's clusters in secret-rollout.toml");
            e.attach(err)
        }
        Fault::AccessDenied => {
            let err = Error::credentials(format!("not allowed to {} in cluster {cluster}", e.operation))
                .hint("use a role allowed ecs:ListServices, DescribeServices, DescribeTaskDefinition, UpdateService, ListTasks, DescribeTasks and ListServiceDeployments");
            e.attach(err)
        }
        _ => {
            let message = format!("{} failed in cluster {cluster}: {}", e.operation, e.detail);
            e.into_error(
                message,
                "check the network and the endpoint, then rerun; nothing was changed",
            )
        }
    }
}

/// Lists every service name of a cluster.
pub async fn list_services(ecs: &Client, cluster: &str) -> Result<Vec<String>> {
    ecs::list_services(ecs, cluster)
        .await
        .map_err(|e| ecs_error(cluster, e))
}

/// Reads the services of `clusters` (all of them, or only `only` when given) and their task
/// definitions; with `one_off_families`, also the latest revision of every family that no
/// service runs.
pub async fn inventory(
    ecs: &Client,
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
        let services = ecs::describe_services(ecs, c, &names)
            .await
            .map_err(|e| ecs_error(c, e))?;
        Ok::<_, Error>(services)
    }))
    .await;
    for result in listed {
        inv.services.extend(result?);
    }
    let wanted: BTreeSet<String> = inv
        .services
        .iter()
        .map(|s| s.info.task_definition_arn.clone())
        .filter(|arn| !arn.is_empty())
        .collect();
    describe_task_definitions(ecs, wanted, &mut inv.task_defs).await?;
    if one_off_families {
        let used: BTreeSet<String> = inv
            .task_defs
            .values()
            .map(|t| t.family.clone())
            .filter(|f| !f.is_empty())
            .collect();
        let latest = ecs::latest_revisions(ecs).await.map_err(|e| {
            let message = format!("ListTaskDefinitions failed: {}", e.detail);
            e.into_error(
                message,
                "check the network and permissions (ecs:ListTaskDefinitions), then rerun",
            )
        })?;
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
/// again, nor those in the state directory's cache: a revision never changes), at most
/// [`DESCRIBE_CONCURRENCY`] at a time, and caches what was described.
pub async fn describe_task_definitions(
    ecs: &Client,
    arns: BTreeSet<String>,
    into: &mut HashMap<String, TaskDef>,
) -> Result<()> {
    use crate::state::task_defs::{fill_from, process_cache};
    // Without the cache (off, or no state directory) every revision is described.
    let mut cache = process_cache();
    let arns = match &cache {
        Some(c) => fill_from(c, arns, into),
        None => arns,
    };
    let described = arns.clone();
    let result = describe_uncached(ecs, arns, into).await;
    if let Some(c) = cache.as_mut() {
        c.store(described.iter().filter_map(|a| into.get(a)));
    }
    result
}

async fn describe_uncached(
    ecs: &Client,
    arns: BTreeSet<String>,
    into: &mut HashMap<String, TaskDef>,
) -> Result<()> {
    ecs::describe_task_definitions(ecs, arns, into)
        .await
        .map_err(|e| {
            let message = format!("{} failed: {}", e.what, e.detail);
            e.into_error(
                message,
                "check the network and permissions (ecs:DescribeTaskDefinition), then rerun",
            )
        })
}
