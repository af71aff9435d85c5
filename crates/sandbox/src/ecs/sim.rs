//! The discrete-event simulation: task phase changes on an event heap, the service scheduler
//! (rolling within min/max percent), the circuit breaker and deployment completion.

use std::cmp::{Ordering, Reverse};

use rand::Rng;
use serde_json::Value;

use super::model::{Counts, Deployment, Fate, Rollout, Status, Task, TaskSecret};
use super::{Ecs, HealthEffect, HealthRule, Timing};
use crate::secrets::{Resolved, SecretSource};
use crate::Ctx;

/// How long a stopped task stays listable (ECS keeps them about an hour).
const STOPPED_VISIBLE: f64 = 3600.0;
/// A deployment of a desired-0 service completes after this long.
const ZERO_DEPLOYMENT: f64 = 90.0;
/// Shortest phase, so that zero timings cannot make a failing service spin at one instant.
const MIN_PHASE: f64 = 0.001;
/// Most service events kept.
const MAX_EVENTS: usize = 100;
const TROUBLESHOOTING: &str =
    "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";

/// Why a deployment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    Breaker,
    Alarm,
}

/// A scheduled simulation event.
#[derive(Debug, Clone)]
pub(crate) struct Ev {
    pub(crate) at: f64,
    seq: u64,
    kind: EvKind,
}

impl PartialEq for Ev {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ev {
    fn cmp(&self, other: &Self) -> Ordering {
        // Same-time events run in the order they were scheduled: determinism.
        self.at.total_cmp(&other.at).then(self.seq.cmp(&other.seq))
    }
}

#[derive(Debug, Clone, Copy)]
enum EvKind {
    Task {
        idx: usize,
        gen: u32,
        step: Step,
    },
    /// A desired-0 deployment may complete now.
    Wake {
        svc: usize,
    },
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Provisioned,
    Started,
    HealthCheck,
    Drained,
    ExecStopped,
    Stopped,
    Expire,
}

/// Where a new task comes from.
pub(crate) struct Launch<'a> {
    pub cluster: usize,
    pub service: Option<usize>,
    pub dep_uid: Option<u64>,
    pub revision: Option<usize>,
    pub started_by: Option<String>,
    pub group: String,
    pub task_def: &'a Value,
    pub launch_type: String,
    pub timing: Timing,
}

/// One container of a task definition, as image resolution sees it.
pub(crate) struct ContainerImage {
    pub name: String,
    pub image: String,
    /// `versionConsistency` is not `disabled`: the tag resolves once per deployment.
    pub consistent: bool,
}

/// Every container of a task definition with its image, in order.
pub(crate) fn container_images(td: &Value) -> Vec<ContainerImage> {
    td.get("containerDefinitions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| ContainerImage {
                    name: c
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    image: c
                        .get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    consistent: c.get("versionConsistency").and_then(Value::as_str)
                        != Some("disabled"),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every secret and parameter reference of a task definition, in container order.
pub(crate) fn secret_refs(td: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let containers = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for c in containers {
        let lists = [
            c.get("secrets"),
            c.get("logConfiguration")
                .and_then(|l| l.get("secretOptions")),
        ];
        for list in lists.into_iter().flatten() {
            for s in list.as_array().map(Vec::as_slice).unwrap_or_default() {
                if let Some(v) = s.get("valueFrom").and_then(Value::as_str) {
                    out.push(v.to_string());
                }
            }
        }
        if let Some(v) = c
            .get("repositoryCredentials")
            .and_then(|r| r.get("credentialsParameter"))
            .and_then(Value::as_str)
        {
            out.push(v.to_string());
        }
    }
    out
}

/// The text ECS puts in stoppedReason when a Parameter Store parameter cannot be fetched.
fn parameter_failure(err: &str) -> String {
    format!(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource \
retrieval failed: unable to retrieve secrets from ssm: {err}"
    )
}

/// The text ECS puts in stoppedReason when a secret cannot be fetched.
fn secret_failure(err: &str) -> String {
    // API errors are retried by the agent and say so; local ones (a missing json key) are not.
    let api_error = err.split(':').next().is_some_and(|code| {
        code.ends_with("Exception") || code == "DecryptionFailure" || code == "InternalServiceError"
    });
    let detail = if api_error {
        format!("service call has been retried 5 time(s): {err}")
    } else {
        err.to_string()
    };
    format!(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource \
retrieval failed: unable to retrieve secret from asm: {detail}"
    )
}

/// The error Secrets Manager gives a task execution role that may not read a secret.
fn access_denied(account: &str, task_id: &str, secret_arn: &str) -> String {
    format!(
        "AccessDeniedException: User: arn:aws:sts::{account}:assumed-role/ecsTaskExecutionRole/\
{task_id} is not authorized to perform: secretsmanager:GetSecretValue on resource: {secret_arn} \
because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )
}

/// Whether the rule's secret, value and version filters name this resolved secret.
fn rule_names(rule: &HealthRule, r: &Resolved) -> bool {
    rule.secret.as_deref().is_none_or(|s| secret_matches(s, r))
        && rule.value.as_deref().is_none_or(|v| v == r.value)
        && rule.version_id.as_deref().is_none_or(|v| v == r.version_id)
}

fn secret_matches(wanted: &str, r: &Resolved) -> bool {
    wanted == r.name
        || wanted == r.secret_arn
        || (wanted.contains(":secret:") && r.secret_arn.starts_with(wanted))
}

fn rule_hits(rule: &HealthRule, cluster: &str, service: Option<&str>, got: &[Resolved]) -> bool {
    if rule.cluster.as_deref().is_some_and(|c| c != cluster) {
        return false;
    }
    if let Some(s) = &rule.service {
        if Some(s.as_str()) != service {
            return false;
        }
    }
    if rule.secret.is_none() && rule.value.is_none() && rule.version_id.is_none() {
        return true;
    }
    got.iter().any(|r| rule_names(rule, r))
}

/// 32 lowercase hex digits, like an ECS task id.
pub(crate) fn hex_id(ctx: &mut Ctx<'_>) -> String {
    format!(
        "{:016x}{:016x}",
        ctx.rng.random::<u64>(),
        ctx.rng.random::<u64>()
    )
}

/// `ecs-svc/` and 19 digits (leading zeros occur).
pub(crate) fn deployment_id(ctx: &mut Ctx<'_>) -> String {
    format!(
        "ecs-svc/{:019}",
        ctx.rng.random_range(0..10_000_000_000_000_000_000u64)
    )
}

impl Ecs {
    pub(crate) fn push_wake(&mut self, at: f64, svc: usize) {
        self.push(at, EvKind::Wake { svc });
    }

    fn push(&mut self, at: f64, kind: EvKind) {
        self.seq += 1;
        self.heap.push(Reverse(Ev {
            at,
            seq: self.seq,
            kind,
        }));
    }

    fn push_task(&mut self, idx: usize, after: f64, step: Step) {
        let gen = self.tasks[idx].gen;
        let at = self.now + after.max(0.0);
        self.push(at, EvKind::Task { idx, gen, step });
    }

    pub(crate) fn new_uid(&mut self) -> u64 {
        self.next_uid += 1;
        self.next_uid
    }

    /// Processes everything due by `ctx.now`, then runs the scheduler of the services the
    /// caller's operation touched.
    pub(crate) fn run_until(&mut self, ctx: &mut Ctx<'_>, secrets: &dyn SecretSource) {
        let target = ctx.now;
        while let Some(Reverse(ev)) = self.heap.peek() {
            if ev.at > target {
                break;
            }
            let Some(Reverse(ev)) = self.heap.pop() else {
                break;
            };
            if ev.at > self.now {
                self.now = ev.at;
            }
            self.process(ev.kind);
            // Everything due at the same instant happens before the scheduler looks: tasks
            // that turn healthy together let old ones stop together (one event, not N).
            if self
                .heap
                .peek()
                .is_some_and(|Reverse(next)| next.at <= self.now)
            {
                continue;
            }
            self.run_dirty(ctx, secrets);
        }
        if target > self.now {
            self.now = target;
        }
        self.run_dirty(ctx, secrets);
    }

    /// Runs the scheduler of every dirty service (and of services it dirties in turn).
    pub(crate) fn run_dirty(&mut self, ctx: &mut Ctx<'_>, secrets: &dyn SecretSource) {
        while let Some(s) = self.dirty.pop_first() {
            self.schedule_service(ctx, secrets, s);
        }
    }

    fn process(&mut self, kind: EvKind) {
        match kind {
            EvKind::Wake { svc } => {
                self.dirty.insert(svc);
            }
            EvKind::Task { idx, gen, step } => {
                if self.tasks[idx].gen != gen {
                    return; // superseded (the task was told to stop meanwhile)
                }
                self.task_step(idx, step);
            }
        }
    }

    fn task_step(&mut self, idx: usize, step: Step) {
        let now = self.now;
        let timing = self.timing_of(idx);
        match step {
            Step::Provisioned => {
                let pulls = !matches!(self.tasks[idx].fate, Fate::SecretError(_));
                self.mutate(idx, |t| {
                    t.last = Status::Pending;
                    if pulls {
                        t.pull_started_at = Some(now);
                    }
                });
                self.push_task(idx, timing.pending.max(MIN_PHASE), Step::Started);
            }
            Step::Started => {
                match self.tasks[idx].fate.clone() {
                    Fate::SecretError(reason) => {
                        let svc = self.tasks[idx].service;
                        self.fail(idx, reason.clone(), "TaskFailedToStart");
                        if let Some(s) = svc {
                            let name = self.services[s].name.clone();
                            self.svc_event(
                            s,
                            now,
                            format!(
                                "(service {name}) was unable to place a task. Reason: {reason}. {TROUBLESHOOTING}"
                            ),
                        );
                        }
                    }
                    Fate::AppRejectsValue => {
                        self.mutate(idx, |t| t.pull_stopped_at = Some(now));
                        self.fail(
                            idx,
                            "Essential container in task exited".to_string(),
                            "EssentialContainerExited",
                        );
                    }
                    Fate::Healthy | Fate::FailHealthCheck => {
                        // Load-balancer targets are registered just before startedAt.
                        if let Some(s) = self.tasks[idx].service {
                            let name = self.services[s].name.clone();
                            for tg in self.target_groups(s) {
                                self.svc_event(
                                s,
                                now,
                                format!("(service {name}) registered 1 targets in (target-group {tg})"),
                            );
                            }
                        }
                        self.mutate(idx, |t| {
                            t.last = Status::Running;
                            t.pull_stopped_at = Some(now);
                            t.started_at = Some(now);
                        });
                        self.push_task(idx, timing.health_check, Step::HealthCheck);
                    }
                }
            }
            Step::HealthCheck => {
                if self.tasks[idx].fate == Fate::FailHealthCheck {
                    self.mutate(idx, |t| t.healthy = Some(false));
                    let svc = self.tasks[idx].service;
                    let id = self.tasks[idx].id.clone();
                    self.fail(
                        idx,
                        "Task failed container health checks".to_string(),
                        "ServiceSchedulerInitiated",
                    );
                    if let Some(s) = svc {
                        let name = self.services[s].name.clone();
                        self.svc_event(
                            s,
                            now,
                            format!("(service {name}) (task {id}) failed container health checks."),
                        );
                    }
                } else {
                    self.mutate(idx, |t| t.healthy = Some(true));
                    let t = &self.tasks[idx];
                    if let (Some(s), Some(uid)) = (t.service, t.dep_uid) {
                        let deps = &mut self.services[s].deployments;
                        if let Some(d) = deps.iter_mut().find(|d| d.uid == uid && !d.succeeded) {
                            d.succeeded = true;
                            d.failed = 0;
                        }
                    }
                }
            }
            Step::Drained => {
                self.mutate(idx, |t| t.last = Status::Stopping);
                self.push_task(idx, timing.stopping / 2.0, Step::ExecStopped);
            }
            Step::ExecStopped => {
                self.mutate(idx, |t| {
                    t.last = Status::Deprovisioning;
                    t.execution_stopped_at = Some(now);
                });
                self.push_task(idx, timing.stopping / 2.0, Step::Stopped);
            }
            Step::Stopped => {
                self.mutate(idx, |t| {
                    t.last = Status::Stopped;
                    t.stopped_at = Some(now);
                });
                self.push_task(idx, STOPPED_VISIBLE, Step::Expire);
            }
            Step::Expire => {
                let t = &mut self.tasks[idx];
                t.expired = true;
                let (c, s) = (t.cluster, t.service);
                self.clusters[c].tasks.remove(&idx);
                if let Some(s) = s {
                    self.services[s].tasks.remove(&idx);
                }
            }
        }
        if let Some(s) = self.tasks[idx].service {
            self.dirty.insert(s);
        }
    }

    /// The phase durations for a task's next phase: its service's current timing (so a
    /// timing change applies to tasks already running), or its own for a standalone task.
    fn timing_of(&self, idx: usize) -> Timing {
        let t = &self.tasks[idx];
        match t.service {
            Some(s) => self.services[s].timing.clone(),
            None => t.timing.clone(),
        }
    }

    /// Changes a task and keeps its deployment's and cluster's counters right.
    pub(crate) fn mutate(&mut self, idx: usize, f: impl FnOnce(&mut Task)) {
        let before = Counts::of(&self.tasks[idx]);
        f(&mut self.tasks[idx]);
        let t = &self.tasks[idx];
        let after = Counts::of(t);
        if before == after {
            return;
        }
        let c = &mut self.clusters[t.cluster].counts;
        c.sub(before);
        c.add(after);
        if let (Some(s), Some(uid)) = (t.service, t.dep_uid) {
            if let Some(d) = self.services[s]
                .deployments
                .iter_mut()
                .find(|d| d.uid == uid)
            {
                d.counts.sub(before);
                d.counts.add(after);
                if after.present == 0 {
                    d.tasks.remove(&idx);
                }
            }
        }
    }

    /// Tells a task to stop. `drain`: a RUNNING task first drains connections (DEACTIVATING).
    pub(crate) fn stop_task(
        &mut self,
        idx: usize,
        reason: String,
        code: &'static str,
        drain: bool,
    ) {
        let t = &self.tasks[idx];
        if !t.desired_running || t.last == Status::Stopped {
            return;
        }
        let now = self.now;
        let draining = drain && t.last == Status::Running;
        let timing = self.timing_of(idx);
        self.mutate(idx, |t| {
            t.desired_running = false;
            t.stopping_at = Some(now);
            t.stopped_reason = Some(reason);
            t.stop_code = Some(code);
            t.gen += 1;
            t.version += 1;
            t.last = if draining {
                Status::Deactivating
            } else {
                Status::Stopping
            };
        });
        if draining {
            self.push_task(idx, timing.draining, Step::Drained);
        } else {
            self.push_task(idx, timing.stopping / 2.0, Step::ExecStopped);
        }
        if let Some(s) = self.tasks[idx].service {
            self.dirty.insert(s);
        }
    }

    /// A task failed: stop it, count it on its deployment, maybe trip the circuit breaker.
    fn fail(&mut self, idx: usize, reason: String, code: &'static str) {
        self.stop_task(idx, reason, code, false);
        let (Some(s), Some(uid)) = (self.tasks[idx].service, self.tasks[idx].dep_uid) else {
            return;
        };
        let now = self.now;
        if let Some(d) = self.services[s]
            .deployments
            .iter_mut()
            .find(|d| d.uid == uid)
        {
            d.failed += 1;
            d.updated_at = now;
            if let Some(sd) = d.sd.filter(|&sd| self.sds[sd].target_dep == uid) {
                self.sds[sd].failures = d.failed;
            }
        }
        self.unable_to_start(s, uid);
        self.circuit_breaker(s);
    }

    pub(crate) fn svc_event(&mut self, s: usize, at: f64, message: String) {
        // Event ids only need to be unique and reproducible: derive them from a counter.
        self.seq += 1;
        let id = uuid::Uuid::from_u128(
            u128::from(self.seq).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835),
        )
        .to_string();
        let events = &mut self.services[s].events;
        events.push_front(super::model::SvcEvent { id, at, message });
        events.truncate(MAX_EVENTS);
    }

    /// Starts a new PRIMARY deployment of a service, with a new service revision and
    /// service deployment: older entries go ACTIVE with desired 0 (rolling), or stay as
    /// they are until the staged lifecycle cleans them up (blue/green, linear, canary).
    pub(crate) fn new_deployment(
        &mut self,
        ctx: &mut Ctx<'_>,
        sources: &dyn SecretSource,
        s: usize,
    ) {
        let now = self.now;
        let id = deployment_id(ctx);
        let uid = self.new_uid();
        let revision = self.new_revision(ctx, sources, s);
        let svc = &mut self.services[s];
        let staged = svc.strategy.strategy.staged();
        let desired_before: Vec<u32> = svc.deployments.iter().map(|d| d.desired).collect();
        for d in &mut svc.deployments {
            d.desired = 0;
            d.updated_at = now;
        }
        let zero = svc.desired == 0;
        svc.deployments.insert(
            0,
            Deployment {
                uid,
                id: id.clone(),
                task_def: svc.task_def.clone(),
                desired: svc.desired,
                failed: 0,
                rollout: Rollout::InProgress,
                reason: format!("ECS deployment {id} in progress."),
                created_at: now,
                updated_at: now,
                launch_type: svc.launch_type.clone(),
                tasks: Default::default(),
                counts: Counts::default(),
                is_rollback: false,
                succeeded: false,
                earliest_complete: if zero { now + ZERO_DEPLOYMENT } else { now },
                revision,
                sd: None,
                prod_weight: if staged { 0.0 } else { 100.0 },
                test_weight: 0.0,
            },
        );
        let sd = self.new_service_deployment(ctx, s, revision, uid);
        self.services[s].deployments[0].sd = Some(sd);
        if staged {
            self.staged_start(s, sd, &desired_before);
        } else if zero {
            self.push(now + ZERO_DEPLOYMENT, EvKind::Wake { svc: s });
        }
        self.dirty.insert(s);
    }

    /// Places one task: resolves its secrets, decides its fate, schedules its first phase.
    pub(crate) fn create_task(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        l: Launch<'_>,
    ) -> usize {
        let now = self.now;
        let id = hex_id(ctx);
        let cluster_name = self.clusters[l.cluster].name.clone();
        let arn = format!(
            "arn:aws:ecs:{}:{}:task/{}/{}",
            ctx.region, ctx.account, cluster_name, id
        );
        let mut resolved = Vec::new();
        let mut fate = Fate::Healthy;
        for value_from in secret_refs(l.task_def) {
            match secrets.resolve_for_ecs(&value_from, ctx.region, ctx.account) {
                Ok(r) => resolved.push((value_from, r)),
                Err(e) if crate::ssm::is_parameter_reference(&value_from) => {
                    fate = Fate::SecretError(parameter_failure(&e));
                    break;
                }
                Err(e) => {
                    fate = Fate::SecretError(secret_failure(&e));
                    break;
                }
            }
        }
        let got: Vec<Resolved> = resolved.iter().map(|(_, r)| r.clone()).collect();
        if fate == Fate::Healthy {
            let service_name = l.service.map(|s| self.services[s].name.clone());
            for rule in &self.rules {
                if !rule_hits(rule, &cluster_name, service_name.as_deref(), &got) {
                    continue;
                }
                if let Some(p) = rule.probability {
                    if ctx.rng.random::<f64>() >= p {
                        continue;
                    }
                }
                fate = match rule.effect {
                    HealthEffect::AppRejectsValue => Fate::AppRejectsValue,
                    HealthEffect::FailHealthCheck => Fate::FailHealthCheck,
                    HealthEffect::SecretUnavailable => {
                        // The task never got that secret: it resolved only those before it.
                        let at = got.iter().position(|r| rule_names(rule, r)).unwrap_or(0);
                        let arn = got.get(at).map_or("*", |r| r.secret_arn.as_str());
                        resolved.truncate(at);
                        Fate::SecretError(secret_failure(&access_denied(ctx.account, &id, arn)))
                    }
                };
                break;
            }
        }
        // Version consistency: a container launches with the digest its service revision
        // resolved; one with it disabled (or a task of no service) resolves its tag now.
        let pinned = l.revision.map(|r| &self.revisions[r].images);
        let (containers, images) = container_images(l.task_def)
            .into_iter()
            .filter(|c| !c.name.is_empty())
            .map(|c| {
                let digest = match pinned.and_then(|p| p.iter().find(|(n, ..)| *n == c.name)) {
                    Some((_, _, d)) if c.consistent => d.clone(),
                    _ => secrets.resolve_image(&c.image, ctx.region, ctx.account),
                };
                (c.name, (c.image, digest))
            })
            .unzip();
        let task = Task {
            id: id.clone(),
            arn: arn.clone(),
            cluster: l.cluster,
            service: l.service,
            dep_uid: l.dep_uid,
            revision: l.revision,
            started_by: l.started_by,
            group: l.group,
            task_def: l
                .task_def
                .get("taskDefinitionArn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            family: l
                .task_def
                .get("family")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            launch_type: l.launch_type,
            containers,
            images,
            cpu: l.task_def.get("cpu").cloned(),
            memory: l.task_def.get("memory").cloned(),
            last: Status::Provisioning,
            desired_running: true,
            healthy: None,
            created_at: now,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stopped_reason: None,
            stop_code: None,
            secrets: resolved
                .into_iter()
                .map(|(value_from, r)| TaskSecret {
                    parameter: crate::ssm::is_parameter_reference(&value_from),
                    value_from,
                    secret_arn: r.secret_arn,
                    name: r.name,
                    version_id: r.version_id,
                    json_key: r.json_key,
                })
                .collect(),
            fate,
            gen: 0,
            version: 1,
            timing: l.timing,
            expired: false,
        };
        let idx = self.tasks.len();
        let counts = Counts::of(&task);
        let provisioning = task.timing.provisioning.max(MIN_PHASE);
        self.tasks.push(task);
        self.task_index.insert(arn, idx);
        self.task_index.insert(id, idx);
        let c = &mut self.clusters[l.cluster];
        c.tasks.insert(idx);
        c.counts.add(counts);
        if let Some(s) = l.service {
            let svc = &mut self.services[s];
            svc.tasks.insert(idx);
            if let Some(d) = svc
                .deployments
                .iter_mut()
                .find(|d| Some(d.uid) == l.dep_uid)
            {
                d.tasks.insert(idx);
                d.counts.add(counts);
            }
        }
        self.push_task(idx, provisioning, Step::Provisioned);
        idx
    }

    /// One scheduler pass over a service: launch for the PRIMARY within maximumPercent, stop
    /// old tasks within minimumHealthyPercent, repeat until nothing changes; then check
    /// whether the deployment completed.
    fn schedule_service(&mut self, ctx: &mut Ctx<'_>, secrets: &dyn SecretSource, s: usize) {
        if self.services[s].deployments.is_empty() {
            return;
        }
        if let Some(sd) = self.staged_in_progress(s) {
            self.staged_pass(ctx, secrets, s, sd);
            return;
        }
        self.check_deleted(s);
        self.check_alarms(s);
        let Some(p) = self.services[s].deployments.first() else {
            return;
        };
        // A FAILED PRIMARY (breaker without rollback) launches nothing and stops nothing.
        if p.rollout != Rollout::Failed {
            for _ in 0..64 {
                let launched = self.launch_pass(ctx, secrets, s);
                let stopped = self.stop_pass(s);
                if !launched && !stopped {
                    break;
                }
            }
        }
        self.check_complete(s);
    }

    fn launch_pass(&mut self, ctx: &mut Ctx<'_>, secrets: &dyn SecretSource, s: usize) -> bool {
        let svc = &self.services[s];
        let p = &svc.deployments[0];
        let total_live: u32 = svc.deployments.iter().map(|d| d.counts.live).sum();
        // Rounded down, but never below one task: a small service must still be able to roll.
        let max_total = ((u64::from(p.desired) * u64::from(svc.max_pct) / 100) as u32)
            .max(u32::from(p.desired > 0));
        let need = p.desired.saturating_sub(p.counts.live);
        let room = max_total.saturating_sub(total_live);
        self.launch_n(ctx, secrets, s, need.min(room))
    }

    /// Launches `n` tasks for the PRIMARY deployment (one "has started" event).
    pub(crate) fn launch_n(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        s: usize,
        n: u32,
    ) -> bool {
        if n == 0 {
            return false;
        }
        let svc = &self.services[s];
        let p = &svc.deployments[0];
        let (uid, dep_id, td_arn, revision) = (p.uid, p.id.clone(), p.task_def.clone(), p.revision);
        let Some(td) = self.find_task_def(&td_arn).cloned() else {
            return false;
        };
        let (cluster, name, launch_type, timing) = (
            svc.cluster,
            svc.name.clone(),
            svc.launch_type.clone(),
            svc.timing.clone(),
        );
        let mut ids = Vec::new();
        for _ in 0..n {
            let idx = self.create_task(
                ctx,
                secrets,
                Launch {
                    cluster,
                    service: Some(s),
                    dep_uid: Some(uid),
                    revision: Some(revision),
                    started_by: Some(dep_id.clone()),
                    group: format!("service:{name}"),
                    task_def: &td,
                    launch_type: launch_type.clone(),
                    timing: timing.clone(),
                },
            );
            ids.push(format!("(task {})", self.tasks[idx].id));
        }
        let now = self.now;
        self.svc_event(
            s,
            now,
            format!("(service {name}) has started {n} tasks: {}.", ids.join(" ")),
        );
        true
    }

    fn stop_pass(&mut self, s: usize) -> bool {
        let svc = &self.services[s];
        let p = &svc.deployments[0];
        let min_healthy = (u64::from(p.desired) * u64::from(svc.min_pct)).div_ceil(100) as u32;
        let mut healthy: u32 = svc.deployments.iter().map(|d| d.counts.healthy).sum();
        // Candidates: every live task of an older deployment, and PRIMARY tasks beyond its
        // desired count (scale-in). Not-yet-healthy ones go first: stopping them costs nothing.
        let mut candidates: Vec<(bool, usize, String)> = Vec::new();
        for (i, d) in svc.deployments.iter().enumerate() {
            let mut live: Vec<usize> = d
                .tasks
                .iter()
                .copied()
                .filter(|&t| self.tasks[t].desired_running)
                .collect();
            if i == 0 {
                let excess = d.counts.live.saturating_sub(d.desired) as usize;
                if excess == 0 {
                    continue;
                }
                // Newest and least healthy first.
                live.sort_by_key(|&t| (Counts::of(&self.tasks[t]).healthy, std::cmp::Reverse(t)));
                live.truncate(excess);
            }
            for t in live {
                let h = Counts::of(&self.tasks[t]).healthy == 1;
                candidates.push((h, t, d.id.clone()));
            }
        }
        if candidates.is_empty() {
            return false;
        }
        candidates.sort_by_key(|(h, t, _)| (*h, *t));
        let mut stopped = Vec::new();
        for (h, t, dep) in candidates {
            if h {
                if healthy == 0 || healthy - 1 < min_healthy {
                    break;
                }
                healthy -= 1;
            }
            stopped.push((t, dep));
        }
        if stopped.is_empty() {
            return false;
        }
        let name = svc.name.clone();
        let mut ids = Vec::new();
        for (t, dep) in &stopped {
            ids.push(format!("(task {})", self.tasks[*t].id));
            self.stop_task(
                *t,
                format!("Scaling activity initiated by (deployment {dep})"),
                "ServiceSchedulerInitiated",
                true,
            );
        }
        let now = self.now;
        let tgs = self.target_groups(s);
        if !tgs.is_empty() {
            // Tasks that were serving traffic (now DEACTIVATING) drain, per deployment.
            let mut by_dep: Vec<(String, usize)> = Vec::new();
            for (t, dep) in &stopped {
                if self.tasks[*t].last == Status::Deactivating {
                    match by_dep.iter_mut().find(|(d, _)| d == dep) {
                        Some((_, n)) => *n += 1,
                        None => by_dep.push((dep.clone(), 1)),
                    }
                }
            }
            for (dep, n) in by_dep {
                for tg in &tgs {
                    self.svc_event(
                        s,
                        now,
                        format!("(service {name}) deregistered {n} targets in (target-group {tg})"),
                    );
                }
                self.svc_event(
                    s,
                    now,
                    format!("(service {name}, taskSet {dep}) has begun draining connections on {n} tasks."),
                );
            }
        }
        self.svc_event(
            s,
            now,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                ids.len(),
                ids.join(" ")
            ),
        );
        true
    }

    /// Target group ARNs of a service's load balancers (events mention them).
    fn target_groups(&self, s: usize) -> Vec<String> {
        self.services[s]
            .extra
            .get("loadBalancers")
            .and_then(Value::as_array)
            .map(|lbs| {
                lbs.iter()
                    .filter_map(|lb| lb.get("targetGroupArn").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A DRAINING (deleted) service whose tasks are all gone turns INACTIVE and leaves its
    /// cluster's list.
    fn check_deleted(&mut self, s: usize) {
        let svc = &self.services[s];
        if svc.status != "DRAINING" || svc.counts().present > 0 {
            return;
        }
        let c = svc.cluster;
        self.services[s].status = "INACTIVE";
        self.clusters[c].services.retain(|&x| x != s);
    }

    fn check_complete(&mut self, s: usize) {
        let now = self.now;
        let svc = &mut self.services[s];
        let Some(p) = svc.deployments.first() else {
            return;
        };
        if p.rollout == Rollout::Completed {
            // Older entries leave the list once their tasks are gone.
            let mut first = true;
            svc.deployments.retain(|d| {
                let keep = first || d.counts.present > 0;
                first = false;
                keep
            });
            return;
        }
        if p.rollout != Rollout::InProgress {
            return;
        }
        let done = p.counts.healthy == p.desired
            && p.counts.live == p.desired
            && p.counts.pending == 0
            && now >= p.earliest_complete
            && svc.deployments[1..].iter().all(|d| d.counts.present == 0);
        if done {
            self.finish_primary(s);
        }
    }

    /// The PRIMARY deployment completed: it is the only entry left; its service deployment
    /// ends `SUCCESSFUL` (`ROLLBACK_SUCCESSFUL` for a rollback).
    pub(crate) fn finish_primary(&mut self, s: usize) {
        let now = self.now;
        let svc = &mut self.services[s];
        svc.deployments.truncate(1);
        let p = &mut svc.deployments[0];
        p.rollout = Rollout::Completed;
        p.reason = format!("ECS deployment {} completed.", p.id);
        p.updated_at = now;
        p.prod_weight = 100.0;
        p.test_weight = 0.0;
        let id = p.id.clone();
        let sd = p.sd;
        svc.last_completed = Some((id.clone(), p.task_def.clone(), p.revision));
        let name = svc.name.clone();
        if let Some(sd) = sd {
            use super::service_deployments::SdStatus;
            let status = if self.sds[sd].status == SdStatus::RollbackInProgress {
                SdStatus::RollbackSuccessful
            } else {
                SdStatus::Successful
            };
            self.finish_sd(sd, status, None);
        }
        self.svc_event(
            s,
            now,
            format!("(service {name}) (deployment {id}) deployment completed."),
        );
        self.svc_event(
            s,
            now + 0.001,
            format!("(service {name}) has reached a steady state."),
        );
    }
}
