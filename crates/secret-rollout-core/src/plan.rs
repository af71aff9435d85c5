//! The plan: which secrets, their current versions, and what happens to every consumer.
//! Reading only: building a plan never writes to AWS.

use std::collections::HashMap;

use serde::Serialize;

use crate::aws::model::ServiceObs;
use crate::clients::Clients;
use crate::config::Target;
use crate::consumers::{self, ServiceInfo, TargetSecret, TaskDef};
use crate::discovery;
use crate::error::{Error, Result};
use crate::rollout::ServiceRef;
use crate::rotation::decide::Activity;
use crate::secret::{self, SecretInfo};

/// One target secret as planned.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedSecret {
    /// What DescribeSecret said.
    pub info: SecretInfo,
    /// Creation date of the AWSCURRENT version (epoch seconds).
    pub current_created: Option<f64>,
    /// A Parameter Store parameter: what its overwrite sends again (type, key, tier).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<crate::parameter::WriteSpec>,
}

impl RotationPlan {
    /// Why `replace` would stop before any write for its consumers: one it cannot
    /// redeploy ([`consumers::Plan::refusal`]), or readers none of which would be
    /// redeployed ([`consumers::Plan::stranded_refusal`]).
    pub fn refusal(&self) -> Option<Error> {
        self.consumers
            .refusal()
            .or_else(|| self.consumers.stranded_refusal())
    }
}

impl PlannedSecret {
    /// The version that will be restored on failure.
    pub fn previous_version(&self) -> &str {
        self.info.current.as_deref().unwrap_or_default()
    }
}

/// Everything a rotation will touch, before it touches anything.
#[derive(Debug, Clone)]
pub struct RotationPlan {
    /// Where.
    pub target: Target,
    /// The secrets, in the order given.
    pub secrets: Vec<PlannedSecret>,
    /// Who reads them and what happens to each.
    pub consumers: consumers::Plan,
    /// Services to redeploy, each once, with their PRIMARY deployment id now.
    pub redeploy: Vec<(ServiceRef, Option<String>)>,
    /// Consumers to redeploy that are in the middle of a deployment the tool did not
    /// start (filled by `plan` and `replace --dry-run`, which warn: `replace` refuses).
    pub busy: Vec<crate::rotation::decide::Busy>,
    /// What ECS said of the services to redeploy when the plan was made (their
    /// deployments; for staged strategies their service deployments under way): read once
    /// with the plan, so the check before the write asks ECS nothing more.
    pub activity: Vec<Activity>,
    /// Per container of the services to redeploy: whether a redeploy would also ship a
    /// new image (a tag moved since their last deployment; see [`crate::images`]).
    pub images: crate::images::ImageChecks,
    /// Per secret, its lock and any unfinished rotation of it (filled by `plan` and
    /// `replace --dry-run`, which say so: `replace` refuses; empty otherwise).
    pub held: Vec<crate::rotation::held::Held>,
}

/// The PRIMARY deployment id of a described service.
pub fn primary_of(s: &ServiceObs) -> Option<String> {
    s.primary()
        .map(|d| d.id.clone())
        .filter(|id| !id.is_empty())
}

/// What a plan lets through that it refuses otherwise (`--force-with-rotation`,
/// `--allow-plaintext`). A bare `bool` is `allow_rotation` alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Guards {
    /// Write a secret whose rotation is enabled.
    pub allow_rotation: bool,
    /// Write a `String` (unencrypted) parameter.
    pub allow_plaintext: bool,
}

impl From<bool> for Guards {
    fn from(allow_rotation: bool) -> Guards {
        Guards {
            allow_rotation,
            allow_plaintext: false,
        }
    }
}

/// Reads the secrets and the environment and decides who will be redeployed. A consumer
/// that cannot be redeployed is in the plan; callers refuse with [`RotationPlan::refusal`].
/// `only` narrows consumers (`--services`); the environment's `services` list narrows
/// which services are redeployed, and the readers outside it are in the plan
/// (`consumers.outside`), named, never hidden.
pub async fn plan(
    clients: &Clients,
    target: &Target,
    secret_ids: &[String],
    only: Option<&[String]>,
    guards: impl Into<Guards>,
) -> Result<RotationPlan> {
    let guards = guards.into();
    let allow_rotation = guards.allow_rotation;
    let mut secrets = Vec::with_capacity(secret_ids.len());
    for id in secret_ids {
        if crate::store::is_parameter(id) {
            let p = crate::store::describe_parameter(clients, id).await?;
            let info = crate::store::info_of(&p);
            crate::parameter::guard_type(&info.name, &p.spec, guards.allow_plaintext)?;
            if !secrets
                .iter()
                .any(|s: &PlannedSecret| s.info.arn == info.arn)
            {
                secrets.push(PlannedSecret {
                    current_created: info.last_changed,
                    info,
                    parameter: Some(p.spec),
                });
            }
            continue;
        }
        let info = secret::describe(&clients.sm, id).await?;
        secret::guard(&info, allow_rotation)?;
        if secrets
            .iter()
            .any(|s: &PlannedSecret| s.info.arn == info.arn)
        {
            continue;
        }
        let current_created = match &info.current {
            Some(v) => secret::versions(&clients.sm, &info.arn)
                .await?
                .into_iter()
                .find(|x| &x.id == v)
                .and_then(|x| x.created),
            None => None,
        };
        secrets.push(PlannedSecret {
            info,
            current_created,
            parameter: None,
        });
    }
    let (consumers, redeploy, activity, to_check) = consumers_and_activity(
        clients,
        target,
        &secrets.iter().map(|s| s.info.clone()).collect::<Vec<_>>(),
        only,
    )
    .await?;
    let images = crate::images::check(clients, &to_check).await?;
    Ok(RotationPlan {
        target: target.clone(),
        secrets,
        consumers,
        redeploy,
        busy: Vec::new(),
        activity,
        images,
        held: Vec::new(),
    })
}

/// Discovers and classifies the consumers of `secrets` in the target's clusters.
pub async fn consumers_of(
    clients: &Clients,
    target: &Target,
    secrets: &[SecretInfo],
    only: Option<&[String]>,
) -> Result<(consumers::Plan, Vec<(ServiceRef, Option<String>)>)> {
    let (plan, redeploy, ..) = consumers_and_activity(clients, target, secrets, only).await?;
    Ok((plan, redeploy))
}

/// [`consumers_of`], with what ECS said of the services to redeploy (see
/// [`RotationPlan::activity`]).
async fn consumers_and_activity(
    clients: &Clients,
    target: &Target,
    secrets: &[SecretInfo],
    only: Option<&[String]>,
) -> Result<(
    consumers::Plan,
    Vec<(ServiceRef, Option<String>)>,
    Vec<Activity>,
    Vec<crate::images::ToCheck>,
)> {
    let inv = discovery::inventory(&clients.ecs, &target.clusters, None, true).await?;
    // The environment's `services` list narrows what is redeployed, not what is shown: a
    // reader outside it keeps the old value, and the plan says so. `only` (`--services`)
    // must name consumers in the list, and an unknown name there is an error.
    let services: Vec<ServiceInfo> = inv.services.iter().map(|s| s.info.clone()).collect();
    let task_defs: &HashMap<String, TaskDef> = &inv.task_defs;
    let one_off: Vec<TaskDef> = inv
        .one_off
        .iter()
        .filter_map(|arn| task_defs.get(arn).cloned())
        .collect();
    let targets: Vec<TargetSecret> = secrets
        .iter()
        .map(|s| TargetSecret {
            arn: s.arn.clone(),
            name: s.name.clone(),
        })
        .collect();
    let plan = consumers::classify(
        &targets,
        &services,
        task_defs,
        &one_off,
        only,
        target.services.as_deref(),
    )?;
    let redeploy: Vec<(ServiceRef, Option<String>)> = plan
        .redeploy
        .iter()
        .map(|c| {
            let primary = inv
                .services
                .iter()
                .find(|s| s.info.cluster == c.service.cluster && s.info.name == c.service.name)
                .and_then(primary_of);
            (
                ServiceRef {
                    cluster: c.service.cluster.clone(),
                    service: c.service.name.clone(),
                },
                primary,
            )
        })
        .collect();
    let mut activity = Vec::with_capacity(plan.redeploy.len());
    for c in &plan.redeploy {
        let Some(obs) = inv
            .services
            .iter()
            .find(|s| s.info.cluster == c.service.cluster && s.info.name == c.service.name)
        else {
            continue;
        };
        let service_deployments = if obs.info.staged() {
            crate::aws::ecs::service_deployments_under_way(
                &clients.ecs,
                &obs.info.cluster,
                &obs.info.name,
            )
            .await
            .map_err(|e| discovery::ecs_error(&obs.info.cluster, e))?
        } else {
            Vec::new()
        };
        activity.push(Activity {
            service: ServiceRef {
                cluster: obs.info.cluster.clone(),
                service: obs.info.name.clone(),
            },
            staged: obs.info.staged(),
            deployments: obs.deployments.clone(),
            service_deployments,
        });
    }
    let to_check = to_check(&inv, redeploy.iter().map(|(r, _)| r));
    Ok((plan, redeploy, activity, to_check))
}

/// The services' containers and images, from their task definitions in `inv`, for
/// [`crate::images::check`].
pub fn to_check<'a>(
    inv: &discovery::Inventory,
    services: impl Iterator<Item = &'a ServiceRef>,
) -> Vec<crate::images::ToCheck> {
    services
        .filter_map(|r| {
            let obs = inv
                .services
                .iter()
                .find(|s| s.info.cluster == r.cluster && s.info.name == r.service)?;
            let td = inv.task_defs.get(&obs.info.task_definition_arn)?;
            Some(crate::images::ToCheck {
                service: r.clone(),
                containers: td.images.clone(),
                tasks: obs
                    .info
                    .desired
                    .max(obs.info.running + obs.info.pending)
                    .max(0) as usize,
                staged: obs.info.staged(),
            })
        })
        .collect()
}

/// Finds services by name in the target's clusters, each with its PRIMARY deployment id
/// now and its description. Every name must be found.
pub async fn find_services(
    clients: &Clients,
    target: &Target,
    names: &[String],
) -> Result<Vec<(ServiceRef, Option<String>, ServiceInfo)>> {
    let inv = discovery::inventory(&clients.ecs, &target.clusters, Some(names), false).await?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for name in names {
        match inv.services.iter().find(|svc| svc.info.name == *name) {
            Some(svc) => out.push((
                ServiceRef {
                    cluster: svc.info.cluster.clone(),
                    service: name.clone(),
                },
                primary_of(svc),
                svc.info.clone(),
            )),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(Error::bad_input(format!(
            "no service {} in cluster(s) {}",
            missing.join(", "),
            target.clusters.join(", ")
        ))
        .hint("check the names with aws ecs list-services --cluster CLUSTER"));
    }
    Ok(out)
}
