//! Pure decisions about one service deployment (the service deployments API, since
//! 2024-10), for every deployment strategy: where it stands, whether it failed, whether a
//! newer one superseded it, and when our own failure detector gives up on it. No I/O;
//! [`super::follow`] feeds it what `DescribeServices` and `DescribeServiceDeployments`
//! said.
//!
//! What tasks hold is never decided here: that is the holding rule's ([`crate::holding`]),
//! whichever deployment launched them.

use crate::aws::model::ServiceDeploymentRecord;
use crate::holding::{task_holds, Holding, TaskHolds};

/// Where one service deployment stands.
#[derive(Debug, Clone, PartialEq)]
pub enum SdVerdict {
    /// Still under way (`PENDING`, `IN_PROGRESS`, `STOP_REQUESTED`, or a status this
    /// build does not know: no claim is made on it).
    UnderWay {
        /// `lifecycleStage` (empty for a rolling deployment, which has none).
        stage: String,
        /// All production traffic is on the target revision (staged strategies only:
        /// blue/green after the shift, linear and canary after the last step).
        traffic_moved: bool,
        /// A `PAUSE` hook waits for `ContinueServiceDeployment`: its id.
        awaiting_hook: Option<String>,
    },
    /// `SUCCESSFUL`.
    Successful,
    /// `STOPPED` because a newer service deployment took over: not a failure (the trap
    /// of ecspresso #899). Follow `by`; the holding rule judges the tasks it launches.
    Superseded {
        /// The service deployment in force now.
        by: String,
    },
    /// Failed: rolled back (circuit breaker, alarm, failed or timed-out hook, a stop with
    /// ROLLBACK), or stopped without a newer deployment in force.
    Failed {
        /// Why, in words for the operator.
        reason: String,
    },
}

impl SdVerdict {
    /// Successful, superseded or failed: this record will not change on its own.
    pub fn is_final(&self) -> bool {
        !matches!(self, SdVerdict::UnderWay { .. })
    }
}

/// Why a deployment failed, from the record's monitors and hooks, else its reasons.
fn why(r: &ServiceDeploymentRecord, fallback: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !r.triggered_alarms.is_empty() {
        parts.push(format!("alarm {} fired", r.triggered_alarms.join(", ")));
    }
    if r.breaker_status == "TRIGGERED" {
        parts.push(format!(
            "circuit breaker tripped after {} failed tasks",
            r.failure_count
        ));
    }
    for h in &r.hooks {
        match h.status.as_str() {
            "FAILED" => parts.push(format!("lifecycle hook {} failed", h.id)),
            "TIMED_OUT" => parts.push(format!("lifecycle hook {} timed out", h.id)),
            _ => {}
        }
    }
    if let Some(reason) = r.rollback_reason.as_deref().filter(|s| !s.is_empty()) {
        parts.push(reason.to_string());
    } else if !r.status_reason.is_empty() {
        parts.push(r.status_reason.clone());
    }
    if parts.is_empty() {
        parts.push(fallback.to_string());
    }
    parts.join("; ")
}

/// Judges the service deployment we follow (`record`), given the service's
/// `currentServiceDeployment` (`current`) read after the record (so `current` is never
/// older than it).
///
/// `STOPPED` is a failure only when no other service deployment is in force: a
/// deployment superseded by a newer one (someone else's deploy, or ours again) ends
/// `STOPPED` too, and then the newer one is what runs. ECS's `statusReason` wording is
/// not relied on. `ROLLBACK_*` is always a failure: production went back to the old
/// revision, whose tasks hold the value they started with.
pub fn judge_service_deployment(
    record: &ServiceDeploymentRecord,
    current: Option<&str>,
) -> SdVerdict {
    match record.status.as_str() {
        // Done, but a newer one is in force now (DescribeServices is read after the
        // record): its tasks replace ours, so it is the one to follow.
        "SUCCESSFUL" => match current.filter(|c| !c.is_empty() && *c != record.arn) {
            Some(by) => SdVerdict::Superseded { by: by.to_string() },
            None => SdVerdict::Successful,
        },
        "STOPPED" => match current.filter(|c| !c.is_empty() && *c != record.arn) {
            Some(by) => SdVerdict::Superseded { by: by.to_string() },
            None => SdVerdict::Failed {
                reason: format!("service deployment stopped: {}", why(record, "stopped")),
            },
        },
        "ROLLBACK_REQUESTED"
        | "ROLLBACK_IN_PROGRESS"
        | "ROLLBACK_SUCCESSFUL"
        | "ROLLBACK_FAILED" => SdVerdict::Failed {
            reason: format!(
                "service deployment {}: {}",
                record.status.to_lowercase().replace('_', " "),
                why(record, "rolled back")
            ),
        },
        _ => {
            // ECS rolls back (or stops) on its own once a monitor triggers; until the
            // status says so, a triggered monitor already means the deployment failed.
            if !record.triggered_alarms.is_empty() || record.breaker_status == "TRIGGERED" {
                return SdVerdict::Failed {
                    reason: why(record, "failed"),
                };
            }
            SdVerdict::UnderWay {
                stage: record.lifecycle_stage.clone(),
                traffic_moved: record.production_weight.is_some_and(|w| w >= 100.0),
                awaiting_hook: record
                    .hooks
                    .iter()
                    .find(|h| h.target_type == "PAUSE" && h.status == "AWAITING_ACTION")
                    .map(|h| h.id.clone()),
            }
        }
    }
}

/// ECS's circuit-breaker threshold for a deployment of `desired` tasks: half of them,
/// rounded up, at least 3 and at most 200 (ECS developer guide, "deployment circuit
/// breaker").
pub fn breaker_threshold(desired: i32) -> i32 {
    ((desired.max(0) + 1) / 2).clamp(3, 200)
}

/// The failed-task count at which our own detector gives up on a deployment, or `None`
/// when ECS's circuit breaker already covers it (a rolling deployment of a service with
/// the breaker on) and no `--max-task-failures` was given. The breaker applies to rolling
/// deployments only; for the others, and without it, a deployment whose tasks keep
/// failing would run until `--timeout` with the bad value live.
pub fn detector_threshold(
    breaker: Option<(bool, bool)>,
    strategy: &str,
    max_task_failures: Option<u32>,
    desired: i32,
) -> Option<i32> {
    if let Some(n) = max_task_failures {
        return Some(i32::try_from(n).unwrap_or(i32::MAX));
    }
    let rolling = strategy.is_empty() || strategy == "ROLLING";
    let breaker_on = matches!(breaker, Some((true, _)));
    (!(rolling && breaker_on)).then(|| breaker_threshold(desired))
}

/// The least time a deployment of this strategy takes, in seconds, from its bake times
/// and traffic steps alone (task start-up and draining come on top), with ECS's defaults
/// for what the service leaves out: linear `stepPercent` 10 and `stepBakeTimeInMinutes` 6,
/// canary `canaryPercent` 5 and `canaryBakeTimeInMinutes` 10. Rolling: 0. `linear` and
/// `canary`: (percent, step bake minutes) as configured.
pub fn least_rollout_seconds(
    strategy: &str,
    bake_minutes: Option<i32>,
    linear: Option<(Option<f64>, Option<i32>)>,
    canary: Option<(Option<f64>, Option<i32>)>,
) -> u64 {
    let minutes = |m: i32| u64::try_from(m.max(0)).unwrap_or(0) * 60;
    let bake = minutes(bake_minutes.unwrap_or(0));
    match strategy {
        "BLUE_GREEN" => bake,
        "LINEAR" => {
            let (step, step_bake) = linear.unwrap_or((None, None));
            let step = step.filter(|p| p.is_finite() && *p > 0.0).unwrap_or(10.0);
            // Steps to reach 100%; a step bake between two steps, none after the last.
            let steps = (100.0 / step.min(100.0)).ceil() as u64;
            steps.saturating_sub(1) * minutes(step_bake.unwrap_or(6)) + bake
        }
        "CANARY" => {
            let (percent, canary_bake) = canary.unwrap_or((None, None));
            if percent.unwrap_or(5.0) >= 100.0 {
                bake
            } else {
                minutes(canary_bake.unwrap_or(10)) + bake
            }
        }
        _ => 0,
    }
}

/// `1h 30m`, `12m`, `45s`: a duration for a plan line.
pub fn human_seconds(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut parts = Vec::new();
    if h > 0 {
        parts.push(format!("{h}h"));
    }
    if m > 0 {
        parts.push(format!("{m}m"));
    }
    if s > 0 || parts.is_empty() {
        parts.push(format!("{s}s"));
    }
    parts.join(" ")
}

/// The slowest of `services` (name, strategy, least seconds) when it takes longer than
/// `timeout_secs`.
fn slowest_over<'a>(
    services: &[(&'a str, &'a str, u64)],
    timeout_secs: u64,
) -> Option<(&'a str, &'a str, u64)> {
    services
        .iter()
        .copied()
        .filter(|(_, _, least)| *least > timeout_secs)
        .max_by_key(|(_, _, least)| *least)
}

/// The refusal of a rollout whose slowest service cannot finish within `timeout`: its
/// bake times and traffic steps alone take longer (ecspresso #1063: a 23-hour bake
/// blocking CI). `services`: (name, strategy, least seconds). `None`: every one fits.
pub fn too_slow_for(services: &[(&str, &str, u64)], timeout_secs: u64) -> Option<(String, String)> {
    let (name, strategy, least) = slowest_over(services, timeout_secs)?;
    Some((
        format!(
            "service {name} deploys {strategy}: its bake times and traffic steps alone take at least {}, longer than --timeout {}",
            human_seconds(least),
            human_seconds(timeout_secs)
        ),
        format!(
            "give --timeout {} or more (plan shows each service's least time), leave the service out with --services, or give --until traffic to end once all production traffic is on tasks proven to hold the new value",
            human_seconds(least + 600)
        ),
    ))
}

/// The refusal of `--until traffic` when a service's traffic steps alone (linear and
/// canary step bakes, before the last step puts all production traffic on the new
/// revision) take longer than `timeout`: the run could never reach its end.
/// `services`: (name, strategy, least seconds of traffic steps). `None`: every one fits.
pub fn traffic_too_slow_for(
    services: &[(&str, &str, u64)],
    timeout_secs: u64,
) -> Option<(String, String)> {
    let (name, strategy, least) = slowest_over(services, timeout_secs)?;
    Some((
        format!(
            "service {name} deploys {strategy}: its traffic steps alone take at least {} before all production traffic is on the new revision, longer than --timeout {}, so --until traffic cannot end",
            human_seconds(least),
            human_seconds(timeout_secs)
        ),
        format!(
            "give --timeout {} or more, or leave the service out with --services",
            human_seconds(least + 600)
        ),
    ))
}

/// A service deployment waiting at a `PAUSE` lifecycle hook for
/// `ContinueServiceDeployment`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PauseAt {
    /// The service deployment's ARN.
    pub service_deployment_arn: String,
    /// The waiting hook's id.
    pub hook_id: String,
    /// The lifecycle stage it waits at (empty when ECS did not say).
    pub stage: String,
}

impl PauseAt {
    /// The aws CLI line that continues (or, with `ROLLBACK`, rolls back) the deployment,
    /// ready to paste: `ContinueServiceDeployment` takes the service deployment's ARN, the
    /// hook id and an action, in the ARN's region.
    pub fn command(&self, action: &str) -> String {
        let mut line = format!(
            "aws ecs continue-service-deployment --service-deployment-arn {} --hook-id {} --action {action}",
            self.service_deployment_arn, self.hook_id
        );
        if let Some(region) = self
            .service_deployment_arn
            .split(':')
            .nth(3)
            .filter(|r| !r.is_empty())
        {
            line.push_str(&format!(" --region {region}"));
        }
        line
    }
}

/// Where the service deployment followed waits at a `PAUSE` hook, if it does: `sd` is
/// its ARN, `verdict` what its record said last.
pub fn paused_at(sd: Option<&str>, verdict: Option<&SdVerdict>) -> Option<PauseAt> {
    match (sd, verdict) {
        (
            Some(arn),
            Some(SdVerdict::UnderWay {
                stage,
                awaiting_hook: Some(hook),
                ..
            }),
        ) => Some(PauseAt {
            service_deployment_arn: arn.to_string(),
            hook_id: hook.clone(),
            stage: stage.clone(),
        }),
        _ => None,
    }
}

/// What `--approve-hooks` does with a deployment waiting at a `PAUSE` hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Approval {
    /// Every green task (the tasks of the deployment followed) is proven to hold the value:
    /// `ContinueServiceDeployment` with `CONTINUE`. `tasks`: how many were proven.
    Continue {
        /// Green tasks proven.
        tasks: usize,
    },
    /// Nothing can be decided yet (a green task still starting, or no read of the secret
    /// a margin after the tasks were listed): ask again at the next poll.
    Wait {
        /// Why, in words for the operator.
        why: String,
    },
    /// Not proven: production traffic must not move onto these tasks. Stop the service
    /// deployment with `ROLLBACK` (then the restore).
    Rollback {
        /// Why, in words for the operator.
        why: String,
    },
}

/// One task of the deployment waiting at the hook, as the approval sees it.
#[derive(Debug, Clone, Copy)]
pub struct GreenTask<'a> {
    /// Task ARN (its last part names it in messages).
    pub arn: &'a str,
    /// `createdAt`, AWS's clock.
    pub created_at: f64,
    /// `lastStatus`.
    pub last_status: &'a str,
}

/// The gate of `--approve-hooks`: continue only when every green task is proven, by the
/// holding rule, to hold the value (`holdings`: each watched secret's name and the rule's
/// answer, judged with the tasks listed and a read of the secret a margin later; `fresh`:
/// that read was made). A task launched before the value was current, or a secret whose
/// answer is not "holds", is a rollback: waiting longer cannot make it true. A task still
/// starting, or a missing read, is a wait.
pub fn approval(
    holdings: &[(&str, &Holding)],
    green: &[GreenTask<'_>],
    fresh: bool,
    margin: f64,
) -> Approval {
    for (name, h) in holdings {
        match h {
            Holding::Holds { .. } => {}
            Holding::NotProven { why, .. } if !fresh => {
                return Approval::Wait {
                    why: format!("{name}: {why}"),
                }
            }
            Holding::NotProven { why, .. } => {
                return Approval::Rollback {
                    why: format!("what the new tasks hold cannot be proven ({name}: {why})"),
                }
            }
            Holding::Superseded { by, .. } => {
                return Approval::Rollback {
                    why: format!("{name} is on another version now ({by})"),
                }
            }
        }
    }
    for t in green {
        for (name, h) in holdings {
            if task_holds(t.created_at, h, margin) != TaskHolds::Ours {
                return Approval::Rollback {
                    why: format!(
                        "task {} was launched before {name}'s new value was current",
                        t.arn.rsplit('/').next().unwrap_or(t.arn)
                    ),
                };
            }
        }
    }
    if !fresh {
        return Approval::Wait {
            why: "no read of the secret a margin after the tasks were listed".into(),
        };
    }
    if let Some(t) = green.iter().find(|t| t.last_status != "RUNNING") {
        return Approval::Wait {
            why: format!(
                "task {} is {}",
                t.arn.rsplit('/').next().unwrap_or(t.arn),
                t.last_status
            ),
        };
    }
    Approval::Continue { tasks: green.len() }
}

/// The range `--max-task-failures` accepts.
pub const MAX_TASK_FAILURES_RANGE: std::ops::RangeInclusive<u32> = 1..=200;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::model::HookObs;

    const OURS: &str = "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/ours";
    const NEWER: &str = "arn:aws:ecs:eu-west-1:1:service-deployment/c/api/newer";

    fn rec(status: &str) -> ServiceDeploymentRecord {
        ServiceDeploymentRecord {
            arn: OURS.into(),
            status: status.into(),
            breaker_status: "MONITORING".into(),
            ..Default::default()
        }
    }

    fn staged(status: &str, stage: &str, weight: f64) -> ServiceDeploymentRecord {
        ServiceDeploymentRecord {
            lifecycle_stage: stage.into(),
            production_weight: Some(weight),
            ..rec(status)
        }
    }

    fn kind(v: &SdVerdict) -> &'static str {
        match v {
            SdVerdict::UnderWay {
                traffic_moved: true,
                ..
            } => "under way, traffic moved",
            SdVerdict::UnderWay {
                awaiting_hook: Some(_),
                ..
            } => "waiting at a hook",
            SdVerdict::UnderWay { .. } => "under way",
            SdVerdict::Successful => "successful",
            SdVerdict::Superseded { .. } => "superseded",
            SdVerdict::Failed { .. } => "failed",
        }
    }

    #[test]
    fn approving_a_pause_hook() {
        let holds = Holding::Holds { since: 100.0 };
        let moved = Holding::NotProven {
            since: Some(100.0),
            why: "LastChangedDate moved".into(),
        };
        let other = Holding::Superseded {
            since: Some(100.0),
            by: "v3".into(),
            by_since: Some(150.0),
        };
        let task = |created_at: f64, last_status: &'static str| GreenTask {
            arn: "arn:aws:ecs:eu-west-1:1:task/c/abc",
            created_at,
            last_status,
        };
        let kind = |a: &Approval| match a {
            Approval::Continue { .. } => "continue",
            Approval::Wait { .. } => "wait",
            Approval::Rollback { .. } => "rollback",
        };
        // (case, holding, green tasks, fresh read, want)
        #[allow(clippy::type_complexity)]
        let table: Vec<(&str, &Holding, Vec<GreenTask<'_>>, bool, &str)> = vec![
            (
                "every green task launched after the value was current",
                &holds,
                vec![task(101.0, "RUNNING"), task(120.0, "RUNNING")],
                true,
                "continue",
            ),
            (
                "at the boundary",
                &holds,
                vec![task(100.0, "RUNNING")],
                true,
                "continue",
            ),
            (
                "a green task launched before: rollback",
                &holds,
                vec![task(101.0, "RUNNING"), task(99.9, "RUNNING")],
                true,
                "rollback",
            ),
            (
                "a green task still starting: wait",
                &holds,
                vec![task(101.0, "PENDING")],
                true,
                "wait",
            ),
            (
                "no read after the listing yet: wait",
                &moved,
                vec![task(101.0, "RUNNING")],
                false,
                "wait",
            ),
            (
                "no read after the listing, tasks fine: wait",
                &holds,
                vec![task(101.0, "RUNNING")],
                false,
                "wait",
            ),
            (
                "the secret changed in a way the tool cannot place: rollback",
                &moved,
                vec![task(101.0, "RUNNING")],
                true,
                "rollback",
            ),
            (
                "another version current: rollback",
                &other,
                vec![task(101.0, "RUNNING")],
                true,
                "rollback",
            ),
            (
                "no green task yet (hook before scale-up)",
                &holds,
                vec![],
                true,
                "continue",
            ),
        ];
        for (case, h, green, fresh, want) in table {
            let got = approval(&[("s", h)], &green, fresh, 0.05);
            assert_eq!(kind(&got), want, "{case}: {got:?}");
        }
        assert_eq!(
            approval(&[("s", &holds)], &[task(101.0, "RUNNING")], true, 0.0),
            Approval::Continue { tasks: 1 }
        );
        assert_eq!(
            approval(&[("s", &holds)], &[task(99.0, "RUNNING")], true, 0.0),
            Approval::Rollback {
                why: "task abc was launched before s's new value was current".into()
            }
        );
    }

    #[test]
    fn pause_hooks() {
        let waiting = SdVerdict::UnderWay {
            stage: "POST_SCALE_UP".into(),
            traffic_moved: false,
            awaiting_hook: Some("h1".into()),
        };
        let running = SdVerdict::UnderWay {
            stage: "POST_SCALE_UP".into(),
            traffic_moved: false,
            awaiting_hook: None,
        };
        let failed = SdVerdict::Failed { reason: "x".into() };
        // (case, service deployment known, verdict, waits)
        let table: Vec<(&str, Option<&str>, Option<&SdVerdict>, bool)> = vec![
            ("waiting at a PAUSE hook", Some(OURS), Some(&waiting), true),
            (
                "under way, no hook waiting",
                Some(OURS),
                Some(&running),
                false,
            ),
            ("no record read yet", Some(OURS), None, false),
            ("no service deployment known", None, Some(&waiting), false),
            (
                "successful",
                Some(OURS),
                Some(&SdVerdict::Successful),
                false,
            ),
            ("failed", Some(OURS), Some(&failed), false),
        ];
        for (case, sd, verdict, waits) in table {
            assert_eq!(paused_at(sd, verdict).is_some(), waits, "{case}");
        }
        let p = paused_at(Some(OURS), Some(&waiting)).expect("waits");
        assert_eq!(p.stage, "POST_SCALE_UP");
        assert_eq!(
            p.command("CONTINUE"),
            format!("aws ecs continue-service-deployment --service-deployment-arn {OURS} --hook-id h1 --action CONTINUE --region eu-west-1")
        );
        // From the record: a PAUSE hook AWAITING_ACTION is what waits; a Lambda hook
        // in progress is not ours to continue.
        let mut r = staged("IN_PROGRESS", "POST_SCALE_UP", 0.0);
        r.hooks = vec![HookObs {
            id: "lambda".into(),
            target_type: "AWS_LAMBDA".into(),
            status: "IN_PROGRESS".into(),
        }];
        assert_eq!(kind(&judge_service_deployment(&r, Some(OURS))), "under way");
        r.hooks.push(HookObs {
            id: "pause".into(),
            target_type: "PAUSE".into(),
            status: "AWAITING_ACTION".into(),
        });
        let v = judge_service_deployment(&r, Some(OURS));
        assert_eq!(
            paused_at(Some(OURS), Some(&v)).map(|p| p.hook_id),
            Some("pause".to_string())
        );
    }

    #[test]
    fn rolling_deployments() {
        let mut tripped = rec("IN_PROGRESS");
        tripped.breaker_status = "TRIGGERED".into();
        tripped.failure_count = 3;
        // (case, record, currentServiceDeployment, verdict)
        let table: Vec<(&str, ServiceDeploymentRecord, Option<&str>, &str)> = vec![
            ("pending", rec("PENDING"), Some(OURS), "under way"),
            ("in progress", rec("IN_PROGRESS"), Some(OURS), "under way"),
            ("successful", rec("SUCCESSFUL"), Some(OURS), "successful"),
            (
                "successful, then a newer one started: follow it",
                rec("SUCCESSFUL"),
                Some(NEWER),
                "superseded",
            ),
            (
                "superseded by someone else's deploy: not a failure",
                rec("STOPPED"),
                Some(NEWER),
                "superseded",
            ),
            (
                "stopped and still current: failed without rollback",
                rec("STOPPED"),
                Some(OURS),
                "failed",
            ),
            (
                "stopped, no current deployment known",
                rec("STOPPED"),
                None,
                "failed",
            ),
            (
                "breaker tripped, status not moved yet",
                tripped,
                Some(OURS),
                "failed",
            ),
            (
                "circuit breaker rollback",
                rec("ROLLBACK_IN_PROGRESS"),
                Some(OURS),
                "failed",
            ),
            (
                "rolled back",
                rec("ROLLBACK_SUCCESSFUL"),
                Some(OURS),
                "failed",
            ),
            (
                "rollback asked",
                rec("ROLLBACK_REQUESTED"),
                Some(OURS),
                "failed",
            ),
            (
                "rollback failed",
                rec("ROLLBACK_FAILED"),
                Some(OURS),
                "failed",
            ),
            (
                "a stop was asked: wait for how it ends",
                rec("STOP_REQUESTED"),
                Some(OURS),
                "under way",
            ),
            (
                "a status this build does not know: no claim",
                rec("SOMETHING_NEW"),
                Some(OURS),
                "under way",
            ),
        ];
        for (case, r, current, want) in table {
            assert_eq!(kind(&judge_service_deployment(&r, current)), want, "{case}");
        }
    }

    #[test]
    fn superseded_names_the_deployment_to_follow() {
        assert_eq!(
            judge_service_deployment(&rec("STOPPED"), Some(NEWER)),
            SdVerdict::Superseded { by: NEWER.into() }
        );
        // A superseded deployment is final for itself, and the newer one is judged on.
        assert!(judge_service_deployment(&rec("STOPPED"), Some(NEWER)).is_final());
        assert!(!judge_service_deployment(&rec("IN_PROGRESS"), Some(OURS)).is_final());
    }

    #[test]
    fn staged_deployments_blue_green_linear_canary() {
        let pause = |status: &str| HookObs {
            id: "hook-1".into(),
            target_type: "PAUSE".into(),
            status: status.into(),
        };
        let mut waiting = staged("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0);
        waiting.hooks = vec![pause("AWAITING_ACTION")];
        let mut continued = staged("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 0.0);
        continued.hooks = vec![pause("SUCCEEDED")];
        let mut alarm = staged("IN_PROGRESS", "BAKE_TIME", 100.0);
        alarm.triggered_alarms = vec!["viewer-5xx".into()];
        let mut alarm_rollback = staged("ROLLBACK_IN_PROGRESS", "BAKE_TIME", 0.0);
        alarm_rollback.triggered_alarms = vec!["viewer-5xx".into()];
        let mut hook_failed = staged("ROLLBACK_SUCCESSFUL", "POST_SCALE_UP", 0.0);
        hook_failed.hooks = vec![pause("FAILED")];
        let mut hook_timed_out = staged("ROLLBACK_IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0);
        hook_timed_out.hooks = vec![pause("TIMED_OUT")];
        let table: Vec<(&str, ServiceDeploymentRecord, &str)> = vec![
            (
                "blue/green scaling up",
                staged("IN_PROGRESS", "SCALE_UP", 0.0),
                "under way",
            ),
            (
                "test traffic only",
                staged("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0),
                "under way",
            ),
            ("PAUSE hook waiting", waiting, "waiting at a hook"),
            ("PAUSE hook continued", continued, "under way"),
            (
                "canary step: 5% on green",
                staged("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 5.0),
                "under way",
            ),
            (
                "linear at its last step",
                staged("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 100.0),
                "under way, traffic moved",
            ),
            (
                "bake time: blue still runs, traffic on green",
                staged("IN_PROGRESS", "BAKE_TIME", 100.0),
                "under way, traffic moved",
            ),
            (
                "clean-up",
                staged("IN_PROGRESS", "CLEAN_UP", 100.0),
                "under way, traffic moved",
            ),
            (
                "done",
                staged("SUCCESSFUL", "CLEAN_UP", 100.0),
                "successful",
            ),
            ("alarm in ALARM, not yet rolled back", alarm, "failed"),
            ("alarm rollback", alarm_rollback, "failed"),
            ("hook failed: rolled back", hook_failed, "failed"),
            ("hook timed out: rolled back", hook_timed_out, "failed"),
        ];
        for (case, r, want) in table {
            assert_eq!(
                kind(&judge_service_deployment(&r, Some(OURS))),
                want,
                "{case}"
            );
        }
    }

    #[test]
    fn failure_reasons_name_the_cause() {
        let mut r = staged("ROLLBACK_IN_PROGRESS", "BAKE_TIME", 0.0);
        r.triggered_alarms = vec!["viewer-5xx".into()];
        r.rollback_reason = Some("alarm detected".into());
        let SdVerdict::Failed { reason } = judge_service_deployment(&r, Some(OURS)) else {
            panic!("a rollback is a failure");
        };
        assert_eq!(
            reason,
            "service deployment rollback in progress: alarm viewer-5xx fired; alarm detected"
        );
        let mut r = rec("STOPPED");
        r.status_reason = "ECS deployment circuit breaker: tasks failed to start.".into();
        let SdVerdict::Failed { reason } = judge_service_deployment(&r, Some(OURS)) else {
            panic!("stopped while current is a failure");
        };
        assert!(reason.contains("circuit breaker"), "{reason}");
    }

    #[test]
    fn least_rollout_time_per_strategy() {
        // (case, strategy, bake, linear, canary, seconds)
        #[allow(clippy::type_complexity)]
        let table: Vec<(
            &str,
            &str,
            Option<i32>,
            Option<(Option<f64>, Option<i32>)>,
            Option<(Option<f64>, Option<i32>)>,
            u64,
        )> = vec![
            ("rolling", "ROLLING", None, None, None, 0),
            ("no strategy given: rolling", "", Some(30), None, None, 0),
            (
                "blue/green: the bake",
                "BLUE_GREEN",
                Some(10),
                None,
                None,
                600,
            ),
            (
                "blue/green, a day's bake",
                "BLUE_GREEN",
                Some(1440),
                None,
                None,
                86_400,
            ),
            (
                "linear defaults: 10 steps, 9 step bakes of 6m",
                "LINEAR",
                None,
                None,
                None,
                9 * 360,
            ),
            (
                "linear 50%: one step bake, then the bake",
                "LINEAR",
                Some(10),
                Some((Some(50.0), Some(1))),
                None,
                60 + 600,
            ),
            (
                "linear 30%: 4 steps",
                "LINEAR",
                Some(0),
                Some((Some(30.0), Some(2))),
                None,
                3 * 120,
            ),
            (
                "linear 100%: one step",
                "LINEAR",
                Some(5),
                Some((Some(100.0), Some(6))),
                None,
                300,
            ),
            (
                "canary defaults: 10m canary",
                "CANARY",
                None,
                None,
                None,
                600,
            ),
            (
                "canary 20% for 1m, bake 10m",
                "CANARY",
                Some(10),
                None,
                Some((Some(20.0), Some(1))),
                60 + 600,
            ),
            (
                "canary 100%: no canary bake",
                "CANARY",
                Some(3),
                None,
                Some((Some(100.0), Some(10))),
                180,
            ),
            (
                "a strategy this build does not know",
                "FUTURE",
                Some(10),
                None,
                None,
                0,
            ),
        ];
        for (case, strategy, bake, linear, canary, want) in table {
            assert_eq!(
                least_rollout_seconds(strategy, bake, linear, canary),
                want,
                "{case}"
            );
        }
        assert_eq!(human_seconds(0), "0s");
        assert_eq!(human_seconds(660), "11m");
        assert_eq!(human_seconds(5430), "1h 30m 30s");
        assert_eq!(human_seconds(86_400), "24h");
    }

    #[test]
    fn a_rollout_longer_than_the_timeout_is_refused() {
        let services = [
            ("api", "ROLLING", 0),
            ("viewer", "BLUE_GREEN", 3600),
            ("web", "LINEAR", 1200),
        ];
        assert_eq!(
            too_slow_for(&services, 3600),
            None,
            "exactly the timeout fits"
        );
        assert_eq!(
            too_slow_for(&services[..1], 10),
            None,
            "rolling has no least time"
        );
        let (message, hint) = too_slow_for(&services, 1800).expect("viewer is too slow");
        assert_eq!(
            message,
            "service viewer deploys BLUE_GREEN: its bake times and traffic steps alone take at least 1h, longer than --timeout 30m"
        );
        assert!(hint.starts_with("give --timeout 1h 10m or more"), "{hint}");
        let (message, _) = too_slow_for(&services, 600).expect("the slowest is named");
        assert!(message.starts_with("service viewer"), "{message}");
    }

    #[test]
    fn until_traffic_refuses_traffic_steps_longer_than_the_timeout() {
        // (name, strategy, least seconds of traffic steps): a blue/green shift is at once.
        let services = [
            ("api", "ROLLING", 0),
            ("viewer", "BLUE_GREEN", 0),
            ("web", "LINEAR", 1620),
            ("pay", "CANARY", 600),
        ];
        assert_eq!(traffic_too_slow_for(&services, 1620), None, "exactly fits");
        assert_eq!(traffic_too_slow_for(&services[..2], 1), None);
        let (message, hint) = traffic_too_slow_for(&services, 900).expect("web is too slow");
        assert_eq!(
            message,
            "service web deploys LINEAR: its traffic steps alone take at least 27m before all production traffic is on the new revision, longer than --timeout 15m, so --until traffic cannot end"
        );
        assert_eq!(
            hint,
            "give --timeout 37m or more, or leave the service out with --services"
        );
        let (message, _) = traffic_too_slow_for(&services[3..], 599).expect("canary");
        assert!(
            message.starts_with("service pay deploys CANARY"),
            "{message}"
        );
        // A linear service's steps without its final bake: 10% steps, 6 minutes between.
        assert_eq!(least_rollout_seconds("LINEAR", None, None, None), 9 * 360);
        assert_eq!(
            least_rollout_seconds("CANARY", None, None, Some((Some(20.0), Some(1)))),
            60
        );
        assert_eq!(least_rollout_seconds("BLUE_GREEN", None, None, None), 0);
    }

    #[test]
    fn breaker_threshold_is_half_the_tasks_within_3_and_200() {
        for (desired, want) in [
            (0, 3),
            (1, 3),
            (2, 3),
            (6, 3),
            (7, 4),
            (10, 5),
            (401, 200),
            (1000, 200),
        ] {
            assert_eq!(breaker_threshold(desired), want, "desired {desired}");
        }
    }

    #[test]
    fn our_detector_covers_what_the_breaker_does_not() {
        // (case, breaker, strategy, --max-task-failures, desired, threshold)
        #[allow(clippy::type_complexity)]
        let table: Vec<(
            &str,
            Option<(bool, bool)>,
            &str,
            Option<u32>,
            i32,
            Option<i32>,
        )> = vec![
            ("rolling, no breaker", None, "", None, 2, Some(3)),
            (
                "rolling, breaker off",
                Some((false, false)),
                "ROLLING",
                None,
                10,
                Some(5),
            ),
            (
                "rolling, breaker on: ECS's",
                Some((true, true)),
                "ROLLING",
                None,
                10,
                None,
            ),
            (
                "rolling, breaker on without rollback: ECS's",
                Some((true, false)),
                "",
                None,
                10,
                None,
            ),
            (
                "blue/green: the breaker is for rolling only",
                Some((true, true)),
                "BLUE_GREEN",
                None,
                2,
                Some(3),
            ),
            ("linear", None, "LINEAR", None, 8, Some(4)),
            ("canary", None, "CANARY", None, 8, Some(4)),
            (
                "--max-task-failures overrides",
                Some((true, true)),
                "ROLLING",
                Some(1),
                10,
                Some(1),
            ),
            (
                "--max-task-failures without breaker",
                None,
                "",
                Some(7),
                2,
                Some(7),
            ),
        ];
        for (case, breaker, strategy, max, desired, want) in table {
            assert_eq!(
                detector_threshold(breaker, strategy, max, desired),
                want,
                "{case}"
            );
        }
    }
}
