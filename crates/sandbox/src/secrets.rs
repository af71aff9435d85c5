//! Secrets Manager: secrets, versions, staging labels, and what ECS reads at task launch.
//!
//! Request and response fields follow the AWS API reference (AWS JSON 1.1). Staging-label
//! moves and `ClientRequestToken` idempotency follow `shared/reference/aws-behaviour.md`.
//! Values live only in [`SecretValue`], whose `Debug` is redacted, and never reach
//! [`SecretsStore::snapshot`].

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::{AwsError, Ctx, OpResult};

/// The label on the version Secrets Manager hands out by default.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The label on the version that held `AWSCURRENT` before the last move.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// The label a rotation puts on its new version until it makes it current.
pub const AWSPENDING: &str = "AWSPENDING";
/// Virtual seconds from a rotation's new version (`AWSPENDING`) to the move of
/// `AWSCURRENT`, unless the scenario says otherwise (a rotation Lambda's four steps).
pub const DEFAULT_ROTATION_SECONDS: f64 = 2.0;

/// Largest `SecretString` / `SecretBinary`, in bytes.
const MAX_VALUE_BYTES: usize = 65_536;
/// AWS keeps at most about this many versions; beyond it deprecated ones are pruned.
const MAX_VERSIONS: usize = 100;
/// Deprecated versions younger than this are never pruned.
const PRUNE_MIN_AGE: f64 = 24.0 * 3600.0;

const NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";

/// What a task got when it resolved one `valueFrom` at launch.
#[derive(Clone, PartialEq)]
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

impl std::fmt::Debug for Resolved {
    // The value is left out on purpose: Debug output ends up in logs and test failures.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("secret_arn", &self.secret_arn)
            .field("name", &self.name)
            .field("version_id", &self.version_id)
            .field("json_key", &self.json_key)
            .field("value", &"<redacted>")
            .finish()
    }
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

    /// The digest ECS resolves a container image to (an ECR tag's, at a deployment or,
    /// where version consistency is disabled, at each launch); `None` when it cannot.
    fn resolve_image(&self, image: &str, region: &str, account: &str) -> Option<String> {
        let _ = (image, region, account);
        None
    }
}

/// A secret version's payload. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretValue {
    /// `SecretString`.
    String(String),
    /// `SecretBinary`, as the raw bytes.
    Binary(Vec<u8>),
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretValue::String(_) => f.write_str("SecretString(<redacted>)"),
            SecretValue::Binary(_) => f.write_str("SecretBinary(<redacted>)"),
        }
    }
}

impl SecretValue {
    /// The value as text: the string, or the binary base64-encoded (as the wire carries it).
    pub fn as_text(&self) -> String {
        match self {
            SecretValue::String(s) => s.clone(),
            SecretValue::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
        }
    }
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// `VersionId` (the `ClientRequestToken` that created it).
    pub id: String,
    /// The payload.
    pub value: SecretValue,
    /// Creation time, epoch seconds.
    pub created: f64,
    /// Last read (GetSecretValue), epoch seconds.
    pub last_accessed: Option<f64>,
    /// Staging labels; empty = deprecated.
    pub stages: Vec<String>,
}

/// One secret.
#[derive(Debug, Clone)]
pub struct Secret {
    /// Name (`production/opg_lpa_front_csrf_salt`).
    pub name: String,
    /// Full ARN, with the 6-character suffix.
    pub arn: String,
    /// `Description`.
    pub description: Option<String>,
    /// `KmsKeyId`, when given.
    pub kms_key_id: Option<String>,
    /// Creation time.
    pub created: f64,
    /// Last change to the secret (value, labels, metadata).
    pub last_changed: f64,
    /// Last read.
    pub last_accessed: Option<f64>,
    /// When `DeleteSecret` was called (scheduled for deletion).
    pub deleted_date: Option<f64>,
    /// When the secret will really be gone.
    pub deletion_date: Option<f64>,
    /// `None` when rotation was never configured (AWS then omits the field).
    pub rotation_enabled: Option<bool>,
    /// The rotation Lambda.
    pub rotation_lambda_arn: Option<String>,
    /// `RotationRules` as given.
    pub rotation_rules: Option<Value>,
    /// The service that manages the secret (e.g. `rds`), if any.
    pub owning_service: Option<String>,
    /// Tags, in the order given.
    pub tags: Vec<(String, String)>,
    /// Versions, oldest first.
    pub versions: Vec<SecretVersion>,
    /// `LastRotatedDate`: when the last rotation finished (moved `AWSCURRENT` to its
    /// version).
    pub last_rotated: Option<f64>,
    /// `NextRotationDate`: when the next scheduled rotation starts (rotation on, with a
    /// schedule).
    pub next_rotation: Option<f64>,
    /// A rotation under way (its version carries `AWSPENDING`).
    pub rotating: Option<Rotating>,
    /// How rotations of this secret make their value and how long they take.
    pub rotation: RotationRule,
    /// Rotations finished so far.
    pub rotations: u64,
}

/// A rotation under way: `createSecret` made its version (`AWSPENDING`); `finishSecret`
/// moves `AWSCURRENT` to it at `finish_at`, unless the rotation is held.
#[derive(Debug, Clone, PartialEq)]
pub struct Rotating {
    /// The new version's id.
    pub version_id: String,
    /// When `AWSCURRENT` moves (virtual epoch seconds).
    pub finish_at: f64,
}

/// The scenario's rule for one secret's rotations (there is no Lambda in the sandbox).
#[derive(Debug, Clone, PartialEq)]
pub struct RotationRule {
    /// The next value: this text with `{n}` replaced by the rotation's number (1, 2, ...);
    /// `None`: 32 random letters and digits from the seeded source.
    pub value: Option<String>,
    /// Virtual seconds from the new version (`AWSPENDING`) to the move of `AWSCURRENT`.
    pub seconds: f64,
    /// Held mid-way: the new version stays `AWSPENDING` until released.
    pub held: bool,
}

impl Default for RotationRule {
    fn default() -> Self {
        Self {
            value: None,
            seconds: DEFAULT_ROTATION_SECONDS,
            held: false,
        }
    }
}

impl Secret {
    /// The version with this id.
    pub fn version(&self, id: &str) -> Option<&SecretVersion> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// The version carrying this staging label.
    pub fn version_with_stage(&self, stage: &str) -> Option<&SecretVersion> {
        self.versions
            .iter()
            .find(|v| v.stages.iter().any(|s| s == stage))
    }

    /// The `AWSCURRENT` version.
    pub fn current(&self) -> Option<&SecretVersion> {
        self.version_with_stage(AWSCURRENT)
    }

    /// Whether `DeleteSecret` has scheduled it for deletion.
    pub fn is_deleted(&self) -> bool {
        self.deleted_date.is_some()
    }

    /// `VersionIdsToStages` (labelled versions only).
    fn version_ids_to_stages(&self) -> Value {
        let mut m = Map::new();
        for v in self.versions.iter().filter(|v| !v.stages.is_empty()) {
            m.insert(v.id.clone(), json!(v.stages));
        }
        Value::Object(m)
    }

    fn tags_json(&self) -> Value {
        Value::Array(
            self.tags
                .iter()
                .map(|(k, v)| json!({"Key": k, "Value": v}))
                .collect(),
        )
    }

    /// The fields DescribeSecret and ListSecrets share.
    fn describe(&self, versions_key: &str) -> Value {
        let mut m = Map::new();
        m.insert("ARN".into(), json!(self.arn));
        m.insert("Name".into(), json!(self.name));
        if let Some(d) = &self.description {
            m.insert("Description".into(), json!(d));
        }
        if let Some(k) = &self.kms_key_id {
            m.insert("KmsKeyId".into(), json!(k));
        }
        if let Some(r) = self.rotation_enabled {
            m.insert("RotationEnabled".into(), json!(r));
        }
        if let Some(l) = &self.rotation_lambda_arn {
            m.insert("RotationLambdaARN".into(), json!(l));
        }
        if let Some(r) = &self.rotation_rules {
            m.insert("RotationRules".into(), r.clone());
        }
        m.insert("LastChangedDate".into(), json!(self.last_changed));
        if let Some(r) = self.last_rotated {
            m.insert("LastRotatedDate".into(), json!(r));
        }
        if let Some(n) = self
            .next_rotation
            .filter(|_| self.rotation_enabled == Some(true))
        {
            m.insert("NextRotationDate".into(), json!(n));
        }
        if let Some(a) = self.last_accessed {
            // AWS reports the access date truncated to the day.
            m.insert(
                "LastAccessedDate".into(),
                json!((a / 86400.0).floor() * 86400.0),
            );
        }
        if let Some(d) = self.deleted_date {
            m.insert("DeletedDate".into(), json!(d));
        }
        if !self.tags.is_empty() {
            m.insert("Tags".into(), self.tags_json());
        }
        m.insert(versions_key.into(), self.version_ids_to_stages());
        if let Some(o) = &self.owning_service {
            m.insert("OwningService".into(), json!(o));
        }
        m.insert("CreatedDate".into(), json!(self.created));
        Value::Object(m)
    }

    /// Moves `label` to version `to` (removing it from wherever it is). Moving
    /// `AWSCURRENT` makes `AWSPREVIOUS` follow to the version that had it.
    fn move_label(&mut self, label: &str, to: &str) {
        let old_holder = self.version_with_stage(label).map(|v| v.id.clone());
        if old_holder.as_deref() == Some(to) {
            return;
        }
        for v in &mut self.versions {
            v.stages.retain(|s| s != label);
        }
        if let Some(v) = self.versions.iter_mut().find(|v| v.id == to) {
            v.stages.push(label.to_string());
        }
        if label == AWSCURRENT {
            if let Some(old) = old_holder {
                self.move_label(AWSPREVIOUS, &old);
            }
        }
    }

    /// Drops deprecated versions past [`MAX_VERSIONS`], oldest first, never younger than
    /// a day (as AWS documents).
    fn prune(&mut self, now: f64) {
        while self.versions.len() > MAX_VERSIONS {
            let Some(i) = self
                .versions
                .iter()
                .position(|v| v.stages.is_empty() && now - v.created > PRUNE_MIN_AGE)
            else {
                return;
            };
            self.versions.remove(i);
        }
    }
}

/// All secrets of the account, by name.
#[derive(Debug, Default)]
pub struct SecretsStore {
    secrets: BTreeMap<String, Secret>,
}

/// Splits `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:RESOURCE` into its resource
/// part; `None` if it is not a Secrets Manager ARN.
fn secret_arn_resource(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() == 7 && parts[0] == "arn" && parts[2] == "secretsmanager" && parts[5] == "secret"
    {
        Some(parts[6])
    } else {
        None
    }
}

/// The partition of a region: ARNs in China and GovCloud differ.
pub fn partition_for(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

pub(crate) fn str_field<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AwsError::new(
            "SerializationException",
            format!("STRING_VALUE can not be converted to {key}"),
        )),
    }
}

pub(crate) fn required<'a>(body: &'a Value, key: &str) -> Result<&'a str, AwsError> {
    str_field(body, key)?.ok_or_else(|| AwsError::missing_field(key))
}

pub(crate) fn bool_field(body: &Value, key: &str) -> Result<Option<bool>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(AwsError::new(
            "SerializationException",
            format!("{key} must be a boolean"),
        )),
    }
}

pub(crate) fn int_field(body: &Value, key: &str) -> Result<Option<i64>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| {
            AwsError::new(
                "SerializationException",
                format!("{key} must be an integer"),
            )
        }),
    }
}

/// Reads `SecretString` / `SecretBinary`; `Ok(None)` when neither is given.
fn value_of(body: &Value) -> Result<Option<SecretValue>, AwsError> {
    let s = str_field(body, "SecretString")?;
    let b = str_field(body, "SecretBinary")?;
    let value = match (s, b) {
        (Some(_), Some(_)) => {
            return Err(AwsError::invalid_parameter(
                "You can't specify both a binary secret value and a string secret value in the same secret.",
            ))
        }
        (Some(s), None) => SecretValue::String(s.to_string()),
        (None, Some(b)) => SecretValue::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| {
                    AwsError::new(
                        "SerializationException",
                        "SecretBinary must be base64-encoded",
                    )
                })?,
        ),
        (None, None) => return Ok(None),
    };
    let len = match &value {
        SecretValue::String(s) => s.len(),
        SecretValue::Binary(b) => b.len(),
    };
    if len == 0 || len > MAX_VALUE_BYTES {
        return Err(AwsError::invalid_parameter(format!(
            "The secret value must be between 1 and {MAX_VALUE_BYTES} bytes."
        )));
    }
    Ok(Some(value))
}

/// `ClientRequestToken`, or a fresh one (the SDKs send one; the CLI too, but raw clients
/// may not).
fn token_of(body: &Value, ctx: &mut Ctx<'_>) -> Result<String, AwsError> {
    match str_field(body, "ClientRequestToken")? {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t.to_string()),
        Some(_) => Err(AwsError::invalid_parameter(
            "ClientRequestToken must be between 32 and 64 characters long.",
        )),
        None => Ok(uuid_from(ctx)),
    }
}

/// A UUID v4 from the seeded source, so seeded runs are deterministic.
pub fn uuid_from(ctx: &mut Ctx<'_>) -> String {
    let bytes: [u8; 16] = ctx.rng.random();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn stages_of(body: &Value) -> Result<Option<Vec<String>>, AwsError> {
    match body.get("VersionStages") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => {
            let mut out = Vec::new();
            for s in a {
                let s = s.as_str().ok_or_else(|| {
                    AwsError::new("SerializationException", "VersionStages must be strings")
                })?;
                if s.is_empty() || s.len() > 256 {
                    return Err(AwsError::invalid_parameter(
                        "A staging label must be between 1 and 256 characters long.",
                    ));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            if out.len() > 20 {
                return Err(AwsError::new(
                    "LimitExceededException",
                    "A version can have at most 20 staging labels.",
                ));
            }
            Ok(Some(out))
        }
        Some(_) => Err(AwsError::new(
            "SerializationException",
            "VersionStages must be a list",
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 512
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

/// Pagination: `NextToken` is the index of the next item, as text.
pub(crate) fn page<T: Clone>(
    items: &[T],
    body: &Value,
    ceiling: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = match int_field(body, "MaxResults")? {
        None => ceiling,
        Some(n) if (1..=ceiling as i64).contains(&n) => n as usize,
        Some(_) => {
            return Err(AwsError::invalid_parameter(format!(
                "MaxResults must be between 1 and {ceiling}."
            )))
        }
    };
    let start = match str_field(body, "NextToken")? {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| {
                AwsError::new(
                    "InvalidNextTokenException",
                    "The NextToken value is invalid.",
                )
            })?,
    };
    let end = (start + max).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}

impl SecretsStore {
    /// Finds a secret by name, full ARN or partial ARN (the ARN without `-XXXXXX`).
    pub fn find(&self, id: &str) -> Option<&Secret> {
        self.find_name(id).and_then(|n| self.secrets.get(&n))
    }

    /// Every secret, by name.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.secrets.values()
    }

    /// Number of secrets (including those scheduled for deletion).
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Whether there are no secrets.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    fn find_name(&self, id: &str) -> Option<String> {
        let Some(resource) = secret_arn_resource(id) else {
            return self.secrets.contains_key(id).then(|| id.to_string());
        };
        // Full ARN: the name is the resource minus "-XXXXXX".
        if resource.len() > 7 && resource.as_bytes()[resource.len() - 7] == b'-' {
            let name = &resource[..resource.len() - 7];
            if self.secrets.get(name).is_some_and(|s| s.arn == id) {
                return Some(name.to_string());
            }
        }
        // Partial ARN: the whole resource is the name.
        let s = self.secrets.get(resource)?;
        (s.arn.len() == id.len() + 7 && s.arn.starts_with(id)).then(|| resource.to_string())
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Secret, AwsError> {
        let name = self
            .find_name(id)
            .ok_or_else(|| AwsError::resource_not_found(NOT_FOUND))?;
        Ok(self.secrets.get_mut(&name).expect("name just found"))
    }

    fn get(&self, id: &str) -> Result<&Secret, AwsError> {
        self.find(id)
            .ok_or_else(|| AwsError::resource_not_found(NOT_FOUND))
    }

    /// Replaces the random 6-character ARN suffix (scenarios pin ARNs that task
    /// definitions quote; there is no AWS operation for it).
    pub fn set_arn_suffix(&mut self, name: &str, suffix: &str) -> Result<(), String> {
        if suffix.len() != 6 || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!(
                "secret {name}: arn_suffix must be 6 letters or digits"
            ));
        }
        let s = self
            .secrets
            .get_mut(name)
            .ok_or_else(|| format!("secret {name} does not exist"))?;
        let base = &s.arn[..s.arn.len() - 6];
        s.arn = format!("{base}{suffix}");
        Ok(())
    }

    /// Marks a secret as managed by another service (no AWS operation does that).
    pub fn set_owning_service(&mut self, name: &str, service: &str) -> Result<(), String> {
        let s = self
            .secrets
            .get_mut(name)
            .ok_or_else(|| format!("secret {name} does not exist"))?;
        s.owning_service = Some(service.to_string());
        Ok(())
    }

    /// Sets how rotations of `name` make their value and how long they take (no AWS
    /// operation does that: it stands for the rotation Lambda).
    pub fn set_rotation_rule(&mut self, name: &str, rule: RotationRule) -> Result<(), String> {
        let s = self
            .secrets
            .get_mut(name)
            .ok_or_else(|| format!("secret {name} does not exist"))?;
        if !(rule.seconds.is_finite() && rule.seconds >= 0.0) {
            return Err(format!("secret {name}: rotation seconds must be 0 or more"));
        }
        s.rotation = rule;
        Ok(())
    }

    /// Holds (or releases) rotations of `name` mid-way: held, a rotation's version stays
    /// `AWSPENDING`; released, `AWSCURRENT` moves at once (or when it was due, if later).
    pub fn hold_rotation(&mut self, name: &str, held: bool, now: f64) -> Result<(), String> {
        let s = self
            .secrets
            .get_mut(name)
            .ok_or_else(|| format!("secret {name} does not exist"))?;
        if s.rotation.held && !held {
            if let Some(r) = &mut s.rotating {
                r.finish_at = r.finish_at.max(now);
            }
        }
        s.rotation.held = held;
        Ok(())
    }

    /// The virtual time of the next rotation step (a scheduled rotation starting, or one
    /// under way and not held moving `AWSCURRENT`), if any.
    pub fn next_due(&self) -> Option<f64> {
        self.secrets
            .values()
            .filter(|s| !s.is_deleted())
            .filter_map(|s| match &s.rotating {
                Some(_) if s.rotation.held => None,
                Some(r) => Some(r.finish_at),
                None => s.next_rotation.filter(|_| s.rotation_enabled == Some(true)),
            })
            .min_by(f64::total_cmp)
    }

    /// Runs every rotation step due at `ctx.now` (see [`Self::next_due`]).
    pub fn step(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        for s in self.secrets.values_mut().filter(|s| !s.is_deleted()) {
            match &s.rotating {
                Some(r) if !s.rotation.held && r.finish_at <= now => finish_rotation(s, now),
                Some(_) => {}
                None => {
                    if s.rotation_enabled == Some(true) && s.next_rotation.is_some_and(|n| n <= now)
                    {
                        s.next_rotation = None;
                        start_rotation(s, ctx, None);
                    }
                }
            }
        }
    }

    /// Removes secrets whose recovery window has passed.
    fn purge(&mut self, now: f64) {
        self.secrets
            .retain(|_, s| s.deletion_date.is_none_or(|d| d > now));
    }

    /// Runs one Secrets Manager operation.
    pub fn handle(&mut self, ctx: &mut Ctx<'_>, operation: &str, body: &Value) -> OpResult {
        self.purge(ctx.now);
        match operation {
            "CreateSecret" => self.create_secret(ctx, body),
            "PutSecretValue" => self.put_secret_value(ctx, body),
            "GetSecretValue" => self.get_secret_value(ctx, body),
            "DescribeSecret" => self.describe_secret(body),
            "ListSecretVersionIds" => self.list_secret_version_ids(body),
            "UpdateSecretVersionStage" => self.update_secret_version_stage(ctx, body),
            "ListSecrets" => self.list_secrets(body),
            "DeleteSecret" => self.delete_secret(ctx, body),
            "RestoreSecret" => self.restore_secret(ctx, body),
            "RotateSecret" => self.rotate_secret(ctx, body),
            "CancelRotateSecret" => self.cancel_rotate_secret(ctx, body),
            "TagResource" => self.tag_resource(ctx, body),
            "UntagResource" => self.untag_resource(ctx, body),
            "UpdateSecret" => self.update_secret(ctx, body),
            _ => Err(AwsError::new(
                "UnknownOperationException",
                format!("Unknown operation {operation}"),
            )),
        }
    }

    fn create_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let name = required(body, "Name")?;
        if !valid_name(name) {
            return Err(AwsError::invalid_parameter(
                "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
            ));
        }
        let value = value_of(body)?;
        let token = token_of(body, ctx)?;
        if let Some(existing) = self.secrets.get(name) {
            if existing.is_deleted() {
                return Err(AwsError::invalid_request(
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            // A retried create (same token, same value) succeeds without a change.
            if let Some(v) = existing.version(&token) {
                if Some(&v.value) == value.as_ref() {
                    return Ok(
                        json!({"ARN": existing.arn, "Name": existing.name, "VersionId": v.id}),
                    );
                }
            }
            return Err(AwsError::new(
                "ResourceExistsException",
                format!("The operation failed because the secret {name} already exists."),
            ));
        }
        let mut tags = Vec::new();
        if let Some(list) = body.get("Tags").and_then(Value::as_array) {
            for t in list {
                let k = t.get("Key").and_then(Value::as_str).unwrap_or_default();
                let v = t.get("Value").and_then(Value::as_str).unwrap_or_default();
                tags.push((k.to_string(), v.to_string()));
            }
        }
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let suffix: String = (0..6)
            .map(|_| ALNUM[ctx.rng.random_range(0..ALNUM.len())] as char)
            .collect();
        let arn = format!(
            "arn:{}:secretsmanager:{}:{}:secret:{name}-{suffix}",
            partition_for(ctx.region),
            ctx.region,
            ctx.account
        );
        let mut secret = Secret {
            name: name.to_string(),
            arn: arn.clone(),
            description: str_field(body, "Description")?.map(str::to_string),
            kms_key_id: str_field(body, "KmsKeyId")?.map(str::to_string),
            created: ctx.now,
            last_changed: ctx.now,
            last_accessed: None,
            deleted_date: None,
            deletion_date: None,
            rotation_enabled: None,
            rotation_lambda_arn: None,
            rotation_rules: None,
            owning_service: None,
            tags,
            versions: Vec::new(),
            last_rotated: None,
            next_rotation: None,
            rotating: None,
            rotation: RotationRule::default(),
            rotations: 0,
        };
        let mut out = json!({"ARN": arn, "Name": name});
        if let Some(value) = value {
            secret.versions.push(SecretVersion {
                id: token.clone(),
                value,
                created: ctx.now,
                last_accessed: None,
                stages: vec![AWSCURRENT.to_string()],
            });
            out["VersionId"] = json!(token);
        }
        self.secrets.insert(name.to_string(), secret);
        Ok(out)
    }

    fn put_secret_value(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let value = value_of(body)?.ok_or_else(|| {
            AwsError::invalid_parameter("You must provide either SecretString or SecretBinary.")
        })?;
        let stages = stages_of(body)?;
        let token = token_of(body, ctx)?;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        if let Some(v) = secret.version(&token) {
            // Versions are immutable: a retry with the same token is fine only if it
            // carries the same value.
            if v.value == value {
                return Ok(json!({
                    "ARN": secret.arn, "Name": secret.name,
                    "VersionId": v.id, "VersionStages": v.stages,
                }));
            }
            return Err(AwsError::new(
                "ResourceExistsException",
                "You can't modify an existing version, you can only create a new version.",
            ));
        }
        secret.versions.push(SecretVersion {
            id: token.clone(),
            value,
            created: ctx.now,
            last_accessed: None,
            stages: Vec::new(),
        });
        for label in stages.unwrap_or_else(|| vec![AWSCURRENT.to_string()]) {
            secret.move_label(&label, &token);
        }
        secret.last_changed = ctx.now;
        secret.prune(ctx.now);
        let stages = secret
            .version(&token)
            .map(|v| v.stages.clone())
            .unwrap_or_default();
        Ok(json!({
            "ARN": secret.arn, "Name": secret.name,
            "VersionId": token, "VersionStages": stages,
        }))
    }

    fn get_secret_value(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let version_id = str_field(body, "VersionId")?;
        let stage = str_field(body, "VersionStage")?;
        let now = ctx.now;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        let version =
            select_version(secret, version_id, stage).map_err(AwsError::resource_not_found)?;
        let vid = version.id.clone();
        secret.last_accessed = Some(now);
        let v = secret
            .versions
            .iter_mut()
            .find(|v| v.id == vid)
            .expect("version just selected");
        v.last_accessed = Some(now);
        let mut out = json!({
            "ARN": secret.arn, "Name": secret.name, "VersionId": v.id,
            "VersionStages": v.stages, "CreatedDate": v.created,
        });
        match &v.value {
            SecretValue::String(s) => out["SecretString"] = json!(s),
            SecretValue::Binary(_) => out["SecretBinary"] = json!(v.value.as_text()),
        }
        Ok(out)
    }

    fn describe_secret(&mut self, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        Ok(self.get(id)?.describe("VersionIdsToStages"))
    }

    fn list_secret_version_ids(&mut self, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let include_deprecated = bool_field(body, "IncludeDeprecated")?.unwrap_or(false);
        let secret = self.get(id)?;
        // Newest first, as AWS lists them.
        let versions: Vec<Value> = secret
            .versions
            .iter()
            .rev()
            .filter(|v| include_deprecated || !v.stages.is_empty())
            .map(|v| {
                let mut m = json!({"VersionId": v.id, "CreatedDate": v.created});
                if !v.stages.is_empty() {
                    m["VersionStages"] = json!(v.stages);
                }
                if let Some(a) = v.last_accessed {
                    m["LastAccessedDate"] = json!((a / 86400.0).floor() * 86400.0);
                }
                m
            })
            .collect();
        let (items, next) = page(&versions, body, 100)?;
        let mut out = json!({"Versions": items, "ARN": secret.arn, "Name": secret.name});
        if let Some(n) = next {
            out["NextToken"] = json!(n);
        }
        Ok(out)
    }

    fn update_secret_version_stage(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let label = required(body, "VersionStage")?;
        let remove_from = str_field(body, "RemoveFromVersionId")?;
        let move_to = str_field(body, "MoveToVersionId")?;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        for vid in [remove_from, move_to].into_iter().flatten() {
            if secret.version(vid).is_none() {
                return Err(AwsError::invalid_parameter(format!(
                    "The version {vid} doesn't exist in the secret."
                )));
            }
        }
        let holder = secret.version_with_stage(label).map(|v| v.id.clone());
        match move_to {
            Some(to) => {
                if let Some(h) = &holder {
                    if h != to && remove_from != Some(h.as_str()) {
                        return Err(AwsError::invalid_parameter(format!(
                            "The parameter RemoveFromVersionId doesn't match the version that currently has the staging label {label} ({h})."
                        )));
                    }
                }
                secret.move_label(label, to);
            }
            None => {
                let Some(from) = remove_from else {
                    return Err(AwsError::invalid_parameter(
                        "You must specify MoveToVersionId or RemoveFromVersionId.",
                    ));
                };
                if holder.as_deref() != Some(from) {
                    return Err(AwsError::invalid_parameter(format!(
                        "The staging label {label} is not attached to version {from}."
                    )));
                }
                if label == AWSCURRENT {
                    return Err(AwsError::invalid_parameter(
                        "You can only remove the AWSCURRENT staging label by moving it to another version.",
                    ));
                }
                for v in &mut secret.versions {
                    v.stages.retain(|s| s != label);
                }
            }
        }
        secret.last_changed = ctx.now;
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    }

    fn list_secrets(&mut self, body: &Value) -> OpResult {
        let include_deleted = bool_field(body, "IncludePlannedDeletion")?.unwrap_or(false);
        let mut filters: Vec<(String, Vec<String>)> = Vec::new();
        if let Some(list) = body.get("Filters") {
            let list = list
                .as_array()
                .ok_or_else(|| AwsError::new("SerializationException", "Filters must be a list"))?;
            for f in list {
                let key = f
                    .get("Key")
                    .and_then(Value::as_str)
                    .ok_or_else(|| AwsError::invalid_parameter("Each filter needs a Key."))?;
                if ![
                    "description",
                    "name",
                    "tag-key",
                    "tag-value",
                    "primary-region",
                    "owning-service",
                    "all",
                ]
                .contains(&key)
                {
                    return Err(AwsError::invalid_parameter(format!(
                        "Invalid filter key {key}."
                    )));
                }
                let values: Vec<String> = f
                    .get("Values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if values.len() > 10 {
                    return Err(AwsError::invalid_parameter(
                        "A filter takes at most 10 values.",
                    ));
                }
                filters.push((key.to_string(), values));
            }
        }
        let desc = str_field(body, "SortOrder")? == Some("desc");
        let mut list: Vec<&Secret> = self
            .secrets
            .values()
            .filter(|s| include_deleted || !s.is_deleted())
            .filter(|s| filters.iter().all(|(k, vs)| filter_matches(s, k, vs)))
            .collect();
        list.sort_by(|a, b| {
            a.created
                .total_cmp(&b.created)
                .then_with(|| a.name.cmp(&b.name))
        });
        if desc {
            list.reverse();
        }
        let all: Vec<Value> = list
            .iter()
            .map(|s| s.describe("SecretVersionsToStages"))
            .collect();
        let (items, next) = page(&all, body, 100)?;
        let mut out = json!({ "SecretList": items });
        if let Some(n) = next {
            out["NextToken"] = json!(n);
        }
        Ok(out)
    }

    fn delete_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let window = int_field(body, "RecoveryWindowInDays")?;
        let force = bool_field(body, "ForceDeleteWithoutRecovery")?.unwrap_or(false);
        if force && window.is_some() {
            return Err(AwsError::invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        let days = window.unwrap_or(30);
        if !(7..=30).contains(&days) {
            return Err(AwsError::invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        let now = ctx.now;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() && !force {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        let deletion = if force {
            now
        } else {
            now + days as f64 * 86400.0
        };
        let out = json!({"ARN": secret.arn, "Name": secret.name, "DeletionDate": deletion});
        if force {
            let name = secret.name.clone();
            self.secrets.remove(&name);
        } else {
            secret.deleted_date = Some(now);
            secret.deletion_date = Some(deletion);
            secret.last_changed = now;
        }
        Ok(out)
    }

    fn restore_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let secret = self.get_mut(id)?;
        secret.deleted_date = None;
        secret.deletion_date = None;
        secret.last_changed = ctx.now;
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    }

    /// Configures rotation and, unless `RotateImmediately` is `false`, starts one now. No
    /// Lambda runs: the rotation does what the four steps of a rotation function do, on the
    /// virtual clock ([`SecretsStore::next_due`], [`SecretsStore::step`]): `createSecret`
    /// puts the next value (the secret's [`RotationRule`]) as a new version labelled
    /// `AWSPENDING` now; `finishSecret` moves `AWSCURRENT` to it (`AWSPREVIOUS` follows)
    /// and sets `LastRotatedDate` [`RotationRule::seconds`] later, or when a held rotation
    /// is released. With `RotationRules` (`AutomaticallyAfterDays`, or a `rate(N hours)` /
    /// `rate(N days)` `ScheduleExpression`), the next one starts on that schedule.
    fn rotate_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let lambda = str_field(body, "RotationLambdaARN")?.map(str::to_string);
        let rules = body.get("RotationRules").filter(|v| !v.is_null()).cloned();
        let immediately = bool_field(body, "RotateImmediately")?.unwrap_or(true);
        let interval = match &rules {
            Some(r) => interval_of(r)?,
            None => None,
        };
        let token = token_of(body, ctx)?;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        if lambda.is_none() && secret.rotation_lambda_arn.is_none() {
            return Err(AwsError::invalid_request(
                "No Lambda rotation function ARN is associated with this secret.",
            ));
        }
        if immediately && secret.rotating.is_some() {
            return Err(AwsError::invalid_request(
                "A previous rotation isn't complete. That rotation will be reattempted.",
            ));
        }
        if lambda.is_some() {
            secret.rotation_lambda_arn = lambda;
        }
        if rules.is_some() {
            secret.rotation_rules = rules;
        }
        secret.rotation_enabled = Some(true);
        secret.last_changed = ctx.now;
        let interval = interval.or_else(|| {
            secret
                .rotation_rules
                .as_ref()
                .and_then(|r| interval_of(r).ok().flatten())
        });
        secret.next_rotation = interval.map(|i| secret.last_rotated.unwrap_or(ctx.now) + i);
        let mut out = json!({"ARN": secret.arn, "Name": secret.name});
        if immediately {
            let version = start_rotation(secret, ctx, Some(token));
            out["VersionId"] = json!(version);
        }
        Ok(out)
    }

    fn cancel_rotate_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        secret.rotation_enabled = Some(false);
        secret.next_rotation = None;
        // A rotation under way stops where it is: its version keeps AWSPENDING (AWS warns
        // that cancelling mid-way can leave the labels so).
        secret.rotating = None;
        secret.last_changed = ctx.now;
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    }

    /// Adds or replaces tags. Moves `LastChangedDate`: AWS documents it as "modified in any
    /// way", and a tool that proves from it must treat a tag edit as a change it cannot
    /// explain (the conservative reading; unconfirmed on AWS).
    fn tag_resource(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let list = body
            .get("Tags")
            .and_then(Value::as_array)
            .ok_or_else(|| AwsError::invalid_parameter("You must provide Tags."))?;
        let mut given = Vec::new();
        for t in list {
            let k = t
                .get("Key")
                .and_then(Value::as_str)
                .ok_or_else(|| AwsError::invalid_parameter("Each tag needs a Key."))?;
            let v = t.get("Value").and_then(Value::as_str).unwrap_or_default();
            given.push((k.to_string(), v.to_string()));
        }
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        for (k, v) in given {
            match secret.tags.iter_mut().find(|(x, _)| *x == k) {
                Some(t) => t.1 = v,
                None => secret.tags.push((k, v)),
            }
        }
        secret.last_changed = ctx.now;
        Ok(json!({}))
    }

    /// Removes tags by key; moves `LastChangedDate` as [`Self::tag_resource`] does.
    fn untag_resource(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "SecretId")?;
        let keys: Vec<String> = body
            .get("TagKeys")
            .and_then(Value::as_array)
            .ok_or_else(|| AwsError::invalid_parameter("You must provide TagKeys."))?
            .iter()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        secret.tags.retain(|(k, _)| !keys.contains(k));
        secret.last_changed = ctx.now;
        Ok(json!({}))
    }

    /// Changes the description or KMS key; with a value, writes a new version as
    /// `PutSecretValue` does. Moves `LastChangedDate` either way.
    fn update_secret(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        if value_of(body)?.is_some() {
            return self.put_secret_value(ctx, body);
        }
        let id = required(body, "SecretId")?;
        let description = str_field(body, "Description")?.map(str::to_string);
        let kms = str_field(body, "KmsKeyId")?.map(str::to_string);
        let secret = self.get_mut(id)?;
        if secret.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        if description.is_some() {
            secret.description = description;
        }
        if kms.is_some() {
            secret.kms_key_id = kms;
        }
        secret.last_changed = ctx.now;
        Ok(json!({"ARN": secret.arn, "Name": secret.name}))
    }

    /// State as JSON, without values: every secret with its versions' ids, labels and
    /// creation dates.
    pub fn snapshot(&self) -> Value {
        Value::Array(
            self.secrets
                .values()
                .map(|s| {
                    json!({
                        "name": s.name,
                        "arn": s.arn,
                        "created": s.created,
                        "last_changed": s.last_changed,
                        "deleted_date": s.deleted_date,
                        "deletion_date": s.deletion_date,
                        "rotation_enabled": s.rotation_enabled,
                        "last_rotated": s.last_rotated,
                        "next_rotation": s.next_rotation,
                        "rotations": s.rotations,
                        "rotating": s.rotating.as_ref().map(|r| json!({
                            "version_id": r.version_id,
                            "finish_at": r.finish_at,
                            "held": s.rotation.held,
                        })),
                        "owning_service": s.owning_service,
                        "versions": s.versions.iter().map(|v| json!({
                            "id": v.id,
                            "stages": v.stages,
                            "created": v.created,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

/// The rotation interval in seconds from `RotationRules`: `AutomaticallyAfterDays`, or a
/// `rate(N hours)` / `rate(N days)` `ScheduleExpression` (cron is not simulated).
fn interval_of(rules: &Value) -> Result<Option<f64>, AwsError> {
    if let Some(expr) = rules.get("ScheduleExpression").and_then(Value::as_str) {
        let inner = expr
            .trim()
            .strip_prefix("rate(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| {
                AwsError::invalid_parameter(format!(
                    "ScheduleExpression {expr}: the sandbox simulates rate(N hours) and rate(N days) only"
                ))
            })?;
        let (n, unit) = inner.trim().split_once(' ').unwrap_or((inner, ""));
        let n: f64 = n.parse().ok().filter(|n: &f64| *n >= 1.0).ok_or_else(|| {
            AwsError::invalid_parameter(format!("ScheduleExpression {expr}: bad rate"))
        })?;
        let unit = match unit.trim() {
            "hour" | "hours" => 3600.0,
            "day" | "days" => 86400.0,
            _ => {
                return Err(AwsError::invalid_parameter(format!(
                    "ScheduleExpression {expr}: the rate unit must be hours or days"
                )))
            }
        };
        return Ok(Some(n * unit));
    }
    match rules.get("AutomaticallyAfterDays") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_i64() {
            Some(d) if (1..=1000).contains(&d) => Ok(Some(d as f64 * 86400.0)),
            _ => Err(AwsError::invalid_parameter(
                "AutomaticallyAfterDays must be between 1 and 1000.",
            )),
        },
    }
}

/// `createSecret`: the next value as a new version labelled `AWSPENDING`, now. Returns its
/// id (`token`, or one from the seeded source).
fn start_rotation(secret: &mut Secret, ctx: &mut Ctx<'_>, token: Option<String>) -> String {
    let n = secret.rotations + 1;
    let value = match &secret.rotation.value {
        Some(template) => template.replace("{n}", &n.to_string()),
        None => {
            const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            (0..32)
                .map(|_| ALNUM[ctx.rng.random_range(0..ALNUM.len())] as char)
                .collect()
        }
    };
    let id = token.unwrap_or_else(|| uuid_from(ctx));
    secret.versions.push(SecretVersion {
        id: id.clone(),
        value: SecretValue::String(value),
        created: ctx.now,
        last_accessed: None,
        stages: Vec::new(),
    });
    secret.move_label(AWSPENDING, &id);
    secret.last_changed = ctx.now;
    secret.rotating = Some(Rotating {
        version_id: id.clone(),
        finish_at: ctx.now + secret.rotation.seconds,
    });
    secret.prune(ctx.now);
    id
}

/// `finishSecret`: `AWSCURRENT` moves to the rotation's version (`AWSPREVIOUS` follows),
/// `AWSPENDING` comes off it, `LastRotatedDate` is set, and the next scheduled rotation
/// is counted from now.
fn finish_rotation(secret: &mut Secret, now: f64) {
    let Some(r) = secret.rotating.take() else {
        return;
    };
    if secret.version(&r.version_id).is_none() {
        return;
    }
    secret.move_label(AWSCURRENT, &r.version_id);
    for v in &mut secret.versions {
        v.stages.retain(|s| s != AWSPENDING);
    }
    secret.rotations += 1;
    secret.last_rotated = Some(now);
    secret.last_changed = now;
    let interval = secret
        .rotation_rules
        .as_ref()
        .and_then(|r| interval_of(r).ok().flatten());
    secret.next_rotation = interval.map(|i| now + i);
}

/// ListSecrets filter semantics (API reference, `Filter`): values are prefixes, a leading
/// `!` negates; a secret passes a filter when any of its values matches.
fn filter_matches(s: &Secret, key: &str, values: &[String]) -> bool {
    if values.is_empty() {
        return true;
    }
    let fields: Vec<&str> = match key {
        "name" => vec![&s.name],
        "description" => s.description.iter().map(String::as_str).collect(),
        "tag-key" => s.tags.iter().map(|(k, _)| k.as_str()).collect(),
        "tag-value" => s.tags.iter().map(|(_, v)| v.as_str()).collect(),
        "owning-service" => s.owning_service.iter().map(String::as_str).collect(),
        "primary-region" => vec![],
        _ => {
            let mut all: Vec<&str> = vec![&s.name];
            all.extend(s.description.iter().map(String::as_str));
            all.extend(s.tags.iter().flat_map(|(k, v)| [k.as_str(), v.as_str()]));
            all
        }
    };
    // `description` and `all` are not case-sensitive; `all` matches words anywhere.
    let fold = matches!(key, "description" | "all");
    let hit = |pattern: &str| {
        fields.iter().any(|f| {
            if key == "all" {
                let (f, p) = (f.to_lowercase(), pattern.to_lowercase());
                p.split_whitespace().all(|w| f.contains(w))
            } else if fold {
                f.to_lowercase().starts_with(&pattern.to_lowercase())
            } else {
                f.starts_with(pattern)
            }
        })
    };
    values.iter().any(|v| match v.strip_prefix('!') {
        Some(neg) => !hit(neg),
        None => hit(v),
    })
}

/// Picks a version by id and/or stage (default `AWSCURRENT`). `Err` is AWS's message.
fn select_version<'a>(
    secret: &'a Secret,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<&'a SecretVersion, String> {
    match (version_id, stage) {
        (Some(id), stage) => {
            let v = secret.version(id).ok_or_else(|| {
                format!("Secrets Manager can't find the specified secret value for VersionId: {id}")
            })?;
            if let Some(st) = stage {
                if !v.stages.iter().any(|s| s == st) {
                    return Err(format!(
                        "Secrets Manager can't find the specified secret value for VersionId: {id} and staging label: {st}"
                    ));
                }
            }
            Ok(v)
        }
        (None, stage) => {
            let st = stage.unwrap_or(AWSCURRENT);
            secret.version_with_stage(st).ok_or_else(|| {
                format!(
                    "Secrets Manager can't find the specified secret value for staging label: {st}"
                )
            })
        }
    }
}

/// How the ECS agent words a Secrets Manager error it gave up on.
fn asm_error(code: &str, message: &str) -> String {
    format!("service call has been retried 5 time(s): {code}: {message}")
}

impl SecretsStore {
    fn resolve_parts(
        &self,
        secret_id: &str,
        json_key: Option<&str>,
        stage: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<Resolved, String> {
        let secret = self
            .find(secret_id)
            .ok_or_else(|| asm_error("ResourceNotFoundException", NOT_FOUND))?;
        if secret.is_deleted() {
            return Err(asm_error("InvalidRequestException", MARKED_FOR_DELETION));
        }
        if stage.is_some() && version_id.is_some() {
            return Err(asm_error(
                "InvalidParameterException",
                "You can't specify both a version stage and a version id.",
            ));
        }
        let version = select_version(secret, version_id, stage)
            .map_err(|m| asm_error("ResourceNotFoundException", &m))?;
        let text = version.value.as_text();
        let value = match json_key {
            None => text,
            Some(key) => {
                let missing = || {
                    format!("retrieved secret from Secrets Manager did not contain json key {key}")
                };
                let parsed: Value = serde_json::from_str(&text).map_err(|_| missing())?;
                match parsed.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => return Err(missing()),
                }
            }
        };
        Ok(Resolved {
            secret_arn: secret.arn.clone(),
            name: secret.name.clone(),
            version_id: version.id.clone(),
            json_key: json_key.map(str::to_string),
            value,
        })
    }
}

/// Parameter Store's path that reads a Secrets Manager secret.
const REFERENCE_PATH: &str = "/aws/reference/secretsmanager/";

impl SecretSource for SecretsStore {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String> {
        let not_found = || asm_error("ResourceNotFoundException", NOT_FOUND);
        if let Some(name) = value_from.strip_prefix(REFERENCE_PATH) {
            return self.resolve_parts(name, None, None, None);
        }
        if !value_from.starts_with("arn:") {
            // A bare name is a Parameter Store parameter; the sandbox has none.
            return Err(not_found());
        }
        let parts: Vec<&str> = value_from.split(':').collect();
        if parts.len() < 6 {
            return Err(not_found());
        }
        let (service, arn_region, arn_account) = (parts[2], parts[3], parts[4]);
        if arn_region != region || arn_account != account {
            return Err(not_found());
        }
        match service {
            "ssm" => {
                let resource = parts[5..].join(":");
                match resource.strip_prefix(&format!("parameter{REFERENCE_PATH}")) {
                    Some(name) => self.resolve_parts(name, None, None, None),
                    None => Err(not_found()),
                }
            }
            "secretsmanager" if parts.len() >= 7 && parts[5] == "secret" => {
                if parts.len() > 10 {
                    return Err(not_found());
                }
                let arn = parts[..7].join(":");
                let field = |i: usize| parts.get(i).copied().filter(|s| !s.is_empty());
                self.resolve_parts(&arn, field(7), field(8), field(9))
            }
            _ => Err(not_found()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";

    fn call(store: &mut SecretsStore, rng: &mut ChaCha8Rng, op: &str, body: Value) -> OpResult {
        let mut ctx = Ctx {
            now: 1_700_000_000.0,
            region: REGION,
            account: ACCOUNT,
            rng,
        };
        store.handle(&mut ctx, op, &body)
    }

    /// A store with `production/db` = {"username":"u","password":"p1"} then a second
    /// version `{"username":"u","password":"p2"}`; returns (store, arn, v1, v2).
    fn fixture() -> (SecretsStore, String, String, String) {
        let mut store = SecretsStore::default();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let v1 = "11111111-1111-4111-8111-111111111111".to_string();
        let v2 = "22222222-2222-4222-8222-222222222222".to_string();
        let out = call(
            &mut store,
            &mut rng,
            "CreateSecret",
            json!({"Name": "production/db", "SecretString": r#"{"username":"u","password":"p1"}"#, "ClientRequestToken": v1}),
        )
        .unwrap();
        call(
            &mut store,
            &mut rng,
            "PutSecretValue",
            json!({"SecretId": "production/db", "SecretString": r#"{"username":"u","password":"p2","port":5432}"#, "ClientRequestToken": v2}),
        )
        .unwrap();
        (store, out["ARN"].as_str().unwrap().to_string(), v1, v2)
    }

    fn resolve(store: &SecretsStore, value_from: &str) -> Result<Resolved, String> {
        store.resolve_for_ecs(value_from, REGION, ACCOUNT)
    }

    #[test]
    fn arn_has_six_character_suffix() {
        let (_, arn, _, _) = fixture();
        let prefix = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:production/db-";
        assert!(arn.starts_with(prefix), "{arn}");
        let suffix = &arn[prefix.len()..];
        assert_eq!(suffix.len(), 6);
        assert!(suffix.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn full_arn_resolves_current() {
        let (store, arn, _, v2) = fixture();
        let r = resolve(&store, &arn).unwrap();
        assert_eq!(r.version_id, v2);
        assert_eq!(r.name, "production/db");
        assert_eq!(r.secret_arn, arn);
        assert!(r.value.contains("p2"));
        assert_eq!(r.json_key, None);
    }

    #[test]
    fn json_key_selector() {
        let (store, arn, _, v2) = fixture();
        let r = resolve(&store, &format!("{arn}:password::")).unwrap();
        assert_eq!(
            (r.value.as_str(), r.version_id.as_str()),
            ("p2", v2.as_str())
        );
        assert_eq!(r.json_key.as_deref(), Some("password"));
        // Non-string JSON values are handed over as JSON text.
        let r = resolve(&store, &format!("{arn}:port::")).unwrap();
        assert_eq!(r.value, "5432");
    }

    #[test]
    fn stage_selector_reads_previous() {
        let (store, arn, v1, _) = fixture();
        let r = resolve(&store, &format!("{arn}::AWSPREVIOUS:")).unwrap();
        assert_eq!(r.version_id, v1);
        let r = resolve(&store, &format!("{arn}:password:AWSPREVIOUS:")).unwrap();
        assert_eq!(r.value, "p1");
    }

    #[test]
    fn version_id_selector_pins_version() {
        let (store, arn, v1, _) = fixture();
        let r = resolve(&store, &format!("{arn}:::{v1}")).unwrap();
        assert_eq!(r.version_id, v1);
        let e = resolve(
            &store,
            &format!("{arn}:::33333333-3333-4333-8333-333333333333"),
        )
        .unwrap_err();
        assert!(e.contains("ResourceNotFoundException"), "{e}");
    }

    #[test]
    fn stage_and_version_id_are_exclusive() {
        let (store, arn, v1, _) = fixture();
        assert!(resolve(&store, &format!("{arn}::AWSCURRENT:{v1}")).is_err());
    }

    #[test]
    fn partial_arn_resolves() {
        let (store, arn, _, v2) = fixture();
        let partial = &arn[..arn.len() - 7];
        assert_eq!(resolve(&store, partial).unwrap().version_id, v2);
        assert_eq!(
            resolve(&store, &format!("{partial}:username::"))
                .unwrap()
                .value,
            "u"
        );
    }

    #[test]
    fn reference_path_and_ssm_arn_resolve() {
        let (store, _, _, v2) = fixture();
        let r = resolve(&store, "/aws/reference/secretsmanager/production/db").unwrap();
        assert_eq!(r.version_id, v2);
        let r = resolve(
            &store,
            "arn:aws:ssm:eu-west-1:123456789012:parameter/aws/reference/secretsmanager/production/db",
        )
        .unwrap();
        assert_eq!(r.version_id, v2);
        // Another account's parameter is not ours.
        assert!(resolve(
            &store,
            "arn:aws:ssm:eu-west-1:999999999999:parameter/aws/reference/secretsmanager/production/db",
        )
        .is_err());
    }

    #[test]
    fn other_partitions() {
        let mut store = SecretsStore::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let mut ctx = Ctx {
            now: 1.0,
            region: "cn-north-1",
            account: ACCOUNT,
            rng: &mut rng,
        };
        let out = store
            .handle(
                &mut ctx,
                "CreateSecret",
                &json!({"Name": "x", "SecretString": "v"}),
            )
            .unwrap();
        let arn = out["ARN"].as_str().unwrap();
        assert!(
            arn.starts_with("arn:aws-cn:secretsmanager:cn-north-1:"),
            "{arn}"
        );
        assert_eq!(
            store
                .resolve_for_ecs(arn, "cn-north-1", ACCOUNT)
                .unwrap()
                .value,
            "v"
        );
        let gov = "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:x-AbCdEf";
        assert!(store
            .resolve_for_ecs(gov, "us-gov-west-1", ACCOUNT)
            .is_err());
    }

    #[test]
    fn errors_are_worded_as_ecs_words_them() {
        let (mut store, arn, _, _) = fixture();
        let e = resolve(&store, "/aws/reference/secretsmanager/production/nope").unwrap_err();
        assert_eq!(e, "service call has been retried 5 time(s): ResourceNotFoundException: Secrets Manager can't find the specified secret.");
        let e = resolve(&store, &format!("{arn}:nokey::")).unwrap_err();
        assert_eq!(
            e,
            "retrieved secret from Secrets Manager did not contain json key nokey"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        call(
            &mut store,
            &mut rng,
            "DeleteSecret",
            json!({"SecretId": "production/db"}),
        )
        .unwrap();
        let e = resolve(&store, &arn).unwrap_err();
        assert!(e.contains("InvalidRequestException"), "{e}");
        assert!(e.contains("marked for deletion"), "{e}");
    }

    #[test]
    fn debug_never_shows_values() {
        let (store, arn, _, _) = fixture();
        let dbg = format!("{store:?}");
        assert!(!dbg.contains("p1") && !dbg.contains("p2"), "{dbg}");
        let r = resolve(&store, &arn).unwrap();
        assert!(!format!("{r:?}").contains("p2"));
        assert!(!store.snapshot().to_string().contains("p2"));
    }

    #[test]
    fn deprecated_versions_are_pruned_only_past_100_and_a_day() {
        let (mut store, _, v1, _) = fixture();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for i in 0..120 {
            call(
                &mut store,
                &mut rng,
                "PutSecretValue",
                json!({"SecretId": "production/db", "SecretString": format!("v{i}")}),
            )
            .unwrap();
        }
        // All created "now": none older than a day, so none pruned.
        assert_eq!(store.find("production/db").unwrap().versions.len(), 122);
        let mut ctx = Ctx {
            now: 1_700_000_000.0 + 2.0 * 86400.0,
            region: REGION,
            account: ACCOUNT,
            rng: &mut rng,
        };
        store
            .handle(
                &mut ctx,
                "PutSecretValue",
                &json!({"SecretId": "production/db", "SecretString": "late"}),
            )
            .unwrap();
        let s = store.find("production/db").unwrap();
        assert_eq!(s.versions.len(), 100);
        assert!(s.version(&v1).is_none(), "oldest deprecated version pruned");
        assert!(s.current().is_some() && s.version_with_stage(AWSPREVIOUS).is_some());
    }
}
