//! `status`: where an environment stands. For each service: its deployments, its running
//! tasks, and for each secret it reads, which running tasks still hold an older value.
//!
//! A task resolves its secrets when it is placed (`createdAt`), so a running task created
//! before the current version existed holds an older value: it is **stale**. The moment the
//! current value took effect is the current version's creation date, or later when
//! AWSCURRENT was moved back to it (the secret's last change when its AWSPREVIOUS version
//! is the newer one, or a restore recorded in the journal): see [`effective_since`]. Only references that follow AWSCURRENT count; pinned references
//! (a version id, or a stage such as AWSPREVIOUS) are reported apart, never as stale.
//!
//! A blue/green, linear or canary service that is deploying is also described by its
//! current service deployment (one DescribeServiceDeployments for all of them, none for
//! rolling services): its lifecycle stage and traffic weights, its bake time, and which
//! running tasks get no production traffic. `replace --until traffic` ends while the bake
//! goes on; the old ("blue") deployment's tasks then run beside the new ones with no
//! production traffic until the bake ends. They hold the previous value: they are shown,
//! counted apart as baking (never as stale, nor hidden), and go away at the bake's end.
//!
//! The decision ([`assess`]) is pure; [`gather`] does the reading.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use serde::Serialize;

use crate::aws::model::{DeploymentObs, ServiceDeploymentRecord, TaskDef, TaskObs};
use crate::clients::Clients;
use crate::config::Target;
use crate::discovery;
use crate::error::{Error, Kind, Result};
use crate::journal;
use crate::reference::{parse_value_from, RefForm};

/// A secret whose readers are checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretState {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// The version holding AWSCURRENT.
    pub current: Option<String>,
    /// Tasks created at or after this moment (epoch seconds) hold the current value: it
    /// has been current since then at the latest. `None`: not known (no current version),
    /// so no task is called stale for it. RFC 3339 in JSON.
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub since: Option<f64>,
    /// The current version's CreatedDate: a task created before it holds an older value.
    /// One created between this and `since` cannot be told (the version may have been
    /// current, or another one). `None`: every task before `since` is called stale.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub created: Option<f64>,
    /// When AWSCURRENT was moved back (its AWSPREVIOUS version is newer): that newer
    /// version's CreatedDate. A task created from then until `since` is called stale: it
    /// read the newer version. Set only while nothing says the secret changed after the
    /// move back (a version other than the current one carries `AWSPENDING`): then a task
    /// created after the newer version may hold either, and cannot be told.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub moved_back_from: Option<f64>,
    /// When a rotation made the current version current (`LastRotatedDate`), when that
    /// rotation was the secret's last change and the version was created before it: the
    /// version was `AWSPENDING` until then, so a task created before holds an older value
    /// (stale), not "cannot be told". Inferred from the rotation function's steps; not
    /// confirmed on AWS that `LastRotatedDate` is the moment `AWSCURRENT` moved (if it is
    /// not, it differs from `LastChangedDate` and this stays unset).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub rotated_at: Option<f64>,
    /// The version carrying `AWSPENDING` when it is not the current one: a rotation is
    /// under way and will move `AWSCURRENT` to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// When a rotation made `current` current, if the secret says so: `LastRotatedDate` equal
/// to `LastChangedDate` (the rotation was the last change), after the version's creation
/// (it was `AWSPENDING` before), and no other version pending now.
pub fn rotated_at(
    last_rotated: Option<f64>,
    last_changed: Option<f64>,
    created: Option<f64>,
    pending_other: bool,
) -> Option<f64> {
    match (last_rotated, last_changed, created) {
        (Some(r), Some(l), Some(c)) if !pending_other && (r - l).abs() < 0.001 && c < r => Some(r),
        _ => None,
    }
}

/// A service as described, with what `assess` needs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceState {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Desired count.
    pub desired: i32,
    /// Running count.
    pub running: i32,
    /// Pending count.
    pub pending: i32,
    /// The task definition the service runs now.
    pub task_definition_arn: String,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<DeploymentObs>,
    /// Not in the environment's `services` list: shown only when it reads a checked
    /// secret (a reader is never hidden), marked as such.
    pub outside: bool,
    /// `deploymentConfiguration.strategy` (empty: rolling, ECS's default).
    pub strategy: String,
    /// `currentServiceDeployment`, where ECS gives it.
    pub current_service_deployment: Option<String>,
    /// A blue/green, linear or canary service that is deploying: its current service
    /// deployment as read (`None` for every other service: not read).
    #[serde(skip)]
    pub service_deployment: Option<StagedObs>,
}

/// What was read of a staged service's current service deployment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StagedObs {
    /// The record, as DescribeServiceDeployments gave it.
    pub record: ServiceDeploymentRecord,
    /// When a rotation on this machine saw all production traffic on this deployment
    /// (its journal's traffic milestone, ECS's clock): see [`traffic_seen`].
    pub traffic_seen: Option<f64>,
}

/// A blue/green, linear or canary deployment under way, as its service deployment says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StagedStatus {
    /// `BLUE_GREEN`, `LINEAR` or `CANARY`.
    pub strategy: String,
    /// `serviceDeploymentArn`.
    pub service_deployment_arn: String,
    /// Its `status` (`IN_PROGRESS`, ...).
    pub status: String,
    /// Its `lifecycleStage` (`PRODUCTION_TRAFFIC_SHIFT`, `BAKE_TIME`, `CLEAN_UP`, ...).
    pub lifecycle_stage: String,
    /// The deployment (`deployments[]` PRIMARY) it deploys: the new tasks' `startedBy`.
    pub deployment_id: String,
    /// The new revision's share of production traffic, percent.
    pub production_traffic_weight: Option<f64>,
    /// The new revision's share of test traffic, percent.
    pub test_traffic_weight: Option<f64>,
    /// The deployment's `bakeTimeInMinutes`.
    pub bake_time_minutes: Option<i32>,
    /// In `BAKE_TIME`: production traffic has moved, the old deployment's tasks wait.
    pub baking: bool,
    /// When a rotation on this machine saw all production traffic on the new revision
    /// (ECS's clock; the journal's traffic milestone). ECS gives no moment the bake
    /// began: it began after the shift, which was seen then. `None`: not known here.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub traffic_shifted_at: Option<f64>,
    /// Running tasks of the old deployments while all production traffic is on the new
    /// one: they get no production traffic and stop when the bake ends (clean-up).
    pub baking_tasks: Vec<String>,
}

/// All production traffic is on the target revision of a service deployment still in
/// progress: the old deployments' tasks get none (they bake, then stop at clean-up).
pub fn production_on_new(record: &ServiceDeploymentRecord) -> bool {
    record.status == "IN_PROGRESS" && record.production_weight.is_some_and(|w| w >= 100.0)
}

/// What `status` shows of a staged deployment under way: `green`, the PRIMARY deployment's
/// id (the new revision's tasks carry it in `startedBy`; the PRIMARY entry is taken for
/// the target revision, as ECS lists the new revision first), `running` the service's
/// running tasks. With no PRIMARY no task is called baking.
pub fn staged_status(
    strategy: &str,
    obs: &StagedObs,
    green: Option<&str>,
    running: &[&TaskObs],
) -> StagedStatus {
    let r = &obs.record;
    let baking_tasks = match green.filter(|g| !g.is_empty()) {
        Some(g) if production_on_new(r) => running
            .iter()
            .filter(|t| t.started_by != g)
            .map(|t| t.id().to_string())
            .collect(),
        _ => Vec::new(),
    };
    StagedStatus {
        strategy: strategy.to_string(),
        service_deployment_arn: r.arn.clone(),
        status: r.status.clone(),
        lifecycle_stage: r.lifecycle_stage.clone(),
        deployment_id: green.unwrap_or_default().to_string(),
        production_traffic_weight: r.production_weight,
        test_traffic_weight: r.test_weight,
        bake_time_minutes: r.bake_minutes,
        baking: r.status == "IN_PROGRESS" && r.lifecycle_stage == "BAKE_TIME",
        traffic_shifted_at: obs.traffic_seen,
        baking_tasks,
    }
}

/// When a rotation recorded in `rotations` saw all production traffic on deployment
/// `deployment_id` of `cluster`/`service` (its traffic milestone, ECS's clock): the
/// rollout's or the restore's deployment, whichever it was. The latest if several say.
pub fn traffic_seen(
    rotations: &[journal::RotationSummary],
    cluster: &str,
    service: &str,
    deployment_id: &str,
) -> Option<f64> {
    rotations
        .iter()
        .flat_map(|r| {
            r.services
                .iter()
                .filter(|s| s.cluster == cluster && s.name == service)
                .flat_map(move |s| {
                    [
                        (journal::Phase::Rollout, s.rollout_deployment.as_deref()),
                        (journal::Phase::Restore, s.restore_deployment.as_deref()),
                    ]
                    .into_iter()
                    .filter(|(_, d)| *d == Some(deployment_id))
                    .filter_map(move |(phase, _)| {
                        r.times
                            .iter()
                            .filter(|(p, _)| *p == phase)
                            .flat_map(|(_, t)| t.services.iter())
                            .find(|t| t.cluster == cluster && t.service == service)
                            .and_then(|t| t.traffic)
                    })
                })
        })
        .map(|at| at.unix_timestamp_nanos() as f64 / 1e9)
        .fold(None, |m: Option<f64>, at| Some(m.map_or(at, |m| m.max(at))))
}

/// Whether deployments are under way, from `deployments[]`: more than one, or the PRIMARY
/// not completed.
pub fn deploying(deployments: &[DeploymentObs]) -> bool {
    deployments.len() > 1
        || deployments
            .iter()
            .any(|d| d.is_primary() && d.rollout_state == "IN_PROGRESS")
}

/// One running task, as shown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskState {
    /// Task id.
    pub id: String,
    /// The deployment that started it.
    pub started_by: String,
    /// `lastStatus`.
    pub last_status: String,
    /// Its task definition.
    pub task_definition_arn: String,
    /// `createdAt`, epoch seconds (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::history::ser_epoch")]
    pub created_at: f64,
}

/// A pinned reference: it keeps its version whatever AWSCURRENT says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PinnedRef {
    /// Container name.
    pub container: String,
    /// Where in the container (`env NAME`, ...).
    pub place: String,
    /// What it is pinned to (`version id ...`, `stage AWSPREVIOUS`).
    pub pin: String,
}

/// One secret as read by one service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretRead {
    /// Secret ARN.
    pub secret_arn: String,
    /// Secret name.
    pub secret_name: String,
    /// The version holding AWSCURRENT.
    pub current_version: Option<String>,
    /// Running tasks whose task definition follows AWSCURRENT of this secret.
    pub tasks: usize,
    /// Ids of those that hold an older value: created before the current value existed.
    /// Not those of [`SecretRead::baking_tasks`].
    pub stale_tasks: Vec<String>,
    /// Ids of those that hold an older value but get no production traffic: the old
    /// deployment's tasks baking beside a blue/green, linear or canary deployment that
    /// has all production traffic; they stop when the bake ends ([`StagedStatus`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub baking_tasks: Vec<String>,
    /// Ids of those that cannot be told: created after the current version existed but
    /// before it provably became current (the secret changed since; status has no reads
    /// from the past to place the change). Never called stale, never called fresh.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unproven_tasks: Vec<String>,
    /// Pinned references in the service's task definition.
    pub pinned: Vec<PinnedRef>,
}

/// One service's status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStatus {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Desired count.
    pub desired: i32,
    /// Running count.
    pub running: i32,
    /// Pending count.
    pub pending: i32,
    /// Deployments, PRIMARY first.
    pub deployments: Vec<DeploymentObs>,
    /// Tasks ECS means to run.
    pub tasks: Vec<TaskState>,
    /// What they run: per container, image and digest, how many tasks (issue 18).
    pub images: Vec<crate::images::RunningImage>,
    /// The checked secrets it reads.
    pub secrets: Vec<SecretRead>,
    /// Scaled to 0 with no task running, starting or listed: there is no task to hold
    /// any version (see [`crate::verdict::nothing_to_prove`]).
    pub nothing_to_prove: bool,
    /// Not in the environment's `services` list, shown because it reads a checked secret:
    /// a rotation of the environment does not redeploy it.
    pub outside_services_list: bool,
    /// A blue/green, linear or canary deployment under way: its service deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub staged_deployment: Option<StagedStatus>,
}

impl ServiceStatus {
    /// Distinct stale task ids, whatever the secret.
    pub fn stale_tasks(&self) -> BTreeSet<&str> {
        self.secrets
            .iter()
            .flat_map(|s| s.stale_tasks.iter().map(String::as_str))
            .collect()
    }

    /// Distinct ids of the tasks holding an older value that get no production traffic
    /// (baking), whatever the secret.
    pub fn baking_tasks(&self) -> BTreeSet<&str> {
        self.secrets
            .iter()
            .flat_map(|s| s.baking_tasks.iter().map(String::as_str))
            .collect()
    }

    /// Whether a deployment is under way (more than one, or the PRIMARY not completed).
    pub fn deploying(&self) -> bool {
        deploying(&self.deployments)
    }
}

/// The whole status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// The secrets checked.
    pub secrets: Vec<SecretState>,
    /// The services, in the order given.
    pub services: Vec<ServiceStatus>,
    /// How many distinct running tasks are stale.
    pub stale: usize,
    /// How many distinct running tasks hold an older value but get no production traffic
    /// (the old deployment baking; [`SecretRead::baking_tasks`]): not stale, counted apart.
    pub baking: usize,
    /// Things worth saying that are not errors (a referenced secret that does not exist).
    pub notes: Vec<String>,
}

impl Status {
    /// The exit code: [`crate::error::exit::STALE`] when a task is stale, else OK.
    pub fn exit_code(&self) -> i32 {
        if self.stale > 0 {
            Kind::Stale.exit_code()
        } else {
            crate::error::exit::OK
        }
    }
}

/// Decides, per service and per secret, which running tasks are stale.
///
/// `tasks` maps `(cluster, service)` to the tasks ECS reported (only those with desired
/// status RUNNING count). `task_defs` holds the services' and the tasks' task definitions;
/// a task is judged by its own task definition (during a deployment old tasks run an older
/// revision), falling back to the service's. With `consumers_only`, services that read
/// none of `secrets` are left out; those [`ServiceState::outside`] the environment's list
/// are left out unless they read one.
pub fn assess(
    secrets: &[SecretState],
    services: &[ServiceState],
    tasks: &HashMap<(String, String), Vec<TaskObs>>,
    task_defs: &HashMap<String, TaskDef>,
    consumers_only: bool,
) -> Status {
    let mut out = Vec::new();
    let mut stale_total = 0;
    let mut baking_total = 0;
    for svc in services {
        let service_td = task_defs.get(&svc.task_definition_arn);
        let running: Vec<&TaskObs> = tasks
            .get(&(svc.cluster.clone(), svc.name.clone()))
            .map(|v| v.iter().filter(|t| t.desired_status == "RUNNING").collect())
            .unwrap_or_default();
        let staged = svc.service_deployment.as_ref().map(|obs| {
            let green = svc.deployments.iter().find(|d| d.is_primary());
            staged_status(&svc.strategy, obs, green.map(|d| d.id.as_str()), &running)
        });
        let no_production: BTreeSet<&str> = staged
            .iter()
            .flat_map(|s| s.baking_tasks.iter().map(String::as_str))
            .collect();
        let mut reads = Vec::new();
        for secret in secrets {
            let refs_of = |td: Option<&TaskDef>| -> Vec<(bool, PinnedRef)> {
                td.map(|td| {
                    td.refs
                        .iter()
                        .filter_map(|site| {
                            // A parameter: ECS reads its latest version, never pinned.
                            if crate::consumers::reads_parameter(
                                &site.value_from,
                                &secret.arn,
                                &secret.name,
                            ) {
                                return Some((
                                    true,
                                    PinnedRef {
                                        container: site.container.clone(),
                                        place: site.place.to_string(),
                                        pin: String::new(),
                                    },
                                ));
                            }
                            let r = parse_value_from(&site.value_from)?;
                            r.matches(&secret.arn, &secret.name).then(|| {
                                let pin = r.pin();
                                (
                                    pin.is_none(),
                                    PinnedRef {
                                        container: site.container.clone(),
                                        place: site.place.to_string(),
                                        pin: pin.map(|p| p.to_string()).unwrap_or_default(),
                                    },
                                )
                            })
                        })
                        .collect()
                })
                .unwrap_or_default()
            };
            let service_refs = refs_of(service_td);
            let mut following = 0;
            let mut stale = Vec::new();
            let mut baking = Vec::new();
            let mut unproven = Vec::new();
            let mut any_task_reads = false;
            for t in &running {
                let td = task_defs.get(&t.task_definition_arn).or(service_td);
                let refs = refs_of(td);
                any_task_reads |= !refs.is_empty();
                if !refs.iter().any(|(follows, _)| *follows) {
                    continue;
                }
                following += 1;
                // The holding rule, with what status can see: no reads from the past,
                // so the current version counts from `since` (see `effective_since`).
                let holding = secret
                    .since
                    .map(|since| crate::holding::Holding::Holds { since });
                let before = holding.is_some_and(|h| {
                    crate::holding::task_holds(t.created_at, &h, 0.0)
                        == crate::holding::TaskHolds::Before
                });
                let after_newer = secret.moved_back_from.is_some_and(|p| t.created_at >= p);
                let still_pending = secret.rotated_at.is_some_and(|r| t.created_at < r);
                if before
                    && !after_newer
                    && !still_pending
                    && secret.created.is_some_and(|c| t.created_at >= c)
                {
                    unproven.push(t.id().to_string());
                } else if before && no_production.contains(t.id()) {
                    baking.push(t.id().to_string());
                } else if before {
                    stale.push(t.id().to_string());
                }
            }
            if service_refs.is_empty() && !any_task_reads {
                continue;
            }
            reads.push(SecretRead {
                secret_arn: secret.arn.clone(),
                secret_name: secret.name.clone(),
                current_version: secret.current.clone(),
                tasks: following,
                stale_tasks: stale,
                baking_tasks: baking,
                unproven_tasks: unproven,
                pinned: service_refs
                    .into_iter()
                    .filter(|(follows, _)| !follows)
                    .map(|(_, p)| p)
                    .collect(),
            });
        }
        if (consumers_only || svc.outside) && reads.is_empty() {
            continue;
        }
        let status = ServiceStatus {
            cluster: svc.cluster.clone(),
            name: svc.name.clone(),
            desired: svc.desired,
            running: svc.running,
            pending: svc.pending,
            deployments: svc.deployments.clone(),
            tasks: running
                .iter()
                .map(|t| TaskState {
                    id: t.id().to_string(),
                    started_by: t.started_by.clone(),
                    last_status: t.last_status.clone(),
                    task_definition_arn: t.task_definition_arn.clone(),
                    created_at: t.created_at,
                })
                .collect(),
            images: crate::images::running_images(running.iter().copied(), task_defs),
            secrets: reads,
            nothing_to_prove: running.is_empty()
                && crate::verdict::nothing_to_prove(
                    &crate::verdict::ServiceObs {
                        info: crate::aws::model::ServiceInfo {
                            desired: svc.desired,
                            running: svc.running,
                            pending: svc.pending,
                            ..Default::default()
                        },
                        deployments: svc.deployments.clone(),
                        ..Default::default()
                    },
                    &[],
                ),
            outside_services_list: svc.outside,
            staged_deployment: staged,
        };
        stale_total += status.stale_tasks().len();
        baking_total += status.baking_tasks().len();
        out.push(status);
    }
    Status {
        secrets: secrets.to_vec(),
        services: out,
        stale: stale_total,
        baking: baking_total,
        notes: Vec::new(),
    }
}

/// The running tasks of `services`, by `(cluster, service)`: one listing per cluster, not
/// per service ([`crate::images::tasks_by_service`]).
async fn list_tasks(
    clients: &Clients,
    services: &[&ServiceState],
) -> Result<HashMap<(String, String), Vec<TaskObs>>> {
    let wanted: Vec<(crate::rollout::ServiceRef, usize)> = services
        .iter()
        .map(|s| {
            let service = crate::rollout::ServiceRef {
                cluster: s.cluster.clone(),
                service: s.name.clone(),
            };
            (
                service,
                s.desired.max(s.running + s.pending).max(0) as usize,
            )
        })
        .collect();
    let (tasks, _) = crate::images::tasks_by_service(&clients.ecs, &wanted).await?;
    Ok(tasks.into_iter().collect())
}

/// Describes the task definitions `tasks` run that are not in `task_defs` yet: tasks of a
/// deployment in progress may run a revision the services no longer name.
async fn describe_missing(
    clients: &Clients,
    tasks: &HashMap<(String, String), Vec<TaskObs>>,
    task_defs: &mut HashMap<String, TaskDef>,
) -> Result<()> {
    let missing: BTreeSet<String> = tasks
        .values()
        .flatten()
        .map(|t| t.task_definition_arn.clone())
        .filter(|a| !a.is_empty() && !task_defs.contains_key(a))
        .collect();
    discovery::describe_task_definitions(&clients.ecs, missing, task_defs).await
}

/// The services whose current service deployment `status` reads: blue/green, linear or
/// canary ([`crate::aws::model::ServiceInfo::staged`]) and deploying by `deployments[]`,
/// with a `currentServiceDeployment`. Rolling services never: their calls stay as they were.
pub fn to_describe(services: &[ServiceState]) -> Vec<(usize, String)> {
    services
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            let info = crate::aws::model::ServiceInfo {
                strategy: s.strategy.clone(),
                ..Default::default()
            };
            info.staged() && deploying(&s.deployments)
        })
        .filter_map(|(i, s)| Some((i, s.current_service_deployment.clone()?)))
        .collect()
}

/// Reads the current service deployment of the services [`to_describe`] picks, in one
/// DescribeServiceDeployments per twenty, and the traffic moment this machine's journal
/// holds for each. A failure is a note, not the end of `status`: those services are shown
/// from `deployments[]` as before (a role without `ecs:DescribeServiceDeployments` still
/// sees the rest).
async fn read_service_deployments(
    clients: &Clients,
    services: &mut [ServiceState],
    rotations: &[journal::RotationSummary],
) -> Option<String> {
    let wanted = to_describe(services);
    if wanted.is_empty() {
        return None;
    }
    let arns: Vec<String> = wanted.iter().map(|(_, a)| a.clone()).collect();
    let records = match crate::aws::ecs::describe_service_deployments(&clients.ecs, &arns).await {
        Ok(r) => r,
        Err(e) => {
            let names: Vec<String> = wanted
                .iter()
                .map(|(i, _)| format!("{}/{}", services[*i].cluster, services[*i].name))
                .collect();
            return Some(format!(
                "could not read the service deployment of {} ({}), so their lifecycle stage, traffic and bake are not shown: {}",
                names.join(", "),
                e.operation,
                e.detail
            ));
        }
    };
    for (i, arn) in wanted {
        let Some(record) = records.iter().find(|r| r.arn == arn) else {
            continue;
        };
        let s = &mut services[i];
        let green = s
            .deployments
            .iter()
            .find(|d| d.is_primary())
            .map(|d| d.id.clone())
            .unwrap_or_default();
        s.service_deployment = Some(StagedObs {
            record: record.clone(),
            traffic_seen: traffic_seen(rotations, &s.cluster, &s.name, &green),
        });
    }
    None
}

/// The moment `current` took effect: its creation date, or later when AWSCURRENT was
/// moved back to it (which makes an old version current again). `moved_back_by`: a time
/// at or after such a move (the secret's LastChangedDate when its AWSPREVIOUS version is
/// newer than its AWSCURRENT one); `restores`: `(version, at)` restores from the journal.
/// Erring late only calls a fresh task stale, never a stale one fresh.
pub fn effective_since(
    created: Option<f64>,
    current: &str,
    moved_back_by: Option<f64>,
    restores: impl IntoIterator<Item = (String, f64)>,
) -> Option<f64> {
    restores
        .into_iter()
        .filter(|(v, _)| v == current)
        .map(|(_, at)| at)
        .chain(created)
        .chain(moved_back_by)
        .fold(None, |acc: Option<f64>, at| {
            Some(acc.map_or(at, |a| a.max(at)))
        })
}

/// Whether AWSCURRENT was moved back: the AWSPREVIOUS version is newer than it.
pub fn moved_back(current_created: Option<f64>, previous_created: Option<f64>) -> bool {
    matches!((current_created, previous_created), (Some(c), Some(p)) if p > c)
}

/// The secret ids referenced by `task_defs`, in a stable order: full ARNs (without
/// selectors) where written, else names. Only Secrets Manager references.
pub fn referenced_secret_ids<'a>(task_defs: impl IntoIterator<Item = &'a TaskDef>) -> Vec<String> {
    let mut ids = BTreeSet::new();
    for td in task_defs {
        for site in &td.refs {
            if let Some(r) = parse_value_from(&site.value_from) {
                let id = match r.form {
                    RefForm::FullArn => r.base_arn().unwrap_or_else(|| r.written_name()),
                    _ => r.written_name(),
                };
                ids.insert(id);
            }
        }
    }
    ids.into_iter().collect()
}

/// Reads the environment and assesses it. `secret_ids` empty: every secret the services'
/// task definitions reference. `state_dir`: the journal, for restores (optional).
///
/// An environment that lists its services is those services, plus every service outside
/// the list that reads a checked secret, marked as outside: a reader is never hidden.
pub async fn gather(
    clients: &Clients,
    target: &Target,
    secret_ids: &[String],
    state_dir: Option<&Path>,
) -> Result<Status> {
    let inv = discovery::inventory(&clients.ecs, &target.clusters, None, false).await?;
    let in_list = |name: &String| {
        target
            .services
            .as_ref()
            .is_none_or(|only| only.contains(name))
    };
    let mut services: Vec<ServiceState> = inv
        .services
        .iter()
        .map(|s| ServiceState {
            cluster: s.info.cluster.clone(),
            name: s.info.name.clone(),
            desired: s.info.desired,
            running: s.info.running,
            pending: s.info.pending,
            task_definition_arn: s.info.task_definition_arn.clone(),
            deployments: s.deployments.clone(),
            outside: !in_list(&s.info.name),
            strategy: s.info.strategy.clone(),
            current_service_deployment: s.current_service_deployment.clone(),
            service_deployment: None,
        })
        .collect();
    let listed: Vec<&ServiceState> = services.iter().filter(|s| !s.outside).collect();
    let mut tasks = list_tasks(clients, &listed).await?;
    let mut task_defs: HashMap<String, TaskDef> = inv.task_defs;
    describe_missing(clients, &tasks, &mut task_defs).await?;

    let explicit = !secret_ids.is_empty();
    let ids: Vec<String> = if explicit {
        secret_ids.to_vec()
    } else {
        // The secrets of the environment's services (and of their tasks), not of the
        // services outside its list.
        let own: BTreeSet<&str> = listed
            .iter()
            .map(|s| s.task_definition_arn.as_str())
            .chain(
                tasks
                    .values()
                    .flatten()
                    .map(|t| t.task_definition_arn.as_str()),
            )
            .collect();
        referenced_secret_ids(
            task_defs
                .iter()
                .filter(|(arn, _)| own.contains(arn.as_str()))
                .map(|(_, td)| td),
        )
    };
    let mut notes = Vec::new();
    let described = futures::future::join_all(ids.iter().map(|id| async move {
        let info = crate::store::describe(clients, id).await?;
        let versions = match &info.current {
            Some(_) => crate::store::versions(clients, &info.arn, &info.name).await?,
            None => Vec::new(),
        };
        let created_of = |id: &Option<String>| {
            versions
                .iter()
                .find(|x| Some(&x.id) == id.as_ref())
                .and_then(|x| x.created)
        };
        let created = created_of(&info.current);
        // The current version has been current since its LastChangedDate at the latest:
        // whatever the last change was, it left this version current.
        let moved_back_by = info.last_changed;
        let previous_created = created_of(&info.previous);
        // A version pending now was put after the current one, maybe after the move back:
        // the move may not be the last change, so tasks after the newer version are not
        // known to hold it.
        let pending = info.pending_other().is_some();
        let moved_back_from = (moved_back(created, previous_created) && !pending)
            .then_some(previous_created)
            .flatten();
        Ok::<_, Error>((info, created, moved_back_by, moved_back_from))
    }))
    .await;
    let rotations = state_dir
        .and_then(|d| journal::list(d).ok())
        .unwrap_or_default();
    let restores: Vec<(String, String, f64)> = rotations
        .iter()
        .flat_map(|r| r.secrets.iter())
        .filter_map(|s| {
            Some((
                s.arn.clone(),
                s.restored_version_id.clone()?,
                s.restored_at?.unix_timestamp_nanos() as f64 / 1e9,
            ))
        })
        .collect();
    let mut secrets: Vec<SecretState> = Vec::new();
    for (id, r) in ids.iter().zip(described) {
        let (info, created, moved_back_by, moved_back_from) = match r {
            Ok(x) => x,
            // A task definition may name a secret that is gone: worth a note, not a failure.
            Err(e) if !explicit && e.kind == Kind::BadInput => {
                notes.push(format!(
                    "a task definition references {id}, which was not found"
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        if secrets.iter().any(|s| s.arn == info.arn) {
            continue;
        }
        let since = match &info.current {
            Some(current) => effective_since(
                created,
                current,
                moved_back_by,
                restores
                    .iter()
                    .filter(|(arn, _, _)| *arn == info.arn)
                    .map(|(_, v, at)| (v.clone(), *at)),
            ),
            None => None,
        };
        let rotated_at = rotated_at(
            info.last_rotated,
            info.last_changed,
            created,
            info.pending_other().is_some(),
        );
        let pending = info.pending_other().map(str::to_string);
        secrets.push(SecretState {
            pending,
            arn: info.arn,
            name: info.name,
            current: info.current,
            since,
            created,
            moved_back_from,
            rotated_at,
        });
    }
    // The services outside the list that read a checked secret: their tasks too.
    services.retain(|s| {
        !s.outside
            || task_defs.get(&s.task_definition_arn).is_some_and(|td| {
                td.refs.iter().any(|site| {
                    secrets.iter().any(|x| {
                        crate::consumers::reads_parameter(&site.value_from, &x.arn, &x.name)
                    }) || parse_value_from(&site.value_from)
                        .is_some_and(|r| secrets.iter().any(|x| r.matches(&x.arn, &x.name)))
                })
            })
    });
    let readers: Vec<&ServiceState> = services.iter().filter(|s| s.outside).collect();
    if !readers.is_empty() {
        let more = list_tasks(clients, &readers).await?;
        describe_missing(clients, &more, &mut task_defs).await?;
        tasks.extend(more);
    }
    notes.extend(read_service_deployments(clients, &mut services, &rotations).await);
    let mut status = assess(&secrets, &services, &tasks, &task_defs, explicit);
    status.notes = notes;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumers::{Place, RefSite};

    const ARN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/db-AbCdEf";
    const OTHER: &str =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/key-XyZ123";

    fn td(arn: &str, value_froms: &[&str]) -> TaskDef {
        TaskDef {
            arn: arn.into(),
            family: "f".into(),
            revision: 1,
            refs: value_froms
                .iter()
                .enumerate()
                .map(|(i, v)| RefSite {
                    container: "app".into(),
                    place: Place::Secret {
                        env: format!("V{i}"),
                    },
                    value_from: v.to_string(),
                })
                .collect(),
            images: Vec::new(),
        }
    }

    /// `deploying`: more than one deployment, or the PRIMARY still in progress (no unit
    /// test decided it: cargo-mutants' survivors in `ServiceStatus::deploying`).
    #[test]
    fn deploying_is_two_deployments_or_a_primary_in_progress() {
        let d = |status: &str, state: &str| DeploymentObs {
            id: format!("ecs-svc/{status}-{state}"),
            status: status.into(),
            rollout_state: state.into(),
            ..Default::default()
        };
        let s = |deployments: Vec<DeploymentObs>| ServiceStatus {
            cluster: "c".into(),
            name: "s".into(),
            desired: 2,
            running: 2,
            pending: 0,
            deployments,
            tasks: vec![],
            images: Vec::new(),
            secrets: vec![],
            nothing_to_prove: false,
            outside_services_list: false,
            staged_deployment: None,
        };
        assert!(!s(vec![]).deploying());
        assert!(!s(vec![d("PRIMARY", "COMPLETED")]).deploying());
        assert!(s(vec![d("PRIMARY", "IN_PROGRESS")]).deploying());
        assert!(!s(vec![d("ACTIVE", "IN_PROGRESS")]).deploying());
        assert!(s(vec![d("PRIMARY", "COMPLETED"), d("ACTIVE", "COMPLETED")]).deploying());
    }

    fn svc(name: &str, td: &str) -> ServiceState {
        ServiceState {
            cluster: "c".into(),
            name: name.into(),
            desired: 2,
            running: 2,
            pending: 0,
            task_definition_arn: td.into(),
            deployments: vec![],
            outside: false,
            strategy: String::new(),
            current_service_deployment: None,
            service_deployment: None,
        }
    }

    fn task(id: &str, td: &str, created: f64, desired: &str) -> TaskObs {
        TaskObs {
            arn: format!("arn:aws:ecs:eu-west-1:123456789012:task/c/{id}"),
            started_by: "ecs-svc/1".into(),
            last_status: "RUNNING".into(),
            desired_status: desired.into(),
            created_at: created,
            started_at: Some(created + 5.0),
            task_definition_arn: td.into(),
            group: String::new(),
            containers: Vec::new(),
        }
    }

    fn secret(arn: &str, name: &str, since: f64) -> SecretState {
        SecretState {
            arn: arn.into(),
            name: name.into(),
            current: Some("v2".into()),
            since: Some(since),
            created: None,
            moved_back_from: None,
            rotated_at: None,
            pending: None,
        }
    }

    fn tasks(list: Vec<(&str, Vec<TaskObs>)>) -> HashMap<(String, String), Vec<TaskObs>> {
        list.into_iter()
            .map(|(s, t)| (("c".to_string(), s.to_string()), t))
            .collect()
    }

    #[test]
    fn tasks_created_before_the_current_version_are_stale() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("api", "td:1")],
            &tasks(vec![(
                "api",
                vec![
                    task("old", "td:1", 50.0, "RUNNING"),
                    task("new", "td:1", 150.0, "RUNNING"),
                    // Told to stop: draining, not counted.
                    task("gone", "td:1", 10.0, "STOPPED"),
                ],
            )]),
            &defs,
            false,
        );
        assert_eq!(st.stale, 1);
        assert_eq!(st.exit_code(), 1);
        let read = &st.services[0].secrets[0];
        assert_eq!(read.tasks, 2);
        assert_eq!(read.stale_tasks, vec!["old".to_string()]);
        assert_eq!(st.services[0].tasks.len(), 2);
    }

    /// A service outside the environment's list is shown when it reads a checked secret
    /// (marked, its stale tasks counted: they hold an older value all the same) and left
    /// out when it reads none, even when every service is shown.
    #[test]
    fn readers_outside_the_list_are_shown_marked_and_counted() {
        let defs: HashMap<_, _> = [
            ("td:1".to_string(), td("td:1", &[ARN])),
            ("td:2".to_string(), td("td:2", &[OTHER])),
        ]
        .into();
        let outside = |name: &str, td: &str| ServiceState {
            outside: true,
            ..svc(name, td)
        };
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[
                svc("front", "td:2"),
                outside("api", "td:1"),
                outside("pdf", "td:2"),
            ],
            &tasks(vec![
                ("front", vec![task("f1", "td:2", 150.0, "RUNNING")]),
                ("api", vec![task("old", "td:1", 50.0, "RUNNING")]),
                ("pdf", vec![task("p1", "td:2", 50.0, "RUNNING")]),
            ]),
            &defs,
            false,
        );
        let shown: Vec<(&str, bool)> = st
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.outside_services_list))
            .collect();
        assert_eq!(shown, [("front", false), ("api", true)]);
        assert_eq!(st.stale, 1);
        assert_eq!(st.services[1].secrets[0].stale_tasks, ["old"]);
    }

    #[test]
    fn tasks_between_the_versions_creation_and_its_last_change_cannot_be_told() {
        // v2 created at 100, the secret last changed at 200 (a label moved back to v2, or
        // a tag edit): a task from before 100 holds an older value; one from between
        // may hold v2 or the version that was current meanwhile; one after 200 holds v2.
        // Moved back from v3 (created at 160): one from 160 on read v3.
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let st = assess(
            &[SecretState {
                created: Some(100.0),
                moved_back_from: Some(160.0),
                ..secret(ARN, "production/db", 200.0)
            }],
            &[svc("api", "td:1")],
            &tasks(vec![(
                "api",
                vec![
                    task("older", "td:1", 50.0, "RUNNING"),
                    task("between", "td:1", 150.0, "RUNNING"),
                    task("read-v3", "td:1", 170.0, "RUNNING"),
                    task("after", "td:1", 250.0, "RUNNING"),
                ],
            )]),
            &defs,
            false,
        );
        let read = &st.services[0].secrets[0];
        assert_eq!(
            read.stale_tasks,
            vec!["older".to_string(), "read-v3".to_string()]
        );
        assert_eq!(read.unproven_tasks, vec!["between".to_string()]);
        assert_eq!((st.stale, st.exit_code()), (2, 1));
    }

    /// A rotation: v2 created (AWSPENDING) at 100, made current at 110 (LastRotatedDate =
    /// LastChangedDate). A task created in between read the version current then, v1:
    /// stale, not "cannot be told". Without the rotation's date it cannot be told.
    #[test]
    fn a_task_launched_while_the_rotation_was_pending_is_stale() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let rotated = SecretState {
            created: Some(100.0),
            rotated_at: rotated_at(Some(110.0), Some(110.0), Some(100.0), false),
            ..secret(ARN, "production/db", 110.0)
        };
        assert_eq!(rotated.rotated_at, Some(110.0));
        let t = tasks(vec![(
            "api",
            vec![
                task("before", "td:1", 50.0, "RUNNING"),
                task("pending", "td:1", 105.0, "RUNNING"),
                task("after", "td:1", 111.0, "RUNNING"),
            ],
        )]);
        let st = assess(
            std::slice::from_ref(&rotated),
            &[svc("api", "td:1")],
            &t,
            &defs,
            false,
        );
        let read = &st.services[0].secrets[0];
        assert_eq!(read.stale_tasks, ["before", "pending"]);
        assert!(read.unproven_tasks.is_empty());
        let unknown = SecretState {
            rotated_at: None,
            ..rotated
        };
        let st = assess(&[unknown], &[svc("api", "td:1")], &t, &defs, false);
        let read = &st.services[0].secrets[0];
        assert_eq!(read.stale_tasks, ["before"]);
        assert_eq!(read.unproven_tasks, ["pending"]);
    }

    /// The rotation's date counts only when it was the last change, after the version's
    /// creation, with no other version pending.
    #[test]
    fn rotated_at_only_when_the_rotation_was_the_last_change() {
        assert_eq!(
            rotated_at(Some(110.0), Some(110.0), Some(100.0), false),
            Some(110.0)
        );
        assert_eq!(
            rotated_at(Some(110.0), Some(120.0), Some(100.0), false),
            None
        );
        assert_eq!(
            rotated_at(Some(110.0), Some(110.0), Some(110.0), false),
            None
        );
        assert_eq!(
            rotated_at(Some(110.0), Some(110.0), Some(100.0), true),
            None
        );
        assert_eq!(rotated_at(None, Some(110.0), Some(100.0), false), None);
        assert_eq!(rotated_at(Some(110.0), Some(110.0), None, false), None);
    }

    #[test]
    fn nothing_stale_after_a_full_rollout() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("api", "td:1")],
            &tasks(vec![("api", vec![task("a", "td:1", 101.0, "RUNNING")])]),
            &defs,
            false,
        );
        assert_eq!(st.stale, 0);
        assert_eq!(st.exit_code(), 0);
    }

    #[test]
    fn pinned_references_are_reported_not_stale() {
        let pinned = format!("{ARN}::AWSPREVIOUS:");
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[&pinned]))].into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("pdf", "td:1")],
            &tasks(vec![("pdf", vec![task("a", "td:1", 1.0, "RUNNING")])]),
            &defs,
            true,
        );
        assert_eq!(st.stale, 0);
        let read = &st.services[0].secrets[0];
        assert_eq!(read.tasks, 0);
        assert_eq!(read.pinned.len(), 1);
        assert_eq!(read.pinned[0].pin, "stage AWSPREVIOUS");
        assert_eq!(read.pinned[0].place, "env V0");
    }

    #[test]
    fn each_task_is_judged_by_its_own_task_definition() {
        // The new revision adds the secret; old tasks on revision 1 never read it.
        let defs: HashMap<_, _> = [
            ("td:1".to_string(), td("td:1", &[OTHER])),
            ("td:2".to_string(), td("td:2", &[OTHER, ARN])),
        ]
        .into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("api", "td:2")],
            &tasks(vec![(
                "api",
                vec![
                    task("rev1", "td:1", 50.0, "RUNNING"),
                    task("rev2", "td:2", 60.0, "RUNNING"),
                ],
            )]),
            &defs,
            false,
        );
        let read = &st.services[0].secrets[0];
        assert_eq!(read.tasks, 1);
        assert_eq!(read.stale_tasks, vec!["rev2".to_string()]);
    }

    #[test]
    fn a_task_stale_for_two_secrets_counts_once_and_non_consumers_can_be_hidden() {
        let defs: HashMap<_, _> = [
            (
                "td:1".to_string(),
                td(
                    "td:1",
                    &[ARN, "/aws/reference/secretsmanager/production/key"],
                ),
            ),
            ("td:9".to_string(), td("td:9", &[])),
        ]
        .into();
        let secrets = [
            secret(ARN, "production/db", 100.0),
            secret(OTHER, "production/key", 100.0),
        ];
        let services = [svc("api", "td:1"), svc("worker", "td:9")];
        let t = tasks(vec![("api", vec![task("x", "td:1", 1.0, "RUNNING")])]);
        let all = assess(&secrets, &services, &t, &defs, false);
        assert_eq!(all.services.len(), 2);
        assert_eq!(all.services[0].secrets.len(), 2);
        assert_eq!(all.stale, 1);
        let only = assess(&secrets, &services, &t, &defs, true);
        assert_eq!(only.services.len(), 1);
        assert_eq!(only.services[0].name, "api");
    }

    #[test]
    fn unknown_since_calls_nothing_stale() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let mut s = secret(ARN, "production/db", 0.0);
        s.since = None;
        let st = assess(
            &[s],
            &[svc("api", "td:1")],
            &tasks(vec![("api", vec![task("a", "td:1", 1.0, "RUNNING")])]),
            &defs,
            false,
        );
        assert_eq!(st.stale, 0);
    }

    #[test]
    fn a_restore_moves_the_moment_forward() {
        assert_eq!(effective_since(Some(10.0), "v1", None, vec![]), Some(10.0));
        assert_eq!(
            effective_since(
                Some(10.0),
                "v1",
                None,
                vec![
                    ("v1".into(), 50.0),
                    ("v2".into(), 90.0),
                    ("v1".into(), 40.0)
                ]
            ),
            Some(50.0)
        );
        assert_eq!(
            effective_since(None, "v1", None, vec![("v1".into(), 5.0)]),
            Some(5.0)
        );
        assert_eq!(
            effective_since(Some(10.0), "v1", Some(70.0), vec![]),
            Some(70.0)
        );
        assert_eq!(effective_since(None, "v1", None, vec![]), None);
    }

    #[test]
    fn moved_back_when_previous_is_newer() {
        assert!(moved_back(Some(10.0), Some(20.0)));
        assert!(!moved_back(Some(20.0), Some(10.0)));
        assert!(!moved_back(Some(20.0), None));
        assert!(!moved_back(None, Some(1.0)));
    }

    #[test]
    fn referenced_ids_prefer_full_arns_and_skip_other_parameters() {
        let defs = [td(
            "td:1",
            &[
                &format!("{ARN}:password::"),
                "/aws/reference/secretsmanager/production/key",
                "arn:aws:ssm:eu-west-1:123456789012:parameter/plain",
                ARN,
            ],
        )];
        assert_eq!(
            referenced_secret_ids(defs.iter()),
            vec![ARN.to_string(), "production/key".to_string()]
        );
    }

    /// A service whose current task definition no longer reads the secret still shows it
    /// while tasks of an older revision that read it run (cargo-mutants: `|=` in `assess`).
    #[test]
    fn tasks_of_an_older_definition_that_read_the_secret_keep_it_listed() {
        let defs: HashMap<_, _> = [
            ("td:1".to_string(), td("td:1", &[ARN])),
            ("td:2".to_string(), td("td:2", &[OTHER])),
        ]
        .into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("api", "td:2")],
            &tasks(vec![("api", vec![task("old", "td:1", 50.0, "RUNNING")])]),
            &defs,
            true,
        );
        assert_eq!(st.services.len(), 1);
        assert_eq!(st.services[0].secrets.len(), 1);
        assert_eq!(st.services[0].secrets[0].stale_tasks, ["old"]);
        assert_eq!(st.stale, 1);
    }

    /// A service that reads the secret but runs no task is listed with 0 tasks, not
    /// dropped (cargo-mutants: `&&` in `assess`).
    #[test]
    fn a_reader_with_no_running_task_is_listed() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let st = assess(
            &[secret(ARN, "production/db", 100.0)],
            &[svc("api", "td:1")],
            &HashMap::new(),
            &defs,
            true,
        );
        assert_eq!(st.services.len(), 1);
        assert_eq!(st.services[0].secrets.len(), 1);
        assert_eq!(st.services[0].secrets[0].tasks, 0);
        assert_eq!(st.stale, 0);
    }

    /// A staged deployment's record: `status`, `stage`, production weight.
    fn record(status: &str, stage: &str, weight: Option<f64>) -> StagedObs {
        StagedObs {
            record: ServiceDeploymentRecord {
                arn: "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/sd".into(),
                status: status.into(),
                lifecycle_stage: stage.into(),
                production_weight: weight,
                test_weight: weight.map(|_| 100.0),
                bake_minutes: Some(1440),
                ..Default::default()
            },
            traffic_seen: Some(1000.0),
        }
    }

    fn by(id: &str, deployment: &str, created: f64) -> TaskObs {
        TaskObs {
            started_by: deployment.into(),
            ..task(id, "td:1", created, "RUNNING")
        }
    }

    /// Which running tasks get no production traffic, and whether the deployment bakes:
    /// only while the service deployment is in progress with all production traffic on
    /// the new revision (the PRIMARY's tasks); never without a PRIMARY to tell them apart.
    #[test]
    fn old_tasks_get_no_production_traffic_only_once_it_is_all_on_the_new_revision() {
        let tasks = [
            by("g1", "ecs-svc/2", 150.0),
            by("b1", "ecs-svc/1", 50.0),
            by("b2", "ecs-svc/1", 60.0),
        ];
        let running: Vec<&TaskObs> = tasks.iter().collect();
        /// (case, record, PRIMARY id, baking tasks, baking)
        type Case<'a> = (&'a str, StagedObs, Option<&'a str>, Vec<&'a str>, bool);
        let table: Vec<Case> = vec![
            (
                "bake time: blue waits beside green",
                record("IN_PROGRESS", "BAKE_TIME", Some(100.0)),
                Some("ecs-svc/2"),
                vec!["b1", "b2"],
                true,
            ),
            (
                "traffic moved, before the bake",
                record("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT", Some(100.0)),
                Some("ecs-svc/2"),
                vec!["b1", "b2"],
                false,
            ),
            (
                "clean-up: blue stopping",
                record("IN_PROGRESS", "CLEAN_UP", Some(100.0)),
                Some("ecs-svc/2"),
                vec!["b1", "b2"],
                false,
            ),
            (
                "linear half-way: blue still serves half",
                record("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", Some(50.0)),
                Some("ecs-svc/2"),
                vec![],
                false,
            ),
            (
                "before the shift: blue serves all",
                record("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", Some(0.0)),
                Some("ecs-svc/2"),
                vec![],
                false,
            ),
            (
                "rolling back: production returns to blue",
                record("ROLLBACK_IN_PROGRESS", "BAKE_TIME", Some(100.0)),
                Some("ecs-svc/2"),
                vec![],
                false,
            ),
            (
                "no weight given",
                record("IN_PROGRESS", "BAKE_TIME", None),
                Some("ecs-svc/2"),
                vec![],
                true,
            ),
            (
                "no PRIMARY to tell green from blue",
                record("IN_PROGRESS", "BAKE_TIME", Some(100.0)),
                None,
                vec![],
                true,
            ),
        ];
        for (case, obs, green, want, baking) in table {
            let st = staged_status("BLUE_GREEN", &obs, green, &running);
            assert_eq!(st.baking_tasks, want, "{case}");
            assert_eq!(st.baking, baking, "{case}");
            assert_eq!(st.lifecycle_stage, obs.record.lifecycle_stage, "{case}");
            assert_eq!(
                st.production_traffic_weight, obs.record.production_weight,
                "{case}"
            );
            assert_eq!(st.bake_time_minutes, Some(1440), "{case}");
            assert_eq!(st.traffic_shifted_at, Some(1000.0), "{case}");
            assert_eq!(st.deployment_id, green.unwrap_or_default(), "{case}");
        }
    }

    /// A blue/green service baking: blue's tasks hold the previous value but get no
    /// production traffic, so they are counted apart (not stale, exit 0); half-way through
    /// a linear shift they still serve production: stale. Green's tasks are current.
    #[test]
    fn blue_tasks_baking_are_counted_apart_from_stale() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let t = tasks(vec![(
            "web",
            vec![
                by("g1", "ecs-svc/2", 150.0),
                by("g2", "ecs-svc/2", 151.0),
                by("b1", "ecs-svc/1", 50.0),
                by("b2", "ecs-svc/1", 60.0),
            ],
        )]);
        let service = |weight: f64| ServiceState {
            strategy: "BLUE_GREEN".into(),
            deployments: vec![
                DeploymentObs {
                    id: "ecs-svc/2".into(),
                    status: "PRIMARY".into(),
                    rollout_state: "IN_PROGRESS".into(),
                    ..Default::default()
                },
                DeploymentObs {
                    id: "ecs-svc/1".into(),
                    status: "ACTIVE".into(),
                    rollout_state: "COMPLETED".into(),
                    ..Default::default()
                },
            ],
            service_deployment: Some(record("IN_PROGRESS", "BAKE_TIME", Some(weight))),
            ..svc("web", "td:1")
        };
        let secrets = [secret(ARN, "production/db", 100.0)];
        let st = assess(&secrets, &[service(100.0)], &t, &defs, false);
        let read = &st.services[0].secrets[0];
        assert_eq!(read.tasks, 4);
        assert!(read.stale_tasks.is_empty(), "{read:?}");
        assert_eq!(read.baking_tasks, ["b1", "b2"]);
        assert_eq!((st.stale, st.baking, st.exit_code()), (0, 2, 0));
        let staged = st.services[0].staged_deployment.as_ref().expect("staged");
        assert!(staged.baking);
        assert_eq!(staged.baking_tasks, ["b1", "b2"]);

        let st = assess(&secrets, &[service(50.0)], &t, &defs, false);
        let read = &st.services[0].secrets[0];
        assert_eq!(read.stale_tasks, ["b1", "b2"]);
        assert!(read.baking_tasks.is_empty());
        assert_eq!((st.stale, st.baking, st.exit_code()), (2, 0, 1));

        // Not read (a rolling service, or not deploying): nothing staged, blue stale.
        let plain = ServiceState {
            service_deployment: None,
            ..service(100.0)
        };
        let st = assess(&secrets, &[plain], &t, &defs, false);
        assert!(st.services[0].staged_deployment.is_none());
        assert_eq!((st.stale, st.baking), (2, 0));
    }

    /// Only blue/green, linear and canary services that are deploying, with a current
    /// service deployment, have it read: never a rolling one.
    #[test]
    fn only_staged_services_that_are_deploying_have_their_service_deployment_read() {
        let deploying = vec![
            DeploymentObs {
                id: "ecs-svc/2".into(),
                status: "PRIMARY".into(),
                rollout_state: "IN_PROGRESS".into(),
                ..Default::default()
            },
            DeploymentObs {
                id: "ecs-svc/1".into(),
                status: "ACTIVE".into(),
                ..Default::default()
            },
        ];
        let done = vec![DeploymentObs {
            id: "ecs-svc/2".into(),
            status: "PRIMARY".into(),
            rollout_state: "COMPLETED".into(),
            ..Default::default()
        }];
        let s =
            |name: &str, strategy: &str, deployments: &Vec<DeploymentObs>, sd: bool| ServiceState {
                strategy: strategy.into(),
                deployments: deployments.clone(),
                current_service_deployment: sd.then(|| format!("sd/{name}")),
                ..svc(name, "td:1")
            };
        let services = [
            s("rolling", "", &deploying, true),
            s("rolling2", "ROLLING", &deploying, true),
            s("bg", "BLUE_GREEN", &deploying, true),
            s("linear", "LINEAR", &deploying, true),
            s("canary-done", "CANARY", &done, true),
            s("bg-no-sd", "BLUE_GREEN", &deploying, false),
        ];
        assert_eq!(
            to_describe(&services),
            [(2, "sd/bg".to_string()), (3, "sd/linear".to_string())]
        );
    }

    /// The traffic moment of the deployment running now, from the journal of the rotation
    /// that started it (rollout or restore), never from another deployment or service.
    #[test]
    fn traffic_seen_is_the_journals_moment_for_that_deployment() {
        use crate::journal::{
            Phase, PhaseTimes, RotationKind, RotationSummary, ServiceSummary, ServiceTimes, Started,
        };
        let at = |s: i64| time::OffsetDateTime::from_unix_timestamp(s).expect("moment");
        let times = |service: &str, traffic: i64| PhaseTimes {
            since: None,
            services: vec![ServiceTimes {
                cluster: "c".into(),
                service: service.into(),
                started: Some(at(traffic - 100)),
                traffic: Some(at(traffic)),
                completed: None,
            }],
        };
        let rotation = RotationSummary {
            path: std::path::PathBuf::new(),
            started: Started {
                rotation_id: uuid::Uuid::from_u128(1),
                kind: RotationKind::Replace,
                environment: "e".into(),
                region: "eu-west-1".into(),
                clusters: vec!["c".into()],
                caller_arn: "arn".into(),
                account: "1".into(),
                rolls_back: None,
                secrets: vec![],
                services: vec![],
                started_at: at(0),
                tool_version: String::new(),
                on_failure: None,
            },
            secrets: vec![],
            services: vec![
                ServiceSummary {
                    cluster: "c".into(),
                    name: "web".into(),
                    planned: true,
                    rollout_deployment: Some("ecs-svc/2".into()),
                    restore_deployment: Some("ecs-svc/3".into()),
                },
                ServiceSummary {
                    cluster: "c".into(),
                    name: "api".into(),
                    planned: true,
                    rollout_deployment: Some("ecs-svc/9".into()),
                    restore_deployment: None,
                },
            ],
            phases: vec![],
            times: vec![
                (Phase::Rollout, times("web", 1000)),
                (Phase::Restore, times("web", 2000)),
            ],
            status: crate::journal::Status::InProgress,
            message: None,
            finished_at: None,
            updated_at: at(0),
        };
        let rotations = [rotation];
        // (case, service, deployment, moment)
        let table = [
            ("the rollout's deployment", "web", "ecs-svc/2", Some(1000.0)),
            ("the restore's deployment", "web", "ecs-svc/3", Some(2000.0)),
            (
                "a deployment no rotation here started",
                "web",
                "ecs-svc/7",
                None,
            ),
            ("a service without times", "api", "ecs-svc/9", None),
            ("another service's deployment id", "api", "ecs-svc/2", None),
        ];
        for (case, service, deployment, want) in table {
            assert_eq!(
                traffic_seen(&rotations, "c", service, deployment),
                want,
                "{case}"
            );
        }
        assert_eq!(traffic_seen(&[], "c", "web", "ecs-svc/2"), None);
    }

    /// "Nothing to prove" only when no task is listed and every count, the service's and
    /// each deployment's, is 0 (cargo-mutants: the `ServiceObs` that `assess` builds).
    #[test]
    fn nothing_to_prove_needs_every_count_zero_and_no_task() {
        let defs: HashMap<_, _> = [("td:1".to_string(), td("td:1", &[ARN]))].into();
        let judge = |desired: i32, running: i32, pending: i32, deployment: i32, listed: bool| {
            let service = ServiceState {
                desired,
                running,
                pending,
                deployments: vec![DeploymentObs {
                    id: "ecs-svc/1".into(),
                    status: "PRIMARY".into(),
                    rollout_state: "COMPLETED".into(),
                    desired: deployment,
                    ..Default::default()
                }],
                ..svc("api", "td:1")
            };
            let listed = if listed {
                vec![task("t", "td:1", 150.0, "RUNNING")]
            } else {
                vec![]
            };
            let st = assess(
                &[secret(ARN, "production/db", 100.0)],
                &[service],
                &tasks(vec![("api", listed)]),
                &defs,
                false,
            );
            st.services[0].nothing_to_prove
        };
        assert!(judge(0, 0, 0, 0, false));
        assert!(!judge(2, 0, 0, 0, false), "desired");
        assert!(!judge(0, 1, 0, 0, false), "running");
        assert!(!judge(0, 0, 1, 0, false), "pending");
        assert!(!judge(0, 0, 0, 1, false), "a deployment's desired count");
        assert!(!judge(0, 0, 0, 0, true), "a task still listed");
    }
}
