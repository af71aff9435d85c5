//! ECS: clusters, task definitions, services, tasks and the rolling-deployment simulation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secrets::SecretSource;
use crate::{AwsError, Ctx, OpResult};

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

/// A rule that makes a service's tasks fail: "the database does not accept the new
/// password yet".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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

/// What a [`HealthRule`] does to a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthEffect {
    /// The task stops before RUNNING (`TaskFailedToStart`, essential container exited).
    FailToStart,
    /// The task reaches RUNNING, then fails its container health check and is stopped.
    FailHealthCheck,
}

/// All ECS state of the account.
#[derive(Debug, Default)]
pub struct Ecs {}

impl Ecs {
    /// Runs one ECS operation.
    pub fn handle(
        &mut self,
        _ctx: &mut Ctx<'_>,
        _secrets: &dyn SecretSource,
        operation: &str,
        _body: &Value,
    ) -> OpResult {
        Err(AwsError::new(
            "UnknownOperationException",
            format!("Unknown operation {operation}"),
        ))
    }

    /// Runs the simulation forward to `ctx.now`.
    pub fn advance(&mut self, _ctx: &mut Ctx<'_>, _secrets: &dyn SecretSource) {}

    /// Replaces the health rules.
    pub fn set_health_rules(&mut self, _rules: Vec<HealthRule>) {}

    /// Sets the timing of every service created from now on without its own.
    pub fn set_default_timing(&mut self, _timing: Timing) {}

    /// Sets one service's timing. `Err` if the cluster or service is unknown.
    pub fn set_service_timing(
        &mut self,
        _cluster: &str,
        _service: &str,
        _timing: Timing,
    ) -> Result<(), AwsError> {
        Ok(())
    }

    /// State as JSON: clusters, services, deployments, every task with what it resolved.
    pub fn snapshot(&self) -> Value {
        Value::Object(Default::default())
    }
}
