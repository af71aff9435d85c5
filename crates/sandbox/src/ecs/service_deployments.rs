//! Service deployments and service revisions (the API since 2024-10): one record per
//! deployment a service starts, whatever its strategy, kept beside `deployments[]`.
//!
//! Operations: `ListServiceDeployments`, `DescribeServiceDeployments`,
//! `StopServiceDeployment`, `ContinueServiceDeployment`, `DescribeServiceRevisions`. Shapes
//! and enums as in the botocore model. Choices where AWS was not observed (inferred):
//! - a deployment superseded by a newer one ends `STOPPED` with the reason
//!   [`SUPERSEDED`]; a deployment that fails without rollback ends `STOPPED` too (the
//!   status enum has no `FAILED`), its reason saying why;
//! - a rollback stays in the same service deployment (`ROLLBACK_IN_PROGRESS`, then
//!   `ROLLBACK_SUCCESSFUL` when the old revision runs alone): no new revision is made;
//! - rolling deployments have no `lifecycleStage` and no traffic weights.

use serde_json::{json, Map, Value};

use super::model::ts;
use super::strategy::{HookAction, Stage};
use super::Ecs;
use crate::secrets::SecretSource;
use crate::Ctx;

/// `statusReason` of a deployment superseded by a newer one (inferred wording).
pub(crate) const SUPERSEDED: &str =
    "Service deployment stopped: a newer service deployment started.";

/// `ServiceDeploymentStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SdStatus {
    InProgress,
    Successful,
    Stopped,
    RollbackInProgress,
    RollbackSuccessful,
}

impl SdStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SdStatus::InProgress => "IN_PROGRESS",
            SdStatus::Successful => "SUCCESSFUL",
            SdStatus::Stopped => "STOPPED",
            SdStatus::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            SdStatus::RollbackSuccessful => "ROLLBACK_SUCCESSFUL",
        }
    }

    pub(crate) fn finished(self) -> bool {
        !matches!(self, SdStatus::InProgress | SdStatus::RollbackInProgress)
    }
}

/// A service revision: what a deployment runs.
#[derive(Debug, Clone)]
pub(crate) struct Revision {
    pub arn: String,
    pub service: usize,
    pub task_def: String,
    pub created_at: f64,
    pub launch_type: String,
    /// loadBalancers, networkConfiguration, ... as the service had them.
    pub extra: Map<String, Value>,
    /// Per container of its task definition whose version consistency is enabled (the
    /// default): (name, image as written, the digest it resolved to when the revision was
    /// made). Its tasks launch with these digests, whatever the tags point to later.
    pub images: Vec<(String, String, Option<String>)>,
}

/// `DeploymentLifecycleHookStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookStatus {
    AwaitingAction,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
}

impl HookStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HookStatus::AwaitingAction => "AWAITING_ACTION",
            HookStatus::InProgress => "IN_PROGRESS",
            HookStatus::Succeeded => "SUCCEEDED",
            HookStatus::Failed => "FAILED",
            HookStatus::TimedOut => "TIMED_OUT",
        }
    }
}

/// One invocation of a lifecycle hook at one stage.
#[derive(Debug, Clone)]
pub(crate) struct HookRun {
    pub hook_id: String,
    pub pause: bool,
    pub target_arn: Option<String>,
    pub stage: super::strategy::HookStage,
    pub status: HookStatus,
    pub expires_at: f64,
    pub timeout_action: HookAction,
    /// A Lambda's answer: (when, succeeded); `None`: it never answers.
    pub answer: Option<(f64, bool)>,
}

/// A rollback: `Rollback` of the API.
#[derive(Debug, Clone)]
pub(crate) struct RollbackInfo {
    pub reason: String,
    pub started_at: f64,
    pub revision: usize,
}

/// One service deployment.
#[derive(Debug, Clone)]
pub(crate) struct SvcDeployment {
    pub arn: String,
    pub service: usize,
    pub created_at: f64,
    pub finished_at: Option<f64>,
    pub stopped_at: Option<f64>,
    pub updated_at: f64,
    pub status: SdStatus,
    pub reason: Option<String>,
    /// `deploymentConfiguration` as it was when the deployment started.
    pub config: Value,
    /// Blue/green, linear or canary.
    pub staged: bool,
    pub stage: Stage,
    pub stage_since: f64,
    /// Every stage entered, with when (ground truth for `/_sandbox/state`).
    pub stage_log: Vec<(Stage, f64)>,
    /// Index into the current stage's hook stages whose hooks run now.
    pub hook_phase: usize,
    pub hooks_started: bool,
    /// Production traffic steps done (PRODUCTION_TRAFFIC_SHIFT).
    pub step: usize,
    pub step_since: f64,
    pub target_rev: usize,
    /// uid of the `deployments[]` entry of the target revision (green).
    pub target_dep: u64,
    pub source_revs: Vec<usize>,
    /// uid of the entry that keeps production traffic until the shift (blue).
    pub blue_dep: Option<u64>,
    pub hooks: Vec<HookRun>,
    pub rollback: Option<RollbackInfo>,
    pub breaker_enabled: bool,
    pub breaker_tripped: bool,
    pub breaker_threshold: u32,
    /// Failed launches of the target revision (kept after its entry leaves the list).
    pub failures: u32,
    pub alarms_enabled: bool,
    pub alarm_names: Vec<String>,
    pub triggered_alarms: Vec<String>,
}

/// 22 characters of [A-Za-z0-9_-], like a service deployment id.
fn short_id(ctx: &mut Ctx<'_>) -> String {
    use rand::Rng;
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..22)
        .map(|_| ABC[ctx.rng.random_range(0..ABC.len())] as char)
        .collect()
}

impl Ecs {
    /// Records a new service revision of service `s` running its current task definition.
    pub(crate) fn new_revision(
        &mut self,
        ctx: &mut Ctx<'_>,
        sources: &dyn SecretSource,
        s: usize,
    ) -> usize {
        use rand::Rng;
        let n = ctx.rng.random_range(0..10_000_000_000_000_000_000u64);
        let svc = &self.services[s];
        let cluster = &self.clusters[svc.cluster].name;
        let arn = format!(
            "arn:aws:ecs:{}:{}:service-revision/{cluster}/{}/{n:019}",
            ctx.region, ctx.account, svc.name,
        );
        let mut extra = Map::new();
        for k in ["loadBalancers", "networkConfiguration", "serviceRegistries"] {
            if let Some(v) = svc.extra.get(k) {
                extra.insert(k.to_string(), v.clone());
            }
        }
        let images = self
            .find_task_def(&svc.task_def)
            .map(super::sim::container_images)
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c.consistent)
            .map(|c| {
                let digest = sources.resolve_image(&c.image, ctx.region, ctx.account);
                (c.name, c.image, digest)
            })
            .collect();
        self.revisions.push(super::service_deployments::Revision {
            images,
            arn: arn.clone(),
            service: s,
            task_def: svc.task_def.clone(),
            created_at: self.now,
            launch_type: svc.launch_type.clone(),
            extra,
        });
        self.revision_index.insert(arn, self.revisions.len() - 1);
        self.revisions.len() - 1
    }

    /// Records a new service deployment; older unfinished ones of the service end
    /// `STOPPED` (superseded).
    pub(crate) fn new_service_deployment(
        &mut self,
        ctx: &mut Ctx<'_>,
        s: usize,
        target_rev: usize,
        target_dep: u64,
    ) -> usize {
        let now = self.now;
        for sd in self.sds.iter_mut().filter(|d| d.service == s) {
            if !sd.status.finished() {
                sd.status = SdStatus::Stopped;
                sd.reason = Some(SUPERSEDED.to_string());
                sd.stopped_at = Some(now);
                sd.finished_at = Some(now);
                sd.updated_at = now;
                for h in &mut sd.hooks {
                    if matches!(
                        h.status,
                        HookStatus::AwaitingAction | HookStatus::InProgress
                    ) {
                        h.status = HookStatus::Failed;
                    }
                }
            }
        }
        let id = short_id(ctx);
        let svc = &self.services[s];
        let cluster = &self.clusters[svc.cluster].name;
        let arn = format!(
            "arn:aws:ecs:{}:{}:service-deployment/{cluster}/{}/{id}",
            ctx.region, ctx.account, svc.name,
        );
        let source_revs: Vec<usize> = svc
            .deployments
            .iter()
            .filter(|d| d.uid != target_dep && d.counts.present > 0)
            .map(|d| d.revision)
            .collect();
        let staged = svc.strategy.strategy.staged();
        let alarms = svc.strategy.alarms.clone();
        let threshold = (svc.desired.div_ceil(2)).clamp(3, 200);
        self.sds.push(SvcDeployment {
            arn: arn.clone(),
            service: s,
            created_at: now,
            finished_at: None,
            stopped_at: None,
            updated_at: now,
            status: SdStatus::InProgress,
            reason: None,
            config: svc.deployment_configuration(),
            staged,
            stage: Stage::PreScaleUp,
            stage_since: now,
            stage_log: Vec::new(),
            hook_phase: 0,
            hooks_started: false,
            step: 0,
            step_since: now,
            target_rev,
            target_dep,
            source_revs,
            blue_dep: None,
            hooks: Vec::new(),
            rollback: None,
            breaker_enabled: svc.breaker,
            breaker_tripped: false,
            breaker_threshold: threshold,
            failures: 0,
            alarms_enabled: alarms.as_ref().is_some_and(|a| a.enable),
            alarm_names: alarms.map(|a| a.alarm_names).unwrap_or_default(),
            triggered_alarms: Vec::new(),
        });
        let idx = self.sds.len() - 1;
        self.sd_index.insert(arn, idx);
        self.services[s].current_sd = Some(idx);
        idx
    }

    /// Ends a service deployment.
    pub(crate) fn finish_sd(&mut self, sd: usize, status: SdStatus, reason: Option<String>) {
        let now = self.now;
        let d = &mut self.sds[sd];
        if d.status.finished() {
            return;
        }
        d.status = status;
        if reason.is_some() {
            d.reason = reason;
        }
        d.finished_at = Some(now);
        d.updated_at = now;
        if status == SdStatus::Stopped {
            d.stopped_at = Some(now);
        }
    }

    fn rev_summary(&self, sd: &SvcDeployment, rev: usize) -> Value {
        let svc = &self.services[sd.service];
        let deps: Vec<&super::model::Deployment> = svc
            .deployments
            .iter()
            .filter(|d| d.revision == rev)
            .collect();
        let running: u32 = deps.iter().map(|d| d.counts.running).sum();
        let pending: u32 = deps.iter().map(|d| d.counts.pending).sum();
        let requested: u32 = deps.iter().map(|d| d.desired).sum();
        let mut m = Map::new();
        m.insert("arn".into(), json!(self.revisions[rev].arn));
        m.insert("requestedTaskCount".into(), json!(requested));
        m.insert("runningTaskCount".into(), json!(running));
        m.insert("pendingTaskCount".into(), json!(pending));
        if sd.staged {
            let (p, t) = deps
                .first()
                .map(|d| (d.prod_weight, d.test_weight))
                .unwrap_or((0.0, 0.0));
            m.insert("requestedProductionTrafficWeight".into(), json!(p));
            m.insert("requestedTestTrafficWeight".into(), json!(t));
        }
        Value::Object(m)
    }

    pub(crate) fn sd_to_json(&self, i: usize) -> Value {
        let sd = &self.sds[i];
        let svc = &self.services[sd.service];
        let mut m = Map::new();
        m.insert("serviceDeploymentArn".into(), json!(sd.arn));
        m.insert("serviceArn".into(), json!(svc.arn));
        m.insert("clusterArn".into(), json!(self.clusters[svc.cluster].arn));
        m.insert("createdAt".into(), ts(sd.created_at));
        m.insert("startedAt".into(), ts(sd.created_at));
        m.insert("updatedAt".into(), ts(sd.updated_at));
        if let Some(t) = sd.finished_at {
            m.insert("finishedAt".into(), ts(t));
        }
        if let Some(t) = sd.stopped_at {
            m.insert("stoppedAt".into(), ts(t));
        }
        m.insert(
            "sourceServiceRevisions".into(),
            Value::Array(
                sd.source_revs
                    .iter()
                    .map(|&r| self.rev_summary(sd, r))
                    .collect(),
            ),
        );
        m.insert(
            "targetServiceRevision".into(),
            self.rev_summary(sd, sd.target_rev),
        );
        m.insert("status".into(), json!(sd.status.as_str()));
        if let Some(r) = &sd.reason {
            m.insert("statusReason".into(), json!(r));
        }
        if sd.staged {
            m.insert("lifecycleStage".into(), json!(sd.stage.as_str()));
            let hooks: Vec<Value> = sd
                .hooks
                .iter()
                .map(|h| {
                    let mut o = Map::new();
                    o.insert("hookId".into(), json!(h.hook_id));
                    o.insert(
                        "targetType".into(),
                        json!(if h.pause { "PAUSE" } else { "AWS_LAMBDA" }),
                    );
                    if let Some(a) = &h.target_arn {
                        o.insert("targetArn".into(), json!(a));
                    }
                    o.insert("status".into(), json!(h.status.as_str()));
                    o.insert("expiresAt".into(), ts(h.expires_at));
                    o.insert("timeoutAction".into(), json!(h.timeout_action.as_str()));
                    Value::Object(o)
                })
                .collect();
            m.insert("lifecycleHookDetails".into(), Value::Array(hooks));
        }
        m.insert("deploymentConfiguration".into(), sd.config.clone());
        if let Some(r) = &sd.rollback {
            m.insert(
                "rollback".into(),
                json!({"reason": r.reason, "startedAt": ts(r.started_at),
                       "serviceRevisionArn": self.revisions[r.revision].arn}),
            );
        }
        let monitor = |enabled: bool, tripped: bool| {
            if !enabled {
                "DISABLED"
            } else if tripped {
                "TRIGGERED"
            } else if sd.status.finished() {
                "MONITORING_COMPLETE"
            } else {
                "MONITORING"
            }
        };
        let failures = sd.failures;
        m.insert(
            "deploymentCircuitBreaker".into(),
            json!({"status": monitor(sd.breaker_enabled, sd.breaker_tripped),
                   "failureCount": failures, "threshold": sd.breaker_threshold}),
        );
        m.insert(
            "alarms".into(),
            json!({"status": monitor(sd.alarms_enabled, !sd.triggered_alarms.is_empty()),
                   "alarmNames": sd.alarm_names, "triggeredAlarmNames": sd.triggered_alarms}),
        );
        Value::Object(m)
    }
}
