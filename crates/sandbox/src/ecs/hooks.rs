//! Lifecycle hooks and deployment alarms.
//!
//! A hook runs when the deployment reaches a stage it names. `PAUSE` waits
//! (`AWAITING_ACTION`) for `ContinueServiceDeployment`; `AWS_LAMBDA` is `IN_PROGRESS` until
//! a [`HookRule`] answers it (succeed or fail, after some virtual seconds; no rule: it
//! succeeds at once). Past `timeoutInMinutes` a hook is `TIMED_OUT` and its timeout action
//! applies (`ROLLBACK` or `CONTINUE`). A failed hook rolls the deployment back.
//!
//! Alarms: CloudWatch alarm states (`OK`, `ALARM`, `INSUFFICIENT_DATA`) set through the
//! control API or a scenario. A deployment whose `alarms.enable` names an alarm in `ALARM`
//! fails (`deployment failed: alarm detected.`), and rolls back when `alarms.rollback`.

use serde::{Deserialize, Serialize};

use super::service_deployments::{HookRun, HookStatus};
use super::sim::{hex_id, Cause};
use super::staged::HookGate;
use super::strategy::{HookAction, HookStage, HookTarget};
use super::Ecs;
use crate::Ctx;

/// How a Lambda hook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookResult {
    /// The Lambda returns `SUCCEEDED`.
    Succeed,
    /// The Lambda returns `FAILED`: the deployment rolls back.
    Fail,
    /// The Lambda never answers: the hook times out.
    NoAnswer,
}

/// A rule that answers `AWS_LAMBDA` lifecycle hooks (scenario `[[hook_rules]]`, control
/// API `PUT /_sandbox/hook-rules`). The first matching rule wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookRule {
    /// Cluster name; any when absent.
    #[serde(default)]
    pub cluster: Option<String>,
    /// Service name; any when absent.
    #[serde(default)]
    pub service: Option<String>,
    /// The hook's `hookTargetArn`; any when absent.
    #[serde(default)]
    pub hook_target_arn: Option<String>,
    /// The lifecycle stage (`POST_SCALE_UP`, ...); any when absent.
    #[serde(default)]
    pub stage: Option<String>,
    /// What the Lambda answers.
    pub result: HookResult,
    /// Virtual seconds before it answers (0 when absent).
    #[serde(default)]
    pub after_seconds: f64,
}

impl HookRule {
    /// Checks the rule's numbers; errors name the key as `{prefix}.after_seconds`.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        crate::limits::HOOK_ANSWER_SECONDS
            .check(&format!("{prefix}.after_seconds"), self.after_seconds)
    }
}

/// A CloudWatch alarm state.
pub const ALARM_STATES: [&str; 3] = ["OK", "ALARM", "INSUFFICIENT_DATA"];

fn stage_name(h: HookStage) -> String {
    serde_json::to_value(h)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Ecs {
    /// Replaces the Lambda hook rules.
    pub fn set_hook_rules(&mut self, rules: Vec<HookRule>) {
        self.hook_rules = rules;
    }

    /// Sets a CloudWatch alarm's state; deployments watching it react at the next
    /// scheduler pass. `Err` for a state other than `OK`, `ALARM`, `INSUFFICIENT_DATA`.
    pub fn set_alarm_state(&mut self, name: &str, state: &str) -> Result<(), String> {
        if !ALARM_STATES.contains(&state) {
            return Err(format!(
                "alarm state {state:?} must be one of OK, ALARM, INSUFFICIENT_DATA"
            ));
        }
        if name.is_empty() {
            return Err("an alarm needs a name".to_string());
        }
        self.alarms.insert(name.to_string(), state.to_string());
        self.dirty.extend(0..self.services.len());
        Ok(())
    }

    /// Alarm states by name.
    pub fn alarm_states(&self) -> &std::collections::BTreeMap<String, String> {
        &self.alarms
    }

    /// Whether an alarm the service deployment watches is in `ALARM` (recording which).
    pub(crate) fn alarm_triggered(&mut self, sd: usize) -> bool {
        let d = &self.sds[sd];
        if !d.alarms_enabled || d.status.finished() {
            return false;
        }
        let firing: Vec<String> = d
            .alarm_names
            .iter()
            .filter(|n| self.alarms.get(*n).is_some_and(|s| s == "ALARM"))
            .cloned()
            .collect();
        if firing.is_empty() {
            return false;
        }
        self.sds[sd].triggered_alarms = firing;
        true
    }

    /// Alarms of a rolling deployment in progress.
    pub(crate) fn check_alarms(&mut self, s: usize) {
        let Some(p) = self.services[s].deployments.first() else {
            return;
        };
        if p.rollout != super::model::Rollout::InProgress || p.is_rollback {
            return;
        }
        let Some(sd) = p.sd else {
            return;
        };
        if self.alarm_triggered(sd) {
            self.fail_primary(s, Cause::Alarm);
        }
    }

    /// Starts and evaluates the hooks of the current stage, one hook stage after the other.
    pub(crate) fn run_stage_hooks(&mut self, ctx: &mut Ctx<'_>, s: usize, sd: usize) -> HookGate {
        let now = self.now;
        let stages = self.sds[sd].stage.hook_stages();
        loop {
            let phase = self.sds[sd].hook_phase;
            let Some(&hs) = stages.get(phase) else {
                return HookGate::Done;
            };
            if !self.sds[sd].hooks_started {
                self.start_hooks(ctx, s, sd, hs);
            }
            let mut waiting = false;
            let mut wakes = Vec::new();
            let mut verdict = None;
            for h in self.sds[sd].hooks.iter_mut().filter(|h| h.stage == hs) {
                if matches!(
                    h.status,
                    HookStatus::AwaitingAction | HookStatus::InProgress
                ) {
                    match h.answer {
                        Some((at, ok)) if !h.pause && now >= at => {
                            h.status = if ok {
                                HookStatus::Succeeded
                            } else {
                                HookStatus::Failed
                            };
                        }
                        _ if now >= h.expires_at => h.status = HookStatus::TimedOut,
                        answer => {
                            waiting = true;
                            wakes.push(h.expires_at);
                            if let Some((at, _)) = answer.filter(|_| !h.pause) {
                                wakes.push(at);
                            }
                            continue;
                        }
                    }
                }
                let stage = stage_name(h.stage);
                match h.status {
                    HookStatus::Failed if verdict.is_none() => {
                        verdict = Some(if h.pause {
                            format!(
                                "Lifecycle hook {} at {stage}: a rollback was requested.",
                                h.hook_id
                            )
                        } else {
                            format!("Lifecycle hook {} at {stage} failed.", h.hook_id)
                        });
                    }
                    HookStatus::TimedOut
                        if h.timeout_action == HookAction::Rollback && verdict.is_none() =>
                    {
                        verdict = Some(format!(
                            "Lifecycle hook {} at {stage} timed out.",
                            h.hook_id
                        ));
                    }
                    _ => {}
                }
            }
            for w in wakes {
                self.push_wake(w, s);
            }
            if let Some(reason) = verdict {
                return HookGate::Rollback(reason);
            }
            if waiting {
                return HookGate::Waiting;
            }
            let d = &mut self.sds[sd];
            d.hook_phase += 1;
            d.hooks_started = false;
        }
    }

    fn start_hooks(&mut self, ctx: &mut Ctx<'_>, s: usize, sd: usize, hs: HookStage) {
        let now = self.now;
        let svc = &self.services[s];
        let cluster = self.clusters[svc.cluster].name.clone();
        let name = svc.name.clone();
        let stage = stage_name(hs);
        let hooks: Vec<_> = svc
            .strategy
            .hooks
            .iter()
            .filter(|h| h.lifecycle_stages.contains(&hs))
            .cloned()
            .collect();
        for hook in hooks {
            let pause = hook.target_type == HookTarget::Pause;
            let expires_at = now + f64::from(hook.timeout_configuration.timeout_in_minutes) * 60.0;
            let answer = if pause {
                None
            } else {
                let rule = self.hook_rules.iter().find(|r| {
                    r.cluster.as_deref().is_none_or(|c| c == cluster)
                        && r.service.as_deref().is_none_or(|x| x == name)
                        && r.stage.as_deref().is_none_or(|x| x == stage)
                        && r.hook_target_arn
                            .as_deref()
                            .is_none_or(|a| Some(a) == hook.hook_target_arn.as_deref())
                });
                match rule {
                    None => Some((now, true)),
                    Some(r) => match r.result {
                        HookResult::Succeed => Some((now + r.after_seconds.max(0.0), true)),
                        HookResult::Fail => Some((now + r.after_seconds.max(0.0), false)),
                        HookResult::NoAnswer => None,
                    },
                }
            };
            let id = hex_id(ctx);
            self.sds[sd].hooks.push(HookRun {
                hook_id: id,
                pause,
                target_arn: if pause {
                    None
                } else {
                    hook.hook_target_arn.clone()
                },
                stage: hs,
                status: if pause {
                    HookStatus::AwaitingAction
                } else {
                    HookStatus::InProgress
                },
                expires_at,
                timeout_action: hook.timeout_configuration.action,
                answer,
            });
        }
        self.sds[sd].hooks_started = true;
    }
}
