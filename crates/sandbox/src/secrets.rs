//! Secrets Manager: secrets, versions, staging labels, and what ECS reads at task launch.

use serde_json::Value;

use crate::{AwsError, Ctx, OpResult};

/// What a task got when it resolved one `valueFrom` at launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// Full ARN of the secret.
    pub secret_arn: String,
    /// Secret name.
    pub name: String,
    /// The version id read.
    pub version_id: String,
    /// The JSON key selected, if any.
    pub json_key: Option<String>,
    /// The value handed to the container (the key's value when a key was selected).
    pub value: String,
}

/// Where ECS gets secret values at task launch. [`SecretsStore`] is the real one; ECS unit
/// tests use a fake.
pub trait SecretSource {
    /// Resolves an ECS `valueFrom` as the ECS agent does at task launch. `Err` carries the
    /// text that follows `unable to retrieve secret from asm: ` in ECS's stoppedReason
    /// (e.g. `ResourceNotFoundException: Secrets Manager can't find the specified secret.`).
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String>;
}

/// All secrets of the account.
#[derive(Debug, Default)]
pub struct SecretsStore {}

impl SecretsStore {
    /// Runs one Secrets Manager operation.
    pub fn handle(&mut self, _ctx: &mut Ctx<'_>, operation: &str, _body: &Value) -> OpResult {
        Err(AwsError::new(
            "UnknownOperationException",
            format!("Unknown operation {operation}"),
        ))
    }

    /// State as JSON, without values.
    pub fn snapshot(&self) -> Value {
        Value::Array(vec![])
    }
}

impl SecretSource for SecretsStore {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        _region: &str,
        _account: &str,
    ) -> Result<Resolved, String> {
        Err(format!("ResourceNotFoundException: Secrets Manager can't find the specified secret: {value_from}"))
    }
}
