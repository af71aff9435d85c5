//! ECS: clusters, task definitions, services, tasks and the rolling-deployment simulation.
//!
//! A discrete-event simulation on virtual time. Every task phase change (PROVISIONING ->
//! PENDING -> RUNNING -> healthy; DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED) is
//! an event at an exact virtual time on a heap; [`Ecs::advance`] processes them in time order
//! and, after each instant, runs the scheduler of every service they touched. Operations run
//! the scheduler at the time of the call. Ids come from the seeded random source, so a run
//! depends only on the seed and on when calls happen.
//!
//! The scheduler, per service: launch tasks for the PRIMARY deployment while the tasks not
//! told to stop stay within `floor(desired * maximumPercent / 100)`; stop tasks of older
//! deployments (not-yet-healthy ones first) while the healthy RUNNING tasks stay at or above
//! `ceil(desired * minimumHealthyPercent / 100)`; repeat until nothing changes. A deployment
//! completes when its tasks are all RUNNING and healthy and every older deployment's tasks
//! are gone (draining included).
//!
//! At placement a task resolves every Secrets Manager reference of its task definition
//! through [`SecretSource`] and records the secret ARN, name, version id and json key (never
//! the value); [`HealthRule`]s are evaluated then too. Choices where ECS was not observed:
//! - a desired-count change alone scales the PRIMARY deployment (no new deployment), as ECS
//!   does;
//! - a circuit-breaker rollback deployment is not itself subject to the breaker: it retries
//!   until it works (so it keeps failing while a bad `AWSCURRENT` stays), and it adopts the
//!   remaining tasks of the deployment it rolls back to (same id, same task definition);
//! - once one task of a deployment has passed its health check, its `failedTasks` resets to
//!   0 and the breaker stops evaluating it (API reference, `Deployment.failedTasks`);
//! - a [`HealthEffect::AppRejectsValue`] task stops before RUNNING with `Essential container
//!   in task exited` / `EssentialContainerExited` (the pair ecs-observed.md lists); a
//!   [`HealthEffect::SecretUnavailable`] task stops there with `TaskFailedToStart` and a
//!   `ResourceInitializationError` reason, as when a secret cannot be fetched.
//!
//! Deployment strategies (`strategy.rs`): `BLUE_GREEN`, `LINEAR` and `CANARY` services run
//! the staged lifecycle of `staged.rs` instead of the rolling scheduler while a deployment
//! is in progress (green beside blue, traffic weights, bake, clean-up), with lifecycle
//! hooks and deployment alarms (`hooks.rs`) and rollbacks to blue (`rollback.rs`). Every
//! deployment, rolling included, has a service revision and a service deployment record
//! (`service_deployments.rs`), served by the service deployments API
//! (`deployment_api.rs`).

mod deployment_api;
mod hooks;
mod model;
mod ops;
mod rollback;
mod service_deployments;
mod sim;
mod staged;
mod strategy;
#[cfg(test)]
mod tests;

pub use hooks::{HookResult, HookRule, ALARM_STATES};

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::limits;
use crate::secrets::SecretSource;
use crate::{AwsError, Ctx, OpResult};

use model::{Cluster, Service, Task};
use sim::Ev;

/// How long a service's tasks take in each phase, in virtual seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timing {
    /// PROVISIONING -> PENDING.
    pub provisioning: f64,
    /// PENDING -> RUNNING (image pull, secret fetch).
    pub pending: f64,
    /// RUNNING -> healthy (or failing its health check, under a health rule).
    pub health_check: f64,
    /// Connection draining of a replaced task (DEACTIVATING), the target group's
    /// deregistration delay.
    pub draining: f64,
    /// STOPPING/DEPROVISIONING -> STOPPED.
    pub stopping: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            provisioning: 5.0,
            pending: 20.0,
            health_check: 10.0,
            draining: 30.0,
            stopping: 5.0,
        }
    }
}

impl Timing {
    /// Checks every phase is within [`limits::PHASE_SECONDS`]; errors name the key as
    /// `{prefix}.pending` etc.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        for (key, v) in [
            ("provisioning", self.provisioning),
            ("pending", self.pending),
            ("health_check", self.health_check),
            ("draining", self.draining),
            ("stopping", self.stopping),
        ] {
            limits::PHASE_SECONDS.check(&format!("{prefix}.{key}"), v)?;
        }
        Ok(())
    }
}

impl HealthRule {
    /// Checks the rule's numbers; errors name the key as `{prefix}.probability`.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        limits::PROBABILITY.check_opt(&format!("{prefix}.probability"), self.probability)
    }
}

/// A rule that makes a service's tasks fail: "the database does not accept the new
/// password yet".
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthRule {
    /// Cluster name; any when absent.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Service name; any when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// Secret (name or ARN) whose resolved value or version triggers the rule.
    #[serde(default)]
    pub secret: Option<String>,
    /// Triggers when the secret resolved to this value.
    #[serde(default)]
    pub value: Option<String>,
    /// Triggers when the secret resolved to this version id.
    #[serde(default)]
    pub version_id: Option<String>,
    /// Probability that a matching task is hit (1.0 when absent).
    #[serde(default)]
    pub probability: Option<f64>,
    /// What happens to a task hit by the rule.
    pub effect: HealthEffect,
}

/// Debug without the value: a rule's `value` is a secret value.
impl std::fmt::Debug for HealthRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthRule")
            .field("cluster", &self.cluster)
            .field("service", &self.service)
            .field("secret", &self.secret)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .field("version_id", &self.version_id)
            .field("probability", &self.probability)
            .field("effect", &self.effect)
            .finish()
    }
}

/// What a [`HealthRule`] does to a task, named after what it models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthEffect {
    /// `app_rejects_value`: the application reads the value, rejects it and exits before
    /// the task is RUNNING: stop code `EssentialContainerExited`, reason `Essential
    /// container in task exited`. `fail_to_start` is its older spelling, still accepted.
    #[serde(alias = "fail_to_start")]
    AppRejectsValue,
    /// `secret_unavailable`: ECS cannot fetch the secret at launch (the execution role may
    /// not read it): the task stops before RUNNING with stop code `TaskFailedToStart` and a
    /// `ResourceInitializationError: unable to pull secrets ...` reason, as for a secret
    /// that does not resolve.
    SecretUnavailable,
    /// `fail_health_check`: the task reaches RUNNING, then fails its container health
    /// check and is stopped.
    FailHealthCheck,
}

/// All ECS state of the account.
///
/// Everything lives in arenas indexed by `usize` (clusters, services, tasks) so that the
/// simulation's per-service and per-cluster indexes are cheap sets of integers.
#[derive(Debug, Default)]
pub struct Ecs {
    clusters: Vec<Cluster>,
    cluster_by_name: HashMap<String, usize>,
    services: Vec<Service>,
    /// family -> revisions (index = revision - 1), each the rendered `taskDefinition`.
    task_defs: BTreeMap<String, Vec<Value>>,
    tasks: Vec<Task>,
    /// Task ARN and bare task id -> task index.
    task_index: HashMap<String, usize>,
    heap: BinaryHeap<std::cmp::Reverse<Ev>>,
    seq: u64,
    next_uid: u64,
    /// Services whose scheduler must run at the current simulated time.
    dirty: BTreeSet<usize>,
    rules: Vec<HealthRule>,
    default_timing: Timing,
    /// The simulation's own "now": the time of the event being processed.
    now: f64,
    /// Service revisions, and their index by ARN.
    revisions: Vec<service_deployments::Revision>,
    revision_index: HashMap<String, usize>,
    /// Service deployments, and their index by ARN.
    sds: Vec<service_deployments::SvcDeployment>,
    sd_index: HashMap<String, usize>,
    /// CloudWatch alarm states by alarm name.
    alarms: BTreeMap<String, String>,
    /// Answers of `AWS_LAMBDA` lifecycle hooks.
    hook_rules: Vec<HookRule>,
}

impl Ecs {
    /// Runs one ECS operation.
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        operation: &str,
        body: &Value,
    ) -> OpResult {
        // Operations happen at ctx.now; the simulation cursor follows so that tasks launched by
        // this call get the call's time.
        if ctx.now > self.now {
            self.now = ctx.now;
        }
        let result = self.dispatch(ctx, secrets, operation, body);
        // The scheduler reacts at the time of the call (which may be in the past when a
        // scenario is built), not at the next advance.
        self.run_dirty(ctx, secrets);
        result
    }

    /// Runs the simulation forward to `ctx.now`: processes every task phase change due by then,
    /// in time order, running the scheduler of each affected service after each one.
    pub fn advance(&mut self, ctx: &mut Ctx<'_>, secrets: &dyn SecretSource) {
        self.run_until(ctx, secrets);
    }

    /// Replaces the health rules.
    pub fn set_health_rules(&mut self, rules: Vec<HealthRule>) {
        self.rules = rules;
    }

    /// Sets the timing of every service created from now on without its own.
    pub fn set_default_timing(&mut self, timing: Timing) {
        self.default_timing = timing;
    }

    /// Sets one service's timing; it applies to every later phase change of its tasks,
    /// running ones included. `Err` if the cluster or
    /// service is unknown.
    pub fn set_service_timing(
        &mut self,
        cluster: &str,
        service: &str,
        timing: Timing,
    ) -> Result<(), AwsError> {
        let c = self.cluster_idx(cluster)?;
        let s = self.service_idx(c, service)?;
        self.services[s].timing = timing;
        Ok(())
    }

    /// A task's service revision ARN and the traffic it receives now: `production` (its
    /// revision has production weight and the task is RUNNING, healthy and not told to
    /// stop), else `test` (the same with test weight), else `none`.
    fn task_traffic(&self, t: &Task) -> (Option<&str>, &'static str) {
        let rev = t.revision.map(|r| self.revisions[r].arn.as_str());
        let (Some(s), Some(uid)) = (t.service, t.dep_uid) else {
            return (rev, "none");
        };
        let Some(d) = self.services[s].deployments.iter().find(|d| d.uid == uid) else {
            return (rev, "none");
        };
        let serving =
            t.desired_running && t.last == model::Status::Running && t.healthy == Some(true);
        let traffic = if !serving {
            "none"
        } else if d.prod_weight > 0.0 {
            "production"
        } else if d.test_weight > 0.0 {
            "test"
        } else {
            "none"
        };
        (rev, traffic)
    }

    /// State as JSON, the ground truth tests compare against: `clusters` (counts, service
    /// names), `services` (each with its `cluster`, counts, `deployments` as DescribeServices
    /// shows them and the 20 newest event messages), `taskDefinitions` (ARNs) and `tasks`: every
    /// task not yet expired (stopped less than an hour ago or still alive) with what it resolved
    /// at launch (secret ARNs, names, version ids and json keys; never values).
    pub fn snapshot(&self) -> Value {
        let clusters: Vec<Value> = self
            .clusters
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "arn": c.arn,
                    "runningTasksCount": c.counts.running,
                    "pendingTasksCount": c.counts.pending,
                    "services": c.services.iter().map(|&s| &self.services[s].name).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut by_service: Vec<Vec<usize>> = vec![Vec::new(); self.services.len()];
        for (i, d) in self.sds.iter().enumerate() {
            by_service[d.service].push(i);
        }
        let services: Vec<Value> = self
            .services
            .iter()
            .enumerate()
            .map(|(si, svc)| {
                let counts = svc.counts();
                let service_deployments: Vec<Value> = by_service[si]
                    .iter()
                    .map(|&i| &self.sds[i])
                    .map(|d| {
                        json!({
                            "arn": d.arn,
                            "status": d.status.as_str(),
                            "lifecycleStage": d.staged.then(|| d.stage.as_str()),
                            "stages": d.stage_log.iter()
                                .map(|(st, at)| json!({"stage": st.as_str(), "at": at}))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let deployments: Vec<Value> = svc
                    .deployments
                    .iter()
                    .enumerate()
                    .map(|(i, d)| d.to_json(i == 0))
                    .collect();
                json!({
                    "cluster": self.clusters[svc.cluster].name,
                    "name": svc.name,
                    "arn": svc.arn,
                    "taskDefinition": svc.task_def,
                    "desiredCount": svc.desired,
                    "runningCount": counts.running,
                    "pendingCount": counts.pending,
                    "deploymentController": svc.controller,
                    "status": svc.status,
                    "strategy": svc.strategy.strategy,
                    "currentServiceDeployment": svc.current_sd.map(|i| &self.sds[i].arn),
                    "serviceDeployments": service_deployments,
                    "deployments": deployments,
                    "events": svc
                        .events
                        .iter()
                        .take(20)
                        .map(|e| json!({"at": e.at, "message": e.message}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let task_definitions: Vec<&Value> = self
            .task_defs
            .values()
            .flatten()
            .filter_map(|td| td.get("taskDefinitionArn"))
            .collect();
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .filter(|t| !t.expired)
            .map(|t| {
                let cluster = &self.clusters[t.cluster].name;
                let service = t.service.map(|s| self.services[s].name.as_str());
                let mut v = t.snapshot(cluster, service);
                let (revision, traffic) = self.task_traffic(t);
                v["serviceRevision"] = json!(revision);
                v["traffic"] = json!(traffic);
                v
            })
            .collect();
        json!({
            "clusters": clusters,
            "services": services,
            "taskDefinitions": task_definitions,
            "tasks": tasks,
        })
    }
}
