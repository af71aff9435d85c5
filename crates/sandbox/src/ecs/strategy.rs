//! Deployment strategies: the `deploymentConfiguration` fields beyond rolling (`strategy`,
//! `bakeTimeInMinutes`, `linearConfiguration`, `canaryConfiguration`, `lifecycleHooks`,
//! `alarms`), parsed with the API's own field names (botocore `ecs/2014-11-13` model) and
//! validated within the ranges the API reference gives.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::AwsError;

/// `DeploymentStrategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum Strategy {
    #[default]
    Rolling,
    BlueGreen,
    Linear,
    Canary,
}

impl Strategy {
    /// Blue/green, linear and canary run the staged lifecycle (green beside blue).
    pub(crate) fn staged(self) -> bool {
        self != Strategy::Rolling
    }
}

/// `LinearConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Linear {
    #[serde(default = "default_step")]
    pub step_percent: f64,
    #[serde(default = "default_step_bake")]
    pub step_bake_time_in_minutes: u32,
}

fn default_step() -> f64 {
    10.0
}
fn default_step_bake() -> u32 {
    6
}

/// `CanaryConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Canary {
    #[serde(default = "default_canary")]
    pub canary_percent: f64,
    #[serde(default = "default_canary_bake")]
    pub canary_bake_time_in_minutes: u32,
}

fn default_canary() -> f64 {
    5.0
}
fn default_canary_bake() -> u32 {
    10
}

/// `DeploymentLifecycleHookTargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum HookTarget {
    #[default]
    AwsLambda,
    Pause,
}

/// `DeploymentLifecycleHookAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum HookAction {
    #[default]
    Rollback,
    Continue,
}

impl HookAction {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            HookAction::Rollback => "ROLLBACK",
            HookAction::Continue => "CONTINUE",
        }
    }
}

/// `DeploymentLifecycleHookTimeoutConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HookTimeout {
    #[serde(default = "default_hook_timeout")]
    pub timeout_in_minutes: u32,
    #[serde(default)]
    pub action: HookAction,
}

fn default_hook_timeout() -> u32 {
    1440
}

impl Default for HookTimeout {
    fn default() -> Self {
        Self {
            timeout_in_minutes: default_hook_timeout(),
            action: HookAction::Rollback,
        }
    }
}

/// `DeploymentLifecycleHook`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Hook {
    #[serde(default)]
    pub target_type: HookTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_target_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    pub lifecycle_stages: Vec<HookStage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_details: Option<Value>,
    #[serde(default)]
    pub timeout_configuration: HookTimeout,
}

/// `DeploymentLifecycleHookStage`: the stages a hook may name (no `SCALE_UP`, `BAKE_TIME`
/// or `CLEAN_UP`; only hooks have `PRE_PRODUCTION_TRAFFIC_SHIFT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum HookStage {
    ReconcileService,
    PreScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    PreProductionTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
}

/// `ServiceDeploymentLifecycleStage`, in the order a deployment goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    ReconcileService,
    PreScaleUp,
    ScaleUp,
    PostScaleUp,
    TestTrafficShift,
    PostTestTrafficShift,
    ProductionTrafficShift,
    PostProductionTrafficShift,
    BakeTime,
    CleanUp,
}

impl Stage {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stage::ReconcileService => "RECONCILE_SERVICE",
            Stage::PreScaleUp => "PRE_SCALE_UP",
            Stage::ScaleUp => "SCALE_UP",
            Stage::PostScaleUp => "POST_SCALE_UP",
            Stage::TestTrafficShift => "TEST_TRAFFIC_SHIFT",
            Stage::PostTestTrafficShift => "POST_TEST_TRAFFIC_SHIFT",
            Stage::ProductionTrafficShift => "PRODUCTION_TRAFFIC_SHIFT",
            Stage::PostProductionTrafficShift => "POST_PRODUCTION_TRAFFIC_SHIFT",
            Stage::BakeTime => "BAKE_TIME",
            Stage::CleanUp => "CLEAN_UP",
        }
    }

    pub(crate) fn next(self) -> Stage {
        match self {
            Stage::ReconcileService => Stage::PreScaleUp,
            Stage::PreScaleUp => Stage::ScaleUp,
            Stage::ScaleUp => Stage::PostScaleUp,
            Stage::PostScaleUp => Stage::TestTrafficShift,
            Stage::TestTrafficShift => Stage::PostTestTrafficShift,
            Stage::PostTestTrafficShift => Stage::ProductionTrafficShift,
            Stage::ProductionTrafficShift => Stage::PostProductionTrafficShift,
            Stage::PostProductionTrafficShift => Stage::BakeTime,
            Stage::BakeTime | Stage::CleanUp => Stage::CleanUp,
        }
    }

    /// The hook stages run on entering this stage, in order. `PRE_PRODUCTION_TRAFFIC_SHIFT`
    /// hooks run at the end of `POST_TEST_TRAFFIC_SHIFT`, just before production traffic
    /// moves (the deployment still reports `POST_TEST_TRAFFIC_SHIFT` then: inferred).
    pub(crate) fn hook_stages(self) -> &'static [HookStage] {
        match self {
            Stage::ReconcileService => &[HookStage::ReconcileService],
            Stage::PreScaleUp => &[HookStage::PreScaleUp],
            Stage::PostScaleUp => &[HookStage::PostScaleUp],
            Stage::TestTrafficShift => &[HookStage::TestTrafficShift],
            Stage::PostTestTrafficShift => &[
                HookStage::PostTestTrafficShift,
                HookStage::PreProductionTrafficShift,
            ],
            Stage::ProductionTrafficShift => &[HookStage::ProductionTrafficShift],
            Stage::PostProductionTrafficShift => &[HookStage::PostProductionTrafficShift],
            Stage::ScaleUp | Stage::BakeTime | Stage::CleanUp => &[],
        }
    }
}

/// `DeploymentAlarms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Alarms {
    pub alarm_names: Vec<String>,
    pub enable: bool,
    pub rollback: bool,
}

/// The strategy part of a service's `deploymentConfiguration`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct StrategyConfig {
    pub strategy: Strategy,
    pub bake_minutes: Option<u32>,
    pub linear: Option<Linear>,
    pub canary: Option<Canary>,
    pub hooks: Vec<Hook>,
    pub alarms: Option<Alarms>,
}

fn field<T: serde::de::DeserializeOwned>(dc: &Value, key: &str) -> Result<Option<T>, AwsError> {
    match dc.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            AwsError::invalid_parameter(format!("Invalid value for parameter '{key}': {e}"))
        }),
    }
}

fn range(what: &str, v: f64, lo: f64, hi: f64) -> Result<(), AwsError> {
    if v < lo || v > hi || !v.is_finite() {
        return Err(AwsError::invalid_parameter(format!(
            "{what} must be between {lo} and {hi}."
        )));
    }
    Ok(())
}

impl StrategyConfig {
    /// Applies the fields present in a `deploymentConfiguration` request over `self`.
    pub(crate) fn apply(&mut self, dc: &Value) -> Result<(), AwsError> {
        let mut next = self.clone();
        if let Some(s) = field(dc, "strategy")? {
            next.strategy = s;
        }
        if let Some(b) = field::<u32>(dc, "bakeTimeInMinutes")? {
            range("bakeTimeInMinutes", f64::from(b), 0.0, 1440.0)?;
            next.bake_minutes = Some(b);
        }
        if let Some(l) = field::<Linear>(dc, "linearConfiguration")? {
            range(
                "linearConfiguration.stepPercent",
                l.step_percent,
                3.0,
                100.0,
            )?;
            range(
                "linearConfiguration.stepBakeTimeInMinutes",
                f64::from(l.step_bake_time_in_minutes),
                0.0,
                1440.0,
            )?;
            next.linear = Some(l);
        }
        if let Some(c) = field::<Canary>(dc, "canaryConfiguration")? {
            range(
                "canaryConfiguration.canaryPercent",
                c.canary_percent,
                0.1,
                100.0,
            )?;
            range(
                "canaryConfiguration.canaryBakeTimeInMinutes",
                f64::from(c.canary_bake_time_in_minutes),
                0.0,
                1440.0,
            )?;
            next.canary = Some(c);
        }
        if let Some(h) = field::<Vec<Hook>>(dc, "lifecycleHooks")? {
            for hook in &h {
                range(
                    "timeoutConfiguration.timeoutInMinutes",
                    f64::from(hook.timeout_configuration.timeout_in_minutes),
                    1.0,
                    20160.0,
                )?;
                if hook.target_type == HookTarget::AwsLambda && hook.hook_target_arn.is_none() {
                    return Err(AwsError::invalid_parameter(
                        "hookTargetArn must be provided for an AWS_LAMBDA lifecycle hook.",
                    ));
                }
                if hook.lifecycle_stages.is_empty() {
                    return Err(AwsError::invalid_parameter(
                        "lifecycleStages must name at least one stage.",
                    ));
                }
            }
            next.hooks = h;
        }
        if let Some(a) = field::<Alarms>(dc, "alarms")? {
            next.alarms = Some(a);
        }
        if next.strategy == Strategy::BlueGreen && next.bake_minutes.is_none() {
            // "You must provide this parameter when you use the BLUE_GREEN deployment
            // strategy." (API reference, bakeTimeInMinutes).
            return Err(AwsError::invalid_parameter(
                "bakeTimeInMinutes must be provided when the deployment strategy is BLUE_GREEN.",
            ));
        }
        *self = next;
        Ok(())
    }

    /// The bake time after production traffic has moved, in seconds.
    pub(crate) fn bake_seconds(&self) -> f64 {
        f64::from(self.bake_minutes.unwrap_or(0)) * 60.0
    }

    /// The production traffic steps of the strategy: (green weight, bake after it in
    /// seconds). The last step is always 100.
    pub(crate) fn production_steps(&self) -> Vec<(f64, f64)> {
        match self.strategy {
            Strategy::Linear => {
                let l = self.linear.clone().unwrap_or(Linear {
                    step_percent: default_step(),
                    step_bake_time_in_minutes: default_step_bake(),
                });
                let bake = f64::from(l.step_bake_time_in_minutes) * 60.0;
                let mut out = Vec::new();
                let mut w = 0.0;
                while w < 100.0 {
                    w = (w + l.step_percent).min(100.0);
                    // No step bake after the last step: the deployment's bake time follows.
                    out.push((w, if w < 100.0 { bake } else { 0.0 }));
                }
                out
            }
            Strategy::Canary => {
                let c = self.canary.clone().unwrap_or(Canary {
                    canary_percent: default_canary(),
                    canary_bake_time_in_minutes: default_canary_bake(),
                });
                let bake = f64::from(c.canary_bake_time_in_minutes) * 60.0;
                if c.canary_percent >= 100.0 {
                    vec![(100.0, 0.0)]
                } else {
                    vec![(c.canary_percent, bake), (100.0, 0.0)]
                }
            }
            _ => vec![(100.0, 0.0)],
        }
    }

    /// Writes the fields into a rendered `deploymentConfiguration`.
    pub(crate) fn render(&self, m: &mut serde_json::Map<String, Value>) {
        m.insert("strategy".into(), to(&self.strategy));
        if let Some(b) = self.bake_minutes {
            m.insert("bakeTimeInMinutes".into(), Value::from(b));
        }
        if let Some(l) = &self.linear {
            m.insert("linearConfiguration".into(), to(l));
        }
        if let Some(c) = &self.canary {
            m.insert("canaryConfiguration".into(), to(c));
        }
        if !self.hooks.is_empty() {
            m.insert("lifecycleHooks".into(), to(&self.hooks));
        }
        if let Some(a) = &self.alarms {
            m.insert("alarms".into(), to(a));
        }
    }
}

fn to<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
