//! The staged lifecycle of blue/green, linear and canary deployments.
//!
//! The new revision ("green") is the PRIMARY entry of `deployments[]`; the entry that
//! serves production when the deployment starts ("blue") keeps its desired count and its
//! tasks until `CLEAN_UP`, so the service runs about twice its tasks meanwhile. Stages, in
//! the order of `ServiceDeploymentLifecycleStage`:
//! `RECONCILE_SERVICE` (only when more than one older revision still runs: the others are
//! scaled in, blue is the one with the most production traffic), `PRE_SCALE_UP`,
//! `SCALE_UP` (green launched to 100%, whatever `maximumPercent` says), `POST_SCALE_UP`,
//! `TEST_TRAFFIC_SHIFT` (test traffic 100% to green), `POST_TEST_TRAFFIC_SHIFT` (then the
//! `PRE_PRODUCTION_TRAFFIC_SHIFT` hooks), `PRODUCTION_TRAFFIC_SHIFT` (blue/green: 100% at
//! once; linear: `stepPercent` every `stepBakeTimeInMinutes`; canary: `canaryPercent`, then
//! after `canaryBakeTimeInMinutes` the rest), `POST_PRODUCTION_TRAFFIC_SHIFT`,
//! `BAKE_TIME` (`bakeTimeInMinutes`, blue still running), `CLEAN_UP` (blue's tasks drain
//! and stop; then the deployment is `SUCCESSFUL` and green `COMPLETED`).
//!
//! Each stage applies its traffic change on entry, then runs the hooks that name it, then
//! waits for its own condition. Inferred (not documented): a service's first deployment
//! (nothing to shift from) goes through the stages without bake times; what
//! `deployments[]` shows (green `PRIMARY` `IN_PROGRESS`, blue `ACTIVE` with its desired
//! count until `CLEAN_UP`, then 0); the first deployment's traffic is 100% production from
//! the start.

use super::service_deployments::SdStatus;
use super::sim::Cause;
use super::strategy::Stage;
use super::Ecs;
use crate::secrets::SecretSource;
use crate::Ctx;

/// What the hooks of the current stage say.
pub(crate) enum HookGate {
    Done,
    Waiting,
    Rollback(String),
}

impl Ecs {
    /// The service deployment whose staged lifecycle drives service `s` now, if any.
    pub(crate) fn staged_in_progress(&self, s: usize) -> Option<usize> {
        let p = self.services[s].deployments.first()?;
        let sd = p.sd?;
        let d = &self.sds[sd];
        (d.staged && d.status == SdStatus::InProgress && d.target_dep == p.uid).then_some(sd)
    }

    /// Sets up a staged deployment just inserted as PRIMARY. `desired_before`: the desired
    /// counts of the older entries before the insert (blue keeps its own).
    pub(crate) fn staged_start(&mut self, s: usize, sd: usize, desired_before: &[u32]) {
        let svc = &mut self.services[s];
        let older = &svc.deployments[1..];
        let running: Vec<usize> = (0..older.len())
            .filter(|&i| older[i].counts.live > 0)
            .collect();
        let blue = running.iter().copied().max_by(|&a, &b| {
            older[a]
                .prod_weight
                .total_cmp(&older[b].prod_weight)
                .then(older[a].counts.live.cmp(&older[b].counts.live))
                .then(b.cmp(&a))
        });
        let several = svc.deployments[1..]
            .iter()
            .filter(|d| d.counts.present > 0)
            .count()
            > 1;
        if let Some(b) = blue {
            let d = &mut svc.deployments[b + 1];
            d.desired = desired_before.get(b).copied().unwrap_or(svc.desired);
            self.sds[sd].blue_dep = Some(d.uid);
        } else {
            // Nothing serves production yet: green takes it from the start.
            svc.deployments[0].prod_weight = 100.0;
        }
        let first = if several {
            Stage::ReconcileService
        } else {
            Stage::PreScaleUp
        };
        self.enter_stage(s, sd, first);
    }

    /// Runs the lifecycle as far as it can go at this instant.
    pub(crate) fn staged_pass(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        s: usize,
        sd: usize,
    ) {
        for _ in 0..64 {
            if self.sds[sd].status != SdStatus::InProgress || !self.staged_step(ctx, secrets, s, sd)
            {
                break;
            }
        }
    }

    /// One step: `true` when the deployment moved to its next stage.
    fn staged_step(
        &mut self,
        ctx: &mut Ctx<'_>,
        secrets: &dyn SecretSource,
        s: usize,
        sd: usize,
    ) -> bool {
        let now = self.now;
        let stage = self.sds[sd].stage;
        // Alarms are watched until clean-up starts (after that there is no blue left to
        // return to).
        if stage < Stage::CleanUp && self.alarm_triggered(sd) {
            self.fail_primary(s, Cause::Alarm);
            return false;
        }
        match self.run_stage_hooks(ctx, s, sd) {
            HookGate::Done => {}
            HookGate::Waiting => return false,
            HookGate::Rollback(reason) => {
                self.roll_back(sd, reason, None);
                return false;
            }
        }
        let has_blue = self.blue_index(s, sd).is_some();
        if stage >= Stage::ScaleUp {
            // Green is kept at its desired count from scale-up on (failed tasks replaced).
            let g = &self.services[s].deployments[0];
            let need = g.desired.saturating_sub(g.counts.live);
            self.launch_n(ctx, secrets, s, need);
        }
        let done = match stage {
            Stage::ScaleUp => {
                let g = &self.services[s].deployments[0];
                g.counts.healthy == g.desired && g.counts.live == g.desired
            }
            Stage::ProductionTrafficShift => self.production_shift(s, sd, has_blue),
            Stage::BakeTime => {
                let bake = if has_blue {
                    self.services[s].strategy.bake_seconds()
                } else {
                    0.0
                };
                let end = self.sds[sd].stage_since + bake;
                if now < end {
                    self.push_wake(end, s);
                }
                now >= end
            }
            Stage::CleanUp => self.services[s].deployments[1..]
                .iter()
                .all(|d| d.counts.present == 0),
            _ => true,
        };
        if !done {
            return false;
        }
        if stage == Stage::CleanUp {
            self.finish_primary(s);
            return false;
        }
        self.enter_stage(s, sd, stage.next());
        true
    }

    fn blue_index(&self, s: usize, sd: usize) -> Option<usize> {
        let blue = self.sds[sd].blue_dep?;
        self.services[s]
            .deployments
            .iter()
            .position(|d| d.uid == blue)
    }

    /// Enters a stage and applies its traffic or scaling change.
    fn enter_stage(&mut self, s: usize, sd: usize, stage: Stage) {
        let now = self.now;
        let d = &mut self.sds[sd];
        d.stage = stage;
        d.stage_since = now;
        d.stage_log.push((stage, now));
        d.hook_phase = 0;
        d.hooks_started = false;
        d.step = 0;
        d.step_since = now;
        d.updated_at = now;
        let blue = self.blue_index(s, sd);
        match stage {
            Stage::ReconcileService => {
                // Older revisions other than blue scale in; blue takes all production.
                let svc = &mut self.services[s];
                let mut stopping = Vec::new();
                for (i, d) in svc.deployments.iter_mut().enumerate().skip(1) {
                    if Some(i) == blue {
                        d.prod_weight = 100.0;
                        continue;
                    }
                    d.desired = 0;
                    d.prod_weight = 0.0;
                    d.test_weight = 0.0;
                    stopping.extend(d.tasks.iter().map(|&t| (t, d.id.clone())));
                }
                self.stop_tasks_of(s, stopping);
            }
            Stage::TestTrafficShift => {
                let svc = &mut self.services[s];
                for (i, d) in svc.deployments.iter_mut().enumerate() {
                    d.test_weight = if i == 0 { 100.0 } else { 0.0 };
                }
            }
            Stage::ProductionTrafficShift => {
                let first = if blue.is_some() {
                    self.services[s].strategy.production_steps()[0].0
                } else {
                    100.0
                };
                self.set_production(s, sd, first);
            }
            Stage::CleanUp => {
                let svc = &mut self.services[s];
                let mut stopping = Vec::new();
                for d in svc.deployments.iter_mut().skip(1) {
                    d.desired = 0;
                    d.prod_weight = 0.0;
                    d.test_weight = 0.0;
                    d.updated_at = now;
                    stopping.extend(d.tasks.iter().map(|&t| (t, d.id.clone())));
                }
                self.stop_tasks_of(s, stopping);
            }
            _ => {}
        }
        self.dirty.insert(s);
    }

    /// Green gets `weight`% of production, blue the rest, others none.
    fn set_production(&mut self, s: usize, sd: usize, weight: f64) {
        let now = self.now;
        let blue = self.sds[sd].blue_dep;
        for (i, d) in self.services[s].deployments.iter_mut().enumerate() {
            d.prod_weight = if i == 0 {
                weight
            } else if Some(d.uid) == blue {
                100.0 - weight
            } else {
                0.0
            };
            d.updated_at = now;
        }
    }

    /// Walks the strategy's production steps; `true` once green has 100%.
    fn production_shift(&mut self, s: usize, sd: usize, has_blue: bool) -> bool {
        if !has_blue {
            return true;
        }
        let steps = self.services[s].strategy.production_steps();
        loop {
            let (step, since) = (self.sds[sd].step, self.sds[sd].step_since);
            let Some(&(_, bake)) = steps.get(step) else {
                return true;
            };
            let end = since + bake;
            if self.now < end {
                self.push_wake(end, s);
                return false;
            }
            let d = &mut self.sds[sd];
            d.step += 1;
            d.step_since = self.now;
            d.updated_at = self.now;
            match steps.get(step + 1) {
                Some(&(w, _)) => self.set_production(s, sd, w),
                None => return true,
            }
        }
    }
}
