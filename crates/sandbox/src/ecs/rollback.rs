//! Failing and rolling back deployments: the circuit breaker, deployment alarms, stop
//! requests and failed lifecycle hooks, for rolling and staged (blue/green, linear,
//! canary) deployments alike.

use super::model::{Counts, Deployment, Rollout};
use super::service_deployments::{RollbackInfo, SdStatus};
use super::sim::Cause;
use super::Ecs;

const TROUBLESHOOTING: &str =
    "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide.";

/// Failed launches of one deployment after which ECS says it "is unable to consistently
/// start tasks successfully" (inferred: AWS does not document the count; the breaker's
/// smallest threshold).
const UNABLE_AFTER: u32 = 3;

impl Ecs {
    /// The "unable to consistently start tasks" event, once per deployment when its
    /// failures reach [`UNABLE_AFTER`] while the breaker does not stop it (no breaker, or
    /// a rollback deployment, which the breaker exempts).
    pub(crate) fn unable_to_start(&mut self, s: usize, uid: u64) {
        let svc = &self.services[s];
        let Some(d) = svc.deployments.iter().find(|d| d.uid == uid) else {
            return;
        };
        if d.failed != UNABLE_AFTER || (svc.breaker && !d.is_rollback) {
            return;
        }
        let name = svc.name.clone();
        let now = self.now;
        self.svc_event(
            s,
            now,
            format!("(service {name}) is unable to consistently start tasks successfully. {TROUBLESHOOTING}"),
        );
    }

    pub(crate) fn circuit_breaker(&mut self, s: usize) {
        let svc = &self.services[s];
        if !svc.breaker {
            return;
        }
        let Some(p) = svc.deployments.first() else {
            return;
        };
        if p.rollout != Rollout::InProgress || p.is_rollback || p.succeeded {
            return;
        }
        let threshold = (p.desired.div_ceil(2)).clamp(3, 200);
        if p.failed < threshold {
            return;
        }
        if let Some(sd) = p.sd {
            self.sds[sd].breaker_tripped = true;
        }
        self.fail_primary(s, Cause::Breaker);
    }

    /// The PRIMARY deployment failed (circuit breaker or alarm): mark it, then roll back if
    /// the service asked for it, else leave it FAILED (its service deployment `STOPPED`).
    pub(crate) fn fail_primary(&mut self, s: usize, cause: Cause) {
        let now = self.now;
        let svc = &mut self.services[s];
        let rollback = match cause {
            Cause::Breaker => svc.rollback,
            Cause::Alarm => svc.strategy.alarms.as_ref().is_some_and(|a| a.rollback),
        };
        let Some(p) = svc.deployments.first_mut() else {
            return;
        };
        let (what, reason) = match cause {
            Cause::Breaker => (
                "tasks failed to start",
                "ECS deployment circuit breaker: tasks failed to start.",
            ),
            // Inferred wording, after the circuit breaker's.
            Cause::Alarm => ("alarm detected", "ECS deployment alarm: alarm detected."),
        };
        p.rollout = Rollout::Failed;
        p.reason = reason.to_string();
        p.updated_at = now;
        let failed_id = p.id.clone();
        let sd = p.sd;
        let name = svc.name.clone();
        self.svc_event(
            s,
            now,
            format!("(service {name}) (deployment {failed_id}) deployment failed: {what}."),
        );
        let Some(sd) = sd else {
            return;
        };
        if rollback {
            self.roll_back(sd, reason.to_string(), Some(cause));
        } else {
            self.finish_sd(
                sd,
                super::service_deployments::SdStatus::Stopped,
                Some(reason.to_string()),
            );
        }
    }

    /// Rolling rollback: a deployment back to the last completed one (same id, same task
    /// definition and revision), adopting that deployment's remaining tasks. `who` starts
    /// the new PRIMARY's reason. `false` if there is nothing to roll back to.
    pub(crate) fn rolling_rollback(&mut self, s: usize, who: &str, sd: Option<usize>) -> bool {
        let now = self.now;
        let svc = &self.services[s];
        let Some((old_id, old_td, old_rev)) = svc.last_completed.clone() else {
            return false;
        };
        let name = svc.name.clone();
        let uid = self.new_uid();
        let svc = &mut self.services[s];
        for d in &mut svc.deployments {
            d.desired = 0;
            d.updated_at = now;
        }
        let mut dep = Deployment {
            uid,
            id: old_id.clone(),
            task_def: old_td.clone(),
            desired: svc.desired,
            failed: 0,
            rollout: Rollout::InProgress,
            reason: format!("{who}: rolling back to deploymentId {old_id}."),
            created_at: now,
            updated_at: now,
            launch_type: svc.launch_type.clone(),
            tasks: Default::default(),
            counts: Counts::default(),
            is_rollback: true,
            succeeded: false,
            earliest_complete: now,
            revision: old_rev,
            sd,
            prod_weight: 100.0,
            test_weight: 0.0,
        };
        // The deployment rolled back to may still be listed with tasks of its own: they are
        // that deployment's tasks (same id, same task definition), so the rollback adopts them.
        let mut adopted = Vec::new();
        svc.deployments.retain(|d| {
            if d.id == old_id {
                adopted.push(d.clone());
                false
            } else {
                true
            }
        });
        for d in adopted {
            dep.counts.add(d.counts);
            dep.tasks.extend(d.tasks.iter().copied());
        }
        let moved: Vec<usize> = dep.tasks.iter().copied().collect();
        svc.deployments.insert(0, dep);
        svc.task_def = old_td;
        for t in moved {
            self.tasks[t].dep_uid = Some(uid);
        }
        self.svc_event(
            s,
            now,
            format!("(service {name}) rolling back to deployment {old_id}."),
        );
        self.dirty.insert(s);
        true
    }
}

impl Ecs {
    /// Rolls service deployment `sd` back. Staged: production and test traffic return to
    /// blue, whose tasks never stopped, and green's tasks stop. Rolling: a deployment back
    /// to the last completed revision. Nothing to roll back to (a service's first
    /// deployment): the deployment just ends `STOPPED`. `cause`: `None` for a stop
    /// request or a lifecycle hook.
    pub(crate) fn roll_back(&mut self, sd: usize, reason: String, cause: Option<Cause>) {
        let now = self.now;
        let s = self.sds[sd].service;
        if let Some(p) = self.services[s].deployments.first_mut() {
            if p.sd == Some(sd) && p.rollout == Rollout::InProgress {
                p.rollout = Rollout::Failed;
                p.reason = reason.clone();
                p.updated_at = now;
            }
        }
        let rolled = if self.sds[sd].staged {
            self.staged_rollback(s, sd)
        } else {
            let who = match cause {
                Some(Cause::Breaker) => "ECS deployment circuit breaker",
                // Inferred wording for the two below.
                Some(Cause::Alarm) => "ECS deployment alarms",
                None => "ECS deployment",
            };
            self.rolling_rollback(s, who, Some(sd))
        };
        for h in &mut self.sds[sd].hooks {
            use super::service_deployments::HookStatus;
            if matches!(
                h.status,
                HookStatus::AwaitingAction | HookStatus::InProgress
            ) {
                h.status = HookStatus::Failed;
            }
        }
        if !rolled {
            self.finish_sd(sd, SdStatus::Stopped, Some(reason));
            return;
        }
        let revision = self.services[s].deployments[0].revision;
        let d = &mut self.sds[sd];
        d.status = SdStatus::RollbackInProgress;
        d.reason = Some(reason.clone());
        d.updated_at = now;
        d.rollback = Some(RollbackInfo {
            reason,
            started_at: now,
            revision,
        });
    }

    /// Production (and test) traffic back to blue: blue is PRIMARY again (its own id, as a
    /// circuit-breaker rollback reuses the old id; inferred for blue/green), green's tasks
    /// stop. The rolling scheduler then completes blue once green's tasks are gone.
    fn staged_rollback(&mut self, s: usize, sd: usize) -> bool {
        let now = self.now;
        let (Some(blue_uid), green_uid) = (self.sds[sd].blue_dep, self.sds[sd].target_dep) else {
            return false;
        };
        let svc = &mut self.services[s];
        let Some(bi) = svc.deployments.iter().position(|d| d.uid == blue_uid) else {
            return false;
        };
        let mut blue = svc.deployments.remove(bi);
        blue.desired = svc.desired;
        blue.prod_weight = 100.0;
        blue.test_weight = 0.0;
        blue.rollout = Rollout::InProgress;
        blue.reason = format!("ECS deployment rolling back to deploymentId {}.", blue.id);
        blue.is_rollback = true;
        blue.sd = Some(sd);
        blue.updated_at = now;
        let blue_id = blue.id.clone();
        svc.task_def = blue.task_def.clone();
        let mut stopping = Vec::new();
        for d in &mut svc.deployments {
            d.desired = 0;
            d.prod_weight = 0.0;
            d.test_weight = 0.0;
            d.updated_at = now;
            if d.uid == green_uid && d.rollout == Rollout::InProgress {
                d.rollout = Rollout::Failed;
            }
            for &t in &d.tasks {
                stopping.push((t, d.id.clone()));
            }
        }
        svc.deployments.insert(0, blue);
        let name = svc.name.clone();
        self.svc_event(
            s,
            now,
            format!("(service {name}) rolling back to deployment {blue_id}."),
        );
        self.stop_tasks_of(s, stopping);
        self.dirty.insert(s);
        true
    }

    /// Tells the given (task, deployment id) to stop as the scheduler does when it scales
    /// in: connection draining, one "has stopped" event.
    pub(crate) fn stop_tasks_of(&mut self, s: usize, tasks: Vec<(usize, String)>) {
        let now = self.now;
        let mut ids = Vec::new();
        for (t, dep) in tasks {
            if !self.tasks[t].desired_running {
                continue;
            }
            ids.push(format!("(task {})", self.tasks[t].id));
            self.stop_task(
                t,
                format!("Scaling activity initiated by (deployment {dep})"),
                "ServiceSchedulerInitiated",
                true,
            );
        }
        if ids.is_empty() {
            return;
        }
        let name = self.services[s].name.clone();
        self.svc_event(
            s,
            now,
            format!(
                "(service {name}) has stopped {} running tasks: {}.",
                ids.len(),
                ids.join(" ")
            ),
        );
    }
}
