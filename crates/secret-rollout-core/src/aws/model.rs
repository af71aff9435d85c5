//! The core's own observations of AWS: what ECS and Secrets Manager said, in plain types
//! with no SDK in them. Made from the SDK's shapes in one place ([`super::convert`]); every
//! decision (`consumers`, `verdict`, `status`, `secret`) reads these.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

// ---- ECS: task definitions --------------------------------------------------------------

/// Where in a container definition a secret is referenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `secrets[]`: an environment variable.
    Secret {
        /// The environment variable's name.
        env: String,
    },
    /// `logConfiguration.secretOptions[]`.
    LogOption {
        /// The log driver option's name.
        name: String,
    },
    /// `repositoryCredentials.credentialsParameter`.
    RepositoryCredentials,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Secret { env } => write!(f, "env {env}"),
            Place::LogOption { name } => write!(f, "log option {name}"),
            Place::RepositoryCredentials => f.write_str("repository credentials"),
        }
    }
}

/// One secret reference in a task definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefSite {
    /// Container name.
    pub container: String,
    /// Where in the container.
    pub place: Place,
    /// The `valueFrom` (or `credentialsParameter`) as written.
    pub value_from: String,
}

/// The parts of a task definition revision that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskDef {
    /// Task definition ARN (`...:task-definition/FAMILY:REVISION`).
    pub arn: String,
    /// Family.
    pub family: String,
    /// Revision.
    pub revision: i32,
    /// Every secret reference of every container (Secrets Manager or not).
    pub refs: Vec<RefSite>,
    /// Every container's name and image, as written.
    pub images: Vec<(String, String)>,
}

/// A service's deployment controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Controller {
    /// `ECS` rolling deployments (the default).
    #[default]
    Ecs,
    /// `CODE_DEPLOY` blue/green.
    CodeDeploy,
    /// `EXTERNAL`.
    External,
}

impl fmt::Display for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Controller::Ecs => "ECS",
            Controller::CodeDeploy => "CODE_DEPLOY",
            Controller::External => "EXTERNAL",
        })
    }
}

// ---- ECS: services ----------------------------------------------------------------------

/// A service as described by DescribeServices: identity, configuration, counts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceInfo {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
    /// Service ARN.
    pub arn: String,
    /// `ACTIVE`, `DRAINING` or `INACTIVE`.
    pub status: String,
    /// The task definition ARN the service runs.
    pub task_definition_arn: String,
    /// Desired count.
    pub desired: i32,
    /// Running count.
    pub running: i32,
    /// Pending count.
    pub pending: i32,
    /// Deployment controller.
    pub controller: Controller,
    /// `minimumHealthyPercent` (ECS default 100 when absent).
    pub min_healthy_percent: i32,
    /// `maximumPercent` (ECS default 200 when absent).
    pub max_percent: i32,
    /// `deploymentCircuitBreaker` as `(enable, rollback)`.
    pub circuit_breaker: Option<(bool, bool)>,
    /// `deploymentConfiguration.strategy` as ECS wrote it (`ROLLING`, `BLUE_GREEN`,
    /// `LINEAR`, `CANARY`); empty when ECS gave none (rolling, the default).
    pub strategy: String,
    /// The least time a deployment takes from its bake times and traffic steps (seconds;
    /// 0 for rolling): see [`crate::rollout::strategy::least_rollout_seconds`].
    pub least_rollout_secs: u64,
    /// The part of it spent on traffic steps alone (linear and canary step bakes; no final
    /// bake): the least time before all production traffic is on the new revision, what
    /// `--until traffic` waits for at least.
    pub least_traffic_secs: u64,
}

impl ServiceInfo {
    /// Deployed in stages (blue/green, linear, canary): green runs beside blue through
    /// traffic shifts and a bake time, and `rolloutState` is documented for rolling
    /// deployments only, so whether one is under way is asked of the service deployments.
    pub fn staged(&self) -> bool {
        !self.strategy.is_empty() && self.strategy != "ROLLING"
    }

    /// `cluster/name`, unique across the environment's clusters.
    pub fn key(&self) -> ServiceKey {
        ServiceKey {
            cluster: self.cluster.clone(),
            name: self.name.clone(),
        }
    }
}

/// Identifies a service across clusters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// Cluster name.
    pub cluster: String,
    /// Service name.
    pub name: String,
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.name)
    }
}

/// The last path segment of an ARN like `arn:aws:ecs:R:A:cluster/NAME`; the input itself
/// when it is not an ARN (DescribeServices may be given names).
pub fn name_from_arn(arn: &str) -> &str {
    if arn.starts_with("arn:") {
        arn.rsplit('/').next().unwrap_or(arn)
    } else {
        arn
    }
}

// ---- ECS: deployments and tasks ---------------------------------------------------------

/// One deployment of a service, as `DescribeServices` reported it.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct DeploymentObs {
    /// `ecs-svc/<digits>`.
    pub id: String,
    /// `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `IN_PROGRESS`, `COMPLETED`, `FAILED` (empty when ECS gave none).
    pub rollout_state: String,
    /// `rolloutStateReason`.
    pub reason: String,
    /// Desired task count of this deployment.
    pub desired: i32,
    /// Running task count.
    pub running: i32,
    /// Pending task count.
    pub pending: i32,
    /// Failed task launches (circuit-breaker count).
    pub failed_tasks: i32,
    /// Epoch seconds.
    #[serde(serialize_with = "crate::history::ser_epoch")]
    pub created_at: f64,
    /// Epoch seconds (not in `status --output json`).
    #[serde(skip)]
    pub updated_at: f64,
    /// The task definition it deploys (not in `status --output json`).
    #[serde(skip)]
    pub task_definition_arn: String,
}

/// ECS's status of the deployment that is the service's current target.
const PRIMARY: &str = "PRIMARY";

impl DeploymentObs {
    /// The service's current target (`status` `PRIMARY`).
    pub fn is_primary(&self) -> bool {
        self.status == PRIMARY
    }
}

/// One service as `DescribeServices` reported it: the service, its deployments, its events.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceObs {
    /// Identity, configuration and counts (cluster: the name as asked).
    pub info: ServiceInfo,
    /// Deployments, as ECS lists them (PRIMARY first).
    pub deployments: Vec<DeploymentObs>,
    /// Events, newest first: (epoch seconds, message).
    pub events: Vec<(f64, String)>,
    /// `currentServiceDeployment`: the service deployment in force (an ARN), where ECS
    /// gives it (the service deployments API, since 2025-11).
    pub current_service_deployment: Option<String>,
}

impl ServiceObs {
    /// The PRIMARY deployment, if any: the one place it is looked for.
    pub fn primary(&self) -> Option<&DeploymentObs> {
        self.deployments.iter().find(|d| d.is_primary())
    }

    /// Whether the PRIMARY is a deployment-circuit-breaker rollback in progress: ECS
    /// started it itself and it reuses the id of the deployment before the failed one.
    ///
    /// DescribeServices has no field for it. The structural signal: the PRIMARY is
    /// `IN_PROGRESS` while another listed deployment's rollout `FAILED`, on a service whose
    /// breaker has rollback on. Fallback, once the failed deployment has left the list:
    /// ECS's wording in the PRIMARY's `rolloutStateReason` ("ECS deployment circuit
    /// breaker: rolling back to deploymentId ecs-svc/ID."), which is text, not contract.
    pub fn rolling_back(&self) -> bool {
        let Some(primary) = self.primary() else {
            return false;
        };
        let breaker_rolls_back = matches!(self.info.circuit_breaker, Some((true, true)));
        let another_failed = self
            .deployments
            .iter()
            .any(|d| !d.is_primary() && d.rollout_state == "FAILED");
        let structural =
            primary.rollout_state == "IN_PROGRESS" && breaker_rolls_back && another_failed;
        structural || primary.reason.contains("rolling back")
    }
}

/// One service deployment as `ListServiceDeployments` reported it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDeploymentObs {
    /// `serviceDeploymentArn`.
    pub arn: String,
    /// `PENDING`, `IN_PROGRESS`, `STOP_REQUESTED`, `ROLLBACK_REQUESTED`,
    /// `ROLLBACK_IN_PROGRESS`, `SUCCESSFUL`, `STOPPED`, `ROLLBACK_SUCCESSFUL`,
    /// `ROLLBACK_FAILED`.
    pub status: String,
    /// `startedAt` (else `createdAt`), epoch seconds (0: not given).
    pub started_at: f64,
}

/// The service deployment statuses of a deployment still under way.
pub const SERVICE_DEPLOYMENT_UNDER_WAY: [&str; 5] = [
    "PENDING",
    "IN_PROGRESS",
    "STOP_REQUESTED",
    "ROLLBACK_REQUESTED",
    "ROLLBACK_IN_PROGRESS",
];

impl ServiceDeploymentObs {
    /// Still under way (not finished, stopped or rolled back).
    pub fn under_way(&self) -> bool {
        SERVICE_DEPLOYMENT_UNDER_WAY.contains(&self.status.as_str())
    }
}

/// One lifecycle hook run of a service deployment (`lifecycleHookDetails[]`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct HookObs {
    /// `hookId`: what `ContinueServiceDeployment` names.
    pub id: String,
    /// `PAUSE` or `AWS_LAMBDA`.
    pub target_type: String,
    /// `AWAITING_ACTION`, `IN_PROGRESS`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`.
    pub status: String,
}

/// One service deployment as `DescribeServiceDeployments` reported it: the whole record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDeploymentRecord {
    /// `serviceDeploymentArn`.
    pub arn: String,
    /// `status` (see [`ServiceDeploymentObs::status`]).
    pub status: String,
    /// `statusReason` (empty when none).
    pub status_reason: String,
    /// `lifecycleStage` (empty for rolling deployments, which have none).
    pub lifecycle_stage: String,
    /// `targetServiceRevision.requestedProductionTrafficWeight` (staged deployments only).
    pub production_weight: Option<f64>,
    /// `targetServiceRevision.requestedTestTrafficWeight` (staged deployments only).
    pub test_weight: Option<f64>,
    /// `deploymentConfiguration.bakeTimeInMinutes` of the deployment itself (the service's
    /// configuration may have changed since it started). ECS gives no moment the bake
    /// began: see [`crate::status::StagedStatus::traffic_shifted_at`].
    pub bake_minutes: Option<i32>,
    /// `lifecycleHookDetails`.
    pub hooks: Vec<HookObs>,
    /// `rollback.reason`, when ECS rolled the deployment back.
    pub rollback_reason: Option<String>,
    /// `deploymentCircuitBreaker.status` (`DISABLED`, `MONITORING`, `TRIGGERED`, ...).
    pub breaker_status: String,
    /// `deploymentCircuitBreaker.failureCount`: failed launches of the target revision.
    pub failure_count: i32,
    /// `alarms.triggeredAlarmNames`.
    pub triggered_alarms: Vec<String>,
    /// `startedAt` (else `createdAt`), epoch seconds (0: not given).
    pub started_at: f64,
}

/// One task as `DescribeTasks` reported it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskObs {
    /// Task ARN.
    pub arn: String,
    /// `startedBy`: the deployment id for service tasks.
    pub started_by: String,
    /// `lastStatus`.
    pub last_status: String,
    /// `desiredStatus`.
    pub desired_status: String,
    /// `createdAt`, epoch seconds.
    #[serde(serialize_with = "crate::history::ser_epoch")]
    pub created_at: f64,
    /// `startedAt`, epoch seconds, when it has started.
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub started_at: Option<f64>,
    /// Task definition ARN.
    pub task_definition_arn: String,
    /// `group`: `service:NAME` for a service's tasks.
    #[serde(skip)]
    pub group: String,
    /// Per container: its name and the image digest ECS reports (`imageDigest`).
    #[serde(skip)]
    pub containers: Vec<(String, Option<String>)>,
}

impl TaskObs {
    /// The 32-hex task id at the end of the ARN.
    pub fn id(&self) -> &str {
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

// ---- ECR ---------------------------------------------------------------------------------

/// One image id of a `BatchGetImage`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageId {
    /// By tag.
    Tag(String),
    /// By digest.
    Digest(String),
}

/// One image as `BatchGetImage` returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageObs {
    /// Its digest.
    pub digest: String,
    /// `imageManifestMediaType`.
    pub media_type: Option<String>,
    /// The manifest's text.
    pub manifest: String,
}

// ---- Secrets Manager ---------------------------------------------------------------------

/// What `DescribeSecret` says about a secret (no value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretInfo {
    /// Full ARN.
    pub arn: String,
    /// Name.
    pub name: String,
    /// Version holding AWSCURRENT.
    pub current: Option<String>,
    /// Version holding AWSPREVIOUS.
    pub previous: Option<String>,
    /// Labelled versions and their stages.
    pub stages: BTreeMap<String, Vec<String>>,
    /// Rotation is configured and on.
    pub rotation_enabled: bool,
    /// Scheduled for deletion at (epoch seconds).
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub deleted_date: Option<f64>,
    /// Managed by another AWS service.
    pub owning_service: Option<String>,
    /// Last change to the secret (a write or a label move), epoch seconds.
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub last_changed: Option<f64>,
    /// `LastRotatedDate`: when a rotation last finished, epoch seconds.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::history::ser_opt_epoch"
    )]
    pub last_rotated: Option<f64>,
}

impl SecretInfo {
    /// The version carrying `AWSPENDING` when it is not the current one: a rotation (or a
    /// staged write) is under way and will move `AWSCURRENT`.
    pub fn pending_other(&self) -> Option<&str> {
        self.stages
            .iter()
            .find(|(v, s)| {
                s.iter().any(|x| x == "AWSPENDING") && Some(v.as_str()) != self.current.as_deref()
            })
            .map(|(v, _)| v.as_str())
    }
}

/// One version, as `ListSecretVersionIds` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionInfo {
    /// Version id.
    pub id: String,
    /// Its staging labels (empty: deprecated).
    pub stages: Vec<String>,
    /// Creation date, epoch seconds (RFC 3339 in JSON).
    #[serde(serialize_with = "crate::history::ser_opt_epoch")]
    pub created: Option<f64>,
}
