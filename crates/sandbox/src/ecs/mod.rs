//! ECS: clusters, task definitions, services, tasks and the rolling-deployment simulation.

use serde_json::Value;

use crate::secrets::SecretsStore;
use crate::{AwsError, Ctx, OpResult};

/// All ECS state of the account.
#[derive(Debug, Default)]
pub struct Ecs {}

impl Ecs {
    /// Runs one ECS operation.
    pub fn handle(&mut self, _ctx: &mut Ctx<'_>, _secrets: &SecretsStore, operation: &str, _body: &Value) -> OpResult {
        Err(AwsError::new("UnknownOperationException", format!("Unknown operation {operation}")))
    }

    /// Runs the simulation forward to `ctx.now`.
    pub fn advance(&mut self, _ctx: &mut Ctx<'_>, _secrets: &SecretsStore) {}

    /// State as JSON: clusters, services, deployments, every task with what it resolved.
    pub fn snapshot(&self) -> Value {
        Value::Object(Default::default())
    }
}
