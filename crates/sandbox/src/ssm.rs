//! SSM Parameter Store: parameters, their numbered versions and labels, and what ECS reads
//! at task launch.
//!
//! AWS JSON 1.1, target prefix `AmazonSSM.`. What matters for a rotation, per
//! `shared/reference/ecs-strategies.md`: `PutParameter` has no request token (every accepted
//! write is a new version), 100 versions are kept and a label on the oldest one makes the
//! next write fail (`ParameterMaxVersionLimitExceeded`), bad labels come back in
//! `InvalidLabels`, an overwrite without `KeyId` falls back to the account's default key,
//! and ECS always reads the latest version. Values live only in [`ParamValue`], whose `Debug`
//! is redacted, and never reach [`ParameterStore::snapshot`].

use std::collections::BTreeMap;

use base64::Engine as _;
use rand::Rng;
use serde_json::{json, Map, Value};

use crate::secrets::{
    bool_field, int_field, page, partition_for, required, str_field, Resolved, SecretSource,
    SecretsStore,
};
use crate::{AwsError, Ctx, OpResult};

/// The AWS managed key an overwrite without `KeyId` falls back to.
pub const DEFAULT_KEY: &str = "alias/aws/ssm";
/// Versions kept per parameter.
pub const MAX_VERSIONS: usize = 100;
/// Labels per version.
const MAX_LABELS: usize = 10;
/// Largest value of a standard-tier parameter, in bytes.
pub const STANDARD_MAX: usize = 4096;
/// Largest value of an advanced-tier parameter, in bytes.
pub const ADVANCED_MAX: usize = 8192;

const NAME_RULE: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// A parameter version's value. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ParamValue(pub String);

impl std::fmt::Debug for ParamValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ParamValue(<redacted>)")
    }
}

/// One version of a parameter.
#[derive(Debug, Clone)]
pub struct ParamVersion {
    /// 1, 2, ... (restarts at 1 after a delete).
    pub version: u64,
    /// The value.
    pub value: ParamValue,
    /// What `GetParameter` without decryption shows for a `SecureString` (opaque).
    pub ciphertext: String,
    /// `String`, `StringList` or `SecureString`.
    pub kind: String,
    /// KMS key of a `SecureString`.
    pub key_id: Option<String>,
    /// `Standard` or `Advanced`.
    pub tier: String,
    /// `text`, `aws:ec2:image`, `aws:ssm:integration`.
    pub data_type: String,
    /// `Description`.
    pub description: Option<String>,
    /// When it was written, epoch seconds.
    pub modified: f64,
    /// Who wrote it (the caller's ARN).
    pub modified_user: String,
    /// Labels, in the order attached.
    pub labels: Vec<String>,
}

/// One parameter: its versions, oldest first.
#[derive(Debug, Clone)]
pub struct Parameter {
    /// Name as created (`/production/api/db_password` or `plain_name`).
    pub name: String,
    /// Kept versions, oldest first.
    pub versions: Vec<ParamVersion>,
    /// Tags given at creation.
    pub tags: Vec<(String, String)>,
}

impl Parameter {
    /// The latest version (what ECS reads).
    pub fn latest(&self) -> &ParamVersion {
        self.versions.last().expect("a parameter has a version")
    }

    fn version(&self, v: u64) -> Option<&ParamVersion> {
        self.versions.iter().find(|x| x.version == v)
    }
}

/// Every parameter of the account, by name.
#[derive(Debug, Default)]
pub struct ParameterStore {
    params: BTreeMap<String, Parameter>,
}

/// A parameter's ARN: `arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME` (a name that does
/// not start with `/` gets one).
pub fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    let sep = if name.starts_with('/') { "" } else { "/" };
    format!(
        "arn:{}:ssm:{region}:{account}:parameter{sep}{name}",
        partition_for(region)
    )
}

/// Whether AWS accepts `name` as a parameter name.
fn valid_name(name: &str) -> bool {
    let lower = name.trim_start_matches('/').to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 2048
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && !name.ends_with('/')
        && !name.contains("//")
        && name.split('/').count() <= 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
}

/// Whether AWS accepts `label` (a bad one is returned in `InvalidLabels`).
fn valid_label(label: &str) -> bool {
    let lower = label.to_ascii_lowercase();
    (1..=100).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_alphabetic())
        && !lower.starts_with("aws")
        && !lower.starts_with("ssm")
        && label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// A selector after the name: `:3` (a version) or `:label`.
#[derive(Debug, Clone, PartialEq)]
enum Selector {
    Latest,
    Version(u64),
    Label(String),
}

fn strings(body: &Value, key: &str) -> Result<Option<Vec<String>>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    AwsError::new("SerializationException", format!("{key} must be strings"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(AwsError::new(
            "SerializationException",
            format!("{key} must be a list"),
        )),
    }
}

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::new("ValidationException", message)
}

fn not_found() -> AwsError {
    // AWS answers this one with an empty message.
    AwsError::new("ParameterNotFound", "")
}

fn version_not_found(name: &str, what: &str) -> AwsError {
    AwsError::new(
        "ParameterVersionNotFound",
        format!("Systems Manager could not find version {what} of {name}. Verify the version and try again."),
    )
}

impl ParameterStore {
    /// The parameter a name or ARN (without selector) names.
    pub fn find(&self, id: &str) -> Option<&Parameter> {
        self.key_of(id).and_then(|k| self.params.get(&k))
    }

    /// Every parameter, by name.
    pub fn parameters(&self) -> impl Iterator<Item = &Parameter> {
        self.params.values()
    }

    /// The stored name `id` (a name or an ARN) refers to.
    fn key_of(&self, id: &str) -> Option<String> {
        if self.params.contains_key(id) {
            return Some(id.to_string());
        }
        let resource = id.strip_prefix("arn:")?.splitn(5, ':').nth(4)?;
        let path = resource.strip_prefix("parameter")?;
        // `parameter/a/b` names `/a/b`; `parameter/plain` names `plain`.
        [path, path.trim_start_matches('/')]
            .into_iter()
            .find(|k| self.params.contains_key(*k))
            .map(str::to_string)
    }

    /// Splits `name:selector` (or `ARN:selector`) into the id and its selector.
    fn split_selector(id: &str) -> (&str, Selector) {
        let base_colons = if id.starts_with("arn:") { 5 } else { 0 };
        let colons = id.matches(':').count();
        if colons <= base_colons {
            return (id, Selector::Latest);
        }
        let (name, sel) = id.rsplit_once(':').expect("a colon was counted");
        let selector = match sel.parse::<u64>() {
            Ok(n) => Selector::Version(n),
            Err(_) => Selector::Label(sel.to_string()),
        };
        (name, selector)
    }

    /// The version a `name[:selector]` reads. `Err` is AWS's error.
    fn select(&self, id: &str) -> Result<(&Parameter, &ParamVersion, Option<String>), AwsError> {
        let (name, selector) = Self::split_selector(id);
        let p = self.find(name).ok_or_else(not_found)?;
        let v = match &selector {
            Selector::Latest => p.latest(),
            Selector::Version(n) => p
                .version(*n)
                .ok_or_else(|| version_not_found(&p.name, &n.to_string()))?,
            Selector::Label(l) => p
                .versions
                .iter()
                .find(|v| v.labels.iter().any(|x| x == l))
                .ok_or_else(|| version_not_found(&p.name, l))?,
        };
        let sel = match selector {
            Selector::Latest => None,
            Selector::Version(n) => Some(format!(":{n}")),
            Selector::Label(l) => Some(format!(":{l}")),
        };
        Ok((p, v, sel))
    }

    /// Runs one `AmazonSSM.*` operation. `caller` is the ARN written as `LastModifiedUser`.
    pub fn handle(
        &mut self,
        ctx: &mut Ctx<'_>,
        caller: &str,
        operation: &str,
        body: &Value,
    ) -> OpResult {
        match operation {
            "PutParameter" => self.put_parameter(ctx, caller, body),
            "GetParameter" => self.get_parameter(ctx, body),
            "GetParameters" => self.get_parameters(ctx, body),
            "GetParameterHistory" => self.get_parameter_history(ctx, body),
            "LabelParameterVersion" => self.label_parameter_version(body),
            "UnlabelParameterVersion" => self.unlabel_parameter_version(body),
            "DescribeParameters" => self.describe_parameters(ctx, body),
            "DeleteParameter" => self.delete_parameter(body),
            "DeleteParameters" => self.delete_parameters(body),
            other => Err(AwsError::new(
                "UnknownOperationException",
                format!("Unknown operation AmazonSSM.{other}"),
            )),
        }
    }

    fn put_parameter(&mut self, ctx: &mut Ctx<'_>, caller: &str, body: &Value) -> OpResult {
        let name = required(body, "Name")?;
        let value = required(body, "Value")?;
        let overwrite = bool_field(body, "Overwrite")?.unwrap_or(false);
        let kind = str_field(body, "Type")?;
        let key_id = str_field(body, "KeyId")?;
        let tier = str_field(body, "Tier")?;
        let data_type = str_field(body, "DataType")?.unwrap_or("text");
        let description = str_field(body, "Description")?;
        let tags = match body.get("Tags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| {
                    let k = t.get("Key").and_then(Value::as_str);
                    let v = t.get("Value").and_then(Value::as_str);
                    match (k, v) {
                        (Some(k), Some(v)) => Ok((k.to_string(), v.to_string())),
                        _ => Err(validation("A tag needs a Key and a Value.")),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(AwsError::new(
                    "SerializationException",
                    "Tags must be a list",
                ))
            }
        };
        if !valid_name(name) {
            return Err(validation(NAME_RULE));
        }
        if let Some(k) = kind {
            if !["String", "StringList", "SecureString"].contains(&k) {
                return Err(validation(format!(
                    "1 validation error detected: Value '{k}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]"
                )));
            }
        }
        if let Some(t) = tier {
            if !["Standard", "Advanced", "Intelligent-Tiering"].contains(&t) {
                return Err(validation(format!(
                    "1 validation error detected: Value '{t}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Advanced, Intelligent-Tiering, Standard]"
                )));
            }
        }
        if !["text", "aws:ec2:image", "aws:ssm:integration"].contains(&data_type) {
            return Err(validation(format!(
                "The following data type is not supported: {data_type} (Data type names are all lowercase.)"
            )));
        }
        if value.is_empty() || value.len() > ADVANCED_MAX {
            return Err(validation(format!(
                "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to {ADVANCED_MAX}"
            )));
        }
        let existing = self.params.get(name);
        if existing.is_some() && !overwrite {
            return Err(AwsError::new(
                "ParameterAlreadyExists",
                "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.",
            ));
        }
        if existing.is_some() && !tags.is_empty() {
            return Err(validation(
                "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
            ));
        }
        let kind = match (kind, existing) {
            (Some(k), _) => k.to_string(),
            (None, Some(p)) => p.latest().kind.clone(),
            (None, None) => {
                return Err(validation(
                    "A parameter type is required when you create a parameter.",
                ))
            }
        };
        if kind != "SecureString" && key_id.is_some() {
            return Err(validation(
                "KeyId is required for SecureString type parameter only.",
            ));
        }
        let was_advanced = existing.is_some_and(|p| p.latest().tier == "Advanced");
        let tier = match tier {
            Some("Standard") if was_advanced => {
                return Err(validation(
                    "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter.",
                ))
            }
            Some("Intelligent-Tiering") if was_advanced || value.len() > STANDARD_MAX => {
                "Advanced"
            }
            Some("Intelligent-Tiering") => "Standard",
            Some(t) => t,
            None if was_advanced => "Advanced",
            None => "Standard",
        };
        if tier == "Standard" && value.len() > STANDARD_MAX {
            return Err(validation(
                "Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html",
            ));
        }
        if let Some(p) = existing {
            let oldest = &p.versions[0];
            if p.versions.len() >= MAX_VERSIONS && !oldest.labels.is_empty() {
                return Err(AwsError::new(
                    "ParameterMaxVersionLimitExceeded",
                    format!(
                        "You attempted to create a new version of {name} by calling the PutParameter API with the overwrite flag. Version {}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.",
                        oldest.version
                    ),
                ));
            }
        }
        let key_id = (kind == "SecureString").then(|| key_id.unwrap_or(DEFAULT_KEY).to_string());
        let cipher: [u8; 48] = ctx.rng.random();
        let version = existing.map_or(1, |p| p.latest().version + 1);
        let v = ParamVersion {
            version,
            value: ParamValue(value.to_string()),
            ciphertext: base64::engine::general_purpose::STANDARD.encode(cipher),
            kind,
            key_id,
            tier: tier.to_string(),
            data_type: data_type.to_string(),
            description: description
                .map(str::to_string)
                .or_else(|| existing.and_then(|p| p.latest().description.clone())),
            modified: ctx.now,
            modified_user: caller.to_string(),
            labels: Vec::new(),
        };
        let p = self
            .params
            .entry(name.to_string())
            .or_insert_with(|| Parameter {
                name: name.to_string(),
                versions: Vec::new(),
                tags,
            });
        p.versions.push(v);
        if p.versions.len() > MAX_VERSIONS {
            p.versions.remove(0);
        }
        Ok(json!({"Version": version, "Tier": tier}))
    }

    fn parameter_json(
        ctx: &Ctx<'_>,
        p: &Parameter,
        v: &ParamVersion,
        selector: Option<String>,
        decrypt: bool,
    ) -> Value {
        let value = if v.kind == "SecureString" && !decrypt {
            v.ciphertext.clone()
        } else {
            v.value.0.clone()
        };
        let mut m = Map::new();
        m.insert("Name".into(), json!(p.name));
        m.insert("Type".into(), json!(v.kind));
        m.insert("Value".into(), json!(value));
        m.insert("Version".into(), json!(v.version));
        if let Some(s) = selector {
            m.insert("Selector".into(), json!(s));
        }
        m.insert("LastModifiedDate".into(), json!(v.modified));
        m.insert(
            "ARN".into(),
            json!(parameter_arn(ctx.region, ctx.account, &p.name)),
        );
        m.insert("DataType".into(), json!(v.data_type));
        Value::Object(m)
    }

    fn get_parameter(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "Name")?;
        let decrypt = bool_field(body, "WithDecryption")?.unwrap_or(false);
        let (p, v, sel) = self.select(id)?;
        Ok(json!({"Parameter": Self::parameter_json(ctx, p, v, sel, decrypt)}))
    }

    fn get_parameters(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let names = strings(body, "Names")?.ok_or_else(|| AwsError::missing_field("Names"))?;
        if names.is_empty() || names.len() > 10 {
            return Err(validation(format!(
                "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1 (got {})",
                names.len()
            )));
        }
        let decrypt = bool_field(body, "WithDecryption")?.unwrap_or(false);
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        for n in &names {
            match self.select(n) {
                Ok((p, v, sel)) => found.push(Self::parameter_json(ctx, p, v, sel, decrypt)),
                Err(_) => invalid.push(n.clone()),
            }
        }
        Ok(json!({"Parameters": found, "InvalidParameters": invalid}))
    }

    fn get_parameter_history(&mut self, _ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let id = required(body, "Name")?;
        let decrypt = bool_field(body, "WithDecryption")?.unwrap_or(false);
        let p = self.find(id).ok_or_else(not_found)?;
        let all: Vec<Value> = p
            .versions
            .iter()
            .map(|v| {
                let value = if v.kind == "SecureString" && !decrypt {
                    &v.ciphertext
                } else {
                    &v.value.0
                };
                let mut m = Map::new();
                m.insert("Name".into(), json!(p.name));
                m.insert("Type".into(), json!(v.kind));
                if let Some(k) = &v.key_id {
                    m.insert("KeyId".into(), json!(k));
                }
                m.insert("LastModifiedDate".into(), json!(v.modified));
                m.insert("LastModifiedUser".into(), json!(v.modified_user));
                if let Some(d) = &v.description {
                    m.insert("Description".into(), json!(d));
                }
                m.insert("Value".into(), json!(value));
                m.insert("Version".into(), json!(v.version));
                m.insert("Labels".into(), json!(v.labels));
                m.insert("Tier".into(), json!(v.tier));
                m.insert("Policies".into(), json!([]));
                m.insert("DataType".into(), json!(v.data_type));
                Value::Object(m)
            })
            .collect();
        let (items, next) = page(&all, body, 50)?;
        let mut out = json!({"Parameters": items});
        if let Some(n) = next {
            out["NextToken"] = json!(n);
        }
        Ok(out)
    }

    fn labels_of(body: &Value) -> Result<Vec<String>, AwsError> {
        let labels = strings(body, "Labels")?.ok_or_else(|| AwsError::missing_field("Labels"))?;
        if labels.is_empty() || labels.len() > MAX_LABELS {
            return Err(validation(
                "1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1",
            ));
        }
        Ok(labels)
    }

    fn target_version(p: &Parameter, body: &Value) -> Result<u64, AwsError> {
        match int_field(body, "ParameterVersion")? {
            None => Ok(p.latest().version),
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| p.version(*n).is_some())
                .ok_or_else(|| version_not_found(&p.name, &n.to_string())),
        }
    }

    fn label_parameter_version(&mut self, body: &Value) -> OpResult {
        let id = required(body, "Name")?;
        let labels = Self::labels_of(body)?;
        let key = self.key_of(id).ok_or_else(not_found)?;
        let p = self.params.get_mut(&key).expect("found by key_of");
        let target = Self::target_version(p, body)?;
        let (good, bad): (Vec<String>, Vec<String>) =
            labels.into_iter().partition(|l| valid_label(l));
        let holder = p
            .versions
            .iter()
            .find(|v| v.version == target)
            .expect("checked");
        let added = good.iter().filter(|l| !holder.labels.contains(l)).count();
        if holder.labels.len() + added > MAX_LABELS {
            return Err(AwsError::new(
                "ParameterVersionLabelLimitExceeded",
                "A parameter version can have maximum 10 labels.Move one or more labels to another version and try again.",
            ));
        }
        for l in &good {
            for v in &mut p.versions {
                if v.version != target {
                    v.labels.retain(|x| x != l);
                }
            }
            let v = p
                .versions
                .iter_mut()
                .find(|v| v.version == target)
                .expect("checked");
            if !v.labels.contains(l) {
                v.labels.push(l.clone());
            }
        }
        Ok(json!({"InvalidLabels": bad, "ParameterVersion": target}))
    }

    fn unlabel_parameter_version(&mut self, body: &Value) -> OpResult {
        let id = required(body, "Name")?;
        if body.get("ParameterVersion").is_none() {
            return Err(AwsError::missing_field("ParameterVersion"));
        }
        let labels = Self::labels_of(body)?;
        let key = self.key_of(id).ok_or_else(not_found)?;
        let p = self.params.get_mut(&key).expect("found by key_of");
        let target = Self::target_version(p, body)?;
        let v = p
            .versions
            .iter_mut()
            .find(|v| v.version == target)
            .expect("checked");
        let (removed, invalid): (Vec<String>, Vec<String>) =
            labels.into_iter().partition(|l| v.labels.contains(l));
        v.labels.retain(|l| !removed.contains(l));
        Ok(json!({"RemovedLabels": removed, "InvalidLabels": invalid}))
    }

    fn describe_parameters(&mut self, ctx: &mut Ctx<'_>, body: &Value) -> OpResult {
        let mut filters: Vec<(String, String, Vec<String>)> = Vec::new();
        for (list, key_name) in [("Filters", "Key"), ("ParameterFilters", "Key")] {
            if let Some(Value::Array(a)) = body.get(list) {
                for f in a {
                    let key = f.get(key_name).and_then(Value::as_str).unwrap_or_default();
                    let option = f
                        .get("Option")
                        .and_then(Value::as_str)
                        .unwrap_or(if key == "Path" { "OneLevel" } else { "Equals" });
                    let values = strings(f, "Values")?.unwrap_or_default();
                    if !["Name", "Type", "KeyId", "Path", "Tier", "DataType"].contains(&key) {
                        return Err(AwsError::new(
                            "InvalidFilterKey",
                            format!("The following filter key is not valid: {key}"),
                        ));
                    }
                    if !["Equals", "BeginsWith", "Contains", "Recursive", "OneLevel"]
                        .contains(&option)
                    {
                        return Err(AwsError::new(
                            "InvalidFilterOption",
                            format!("The following filter option is not valid: {option}"),
                        ));
                    }
                    filters.push((key.to_string(), option.to_string(), values));
                }
            }
        }
        let matches = |p: &Parameter| {
            let v = p.latest();
            filters.iter().all(|(key, option, values)| {
                let field: &str = match key.as_str() {
                    "Name" => &p.name,
                    "Type" => &v.kind,
                    "KeyId" => v.key_id.as_deref().unwrap_or(""),
                    "Tier" => &v.tier,
                    "DataType" => &v.data_type,
                    _ => &p.name,
                };
                values
                    .iter()
                    .any(|want| match (key.as_str(), option.as_str()) {
                        ("Path", "Recursive") => {
                            let dir = want.trim_end_matches('/');
                            p.name.starts_with(&format!("{dir}/"))
                        }
                        ("Path", _) => {
                            let dir = want.trim_end_matches('/');
                            p.name
                                .rsplit_once('/')
                                .is_some_and(|(parent, _)| parent == dir)
                        }
                        (_, "BeginsWith") => field.starts_with(want.as_str()),
                        (_, "Contains") => field.contains(want.as_str()),
                        // A `Name` filter matches with or without the leading `/`.
                        ("Name", _) => {
                            field.trim_start_matches('/') == want.trim_start_matches('/')
                        }
                        _ => field == want,
                    })
            })
        };
        let all: Vec<Value> = self
            .params
            .values()
            .filter(|p| matches(p))
            .map(|p| {
                let v = p.latest();
                let mut m = Map::new();
                m.insert("Name".into(), json!(p.name));
                m.insert(
                    "ARN".into(),
                    json!(parameter_arn(ctx.region, ctx.account, &p.name)),
                );
                m.insert("Type".into(), json!(v.kind));
                if let Some(k) = &v.key_id {
                    m.insert("KeyId".into(), json!(k));
                }
                m.insert("LastModifiedDate".into(), json!(v.modified));
                m.insert("LastModifiedUser".into(), json!(v.modified_user));
                if let Some(d) = &v.description {
                    m.insert("Description".into(), json!(d));
                }
                m.insert("Version".into(), json!(v.version));
                m.insert("Tier".into(), json!(v.tier));
                m.insert("Policies".into(), json!([]));
                m.insert("DataType".into(), json!(v.data_type));
                Value::Object(m)
            })
            .collect();
        let (items, next) = page(&all, body, 50)?;
        let mut out = json!({"Parameters": items});
        if let Some(n) = next {
            out["NextToken"] = json!(n);
        }
        Ok(out)
    }

    fn delete_parameter(&mut self, body: &Value) -> OpResult {
        let id = required(body, "Name")?;
        let key = self.key_of(id).ok_or_else(not_found)?;
        self.params.remove(&key);
        Ok(json!({}))
    }

    fn delete_parameters(&mut self, body: &Value) -> OpResult {
        let names = strings(body, "Names")?.ok_or_else(|| AwsError::missing_field("Names"))?;
        if names.is_empty() || names.len() > 10 {
            return Err(validation(
                "1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1",
            ));
        }
        let mut deleted = Vec::new();
        let mut invalid = Vec::new();
        for n in names {
            match self.key_of(&n) {
                Some(k) => {
                    self.params.remove(&k);
                    deleted.push(n);
                }
                None => invalid.push(n),
            }
        }
        Ok(json!({"DeletedParameters": deleted, "InvalidParameters": invalid}))
    }

    /// Resolves an ECS `valueFrom` that names a parameter (its name, or its ARN in this
    /// region and account) as the ECS agent does at task launch: the latest version, with
    /// decryption. `Err` is the text after `unable to retrieve secrets from ssm: ` in ECS's
    /// stoppedReason. ECS refuses selectors at registration; here they are simply not found.
    pub fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String> {
        let invalid =
            || format!("service call has been retried 1 time(s): invalid parameters: {value_from}");
        let p = if value_from.starts_with("arn:") {
            let parts: Vec<&str> = value_from.splitn(6, ':').collect();
            if parts.len() != 6 || parts[2] != "ssm" || parts[3] != region || parts[4] != account {
                return Err(invalid());
            }
            self.find(value_from)
        } else if value_from.contains(':') {
            None
        } else {
            self.params.get(value_from)
        };
        let p = p.ok_or_else(invalid)?;
        let v = p.latest();
        Ok(Resolved {
            secret_arn: parameter_arn(region, account, &p.name),
            name: p.name.clone(),
            version_id: v.version.to_string(),
            json_key: None,
            value: v.value.0.clone(),
        })
    }

    /// State as JSON, without values: every parameter with its versions' numbers, labels,
    /// writers and dates.
    pub fn snapshot(&self, region: &str, account: &str) -> Value {
        Value::Array(
            self.params
                .values()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "arn": parameter_arn(region, account, &p.name),
                        "versions": p.versions.iter().map(|v| json!({
                            "version": v.version,
                            "type": v.kind,
                            "key_id": v.key_id,
                            "tier": v.tier,
                            "data_type": v.data_type,
                            "labels": v.labels,
                            "modified": v.modified,
                            "modified_user": v.modified_user,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        )
    }
}

/// What ECS reads at task launch: Secrets Manager secrets (directly or through
/// `/aws/reference/secretsmanager/`) and Parameter Store parameters.
pub struct Sources<'a> {
    /// Secrets Manager.
    pub secrets: &'a SecretsStore,
    /// Parameter Store.
    pub parameters: &'a ParameterStore,
}

impl SecretSource for Sources<'_> {
    fn resolve_for_ecs(
        &self,
        value_from: &str,
        region: &str,
        account: &str,
    ) -> Result<Resolved, String> {
        if is_parameter_reference(value_from) {
            self.parameters.resolve_for_ecs(value_from, region, account)
        } else {
            self.secrets.resolve_for_ecs(value_from, region, account)
        }
    }
}

/// Whether an ECS `valueFrom` is read from Parameter Store as a plain parameter (not a
/// Secrets Manager secret, directly or through `/aws/reference/secretsmanager/`).
pub fn is_parameter_reference(value_from: &str) -> bool {
    if value_from.contains("/aws/reference/secretsmanager/") {
        return false;
    }
    match value_from.strip_prefix("arn:") {
        Some(rest) => rest.split(':').nth(1) == Some("ssm"),
        None => true,
    }
}

/// Whether ECS accepts a parameter `valueFrom` at registration: a name (or an ARN's
/// `parameter/...` path) of letters, digits and `_.-/`, so never `name:version` or
/// `name:label`.
pub fn valid_reference(value_from: &str) -> bool {
    let name = match value_from.strip_prefix("arn:") {
        Some(rest) => match rest
            .splitn(5, ':')
            .nth(4)
            .and_then(|r| r.strip_prefix("parameter"))
        {
            Some(path) => path,
            None => return false,
        },
        None => value_from,
    };
    !name.is_empty()
        && name.len() <= 2048
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_.-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const REGION: &str = "eu-west-1";
    const ACCOUNT: &str = "123456789012";
    const ME: &str = "arn:aws:iam::123456789012:user/alice";

    fn call(store: &mut ParameterStore, op: &str, body: Value) -> OpResult {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut ctx = Ctx {
            now: 1_700_000_000.0,
            region: REGION,
            account: ACCOUNT,
            rng: &mut rng,
        };
        store.handle(&mut ctx, ME, op, &body)
    }

    fn put(store: &mut ParameterStore, name: &str, value: &str) -> u64 {
        let out = call(
            store,
            "PutParameter",
            json!({"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true}),
        )
        .unwrap();
        out["Version"].as_u64().unwrap()
    }

    #[test]
    fn versions_count_up_and_need_overwrite() {
        let mut s = ParameterStore::default();
        assert_eq!(put(&mut s, "/p/db", "a"), 1);
        assert_eq!(put(&mut s, "/p/db", "b"), 2);
        let e = call(
            &mut s,
            "PutParameter",
            json!({"Name": "/p/db", "Value": "c", "Type": "SecureString"}),
        )
        .unwrap_err();
        assert_eq!(e.code, "ParameterAlreadyExists");
        assert_eq!(s.find("/p/db").unwrap().versions.len(), 2);
    }

    #[test]
    fn selectors_and_arns() {
        let mut s = ParameterStore::default();
        put(&mut s, "/p/db", "a");
        put(&mut s, "/p/db", "b");
        put(&mut s, "plain", "x");
        let r = call(
            &mut s,
            "LabelParameterVersion",
            json!({"Name": "/p/db", "ParameterVersion": 1, "Labels": ["old", "1bad", "awsx", "ok"]}),
        )
        .unwrap();
        assert_eq!(r["InvalidLabels"], json!(["1bad", "awsx"]));
        let get = |s: &mut ParameterStore, n: &str| {
            call(
                s,
                "GetParameter",
                json!({"Name": n, "WithDecryption": true}),
            )
        };
        assert_eq!(get(&mut s, "/p/db").unwrap()["Parameter"]["Value"], "b");
        assert_eq!(get(&mut s, "/p/db:1").unwrap()["Parameter"]["Value"], "a");
        assert_eq!(
            get(&mut s, "/p/db:old").unwrap()["Parameter"]["Selector"],
            ":old"
        );
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/p/db";
        assert_eq!(
            get(&mut s, &format!("{arn}:1")).unwrap()["Parameter"]["Version"],
            1
        );
        assert_eq!(
            get(&mut s, "arn:aws:ssm:eu-west-1:123456789012:parameter/plain").unwrap()["Parameter"]
                ["Name"],
            "plain"
        );
        assert_eq!(
            get(&mut s, "/p/db:7").unwrap_err().code,
            "ParameterVersionNotFound"
        );
        assert_eq!(
            get(&mut s, "/p/nope").unwrap_err().code,
            "ParameterNotFound"
        );
        // Without decryption a SecureString is not its value.
        let enc = call(&mut s, "GetParameter", json!({"Name": "/p/db"})).unwrap();
        assert_ne!(enc["Parameter"]["Value"], "b");
    }

    #[test]
    fn a_label_on_the_oldest_of_100_blocks_writes() {
        let mut s = ParameterStore::default();
        for i in 0..100 {
            put(&mut s, "/p/db", &format!("v{i}"));
        }
        // Unlabelled: the 101st write drops version 1.
        assert_eq!(put(&mut s, "/p/db", "v100"), 101);
        let p = s.find("/p/db").unwrap();
        assert_eq!(p.versions.len(), 100);
        assert_eq!(p.versions[0].version, 2);
        call(
            &mut s,
            "LabelParameterVersion",
            json!({"Name": "/p/db", "ParameterVersion": 2, "Labels": ["keep"]}),
        )
        .unwrap();
        let e = call(
            &mut s,
            "PutParameter",
            json!({"Name": "/p/db", "Value": "x", "Overwrite": true}),
        )
        .unwrap_err();
        assert_eq!(e.code, "ParameterMaxVersionLimitExceeded");
        assert_eq!(s.find("/p/db").unwrap().latest().version, 101);
    }

    #[test]
    fn overwrite_without_key_id_falls_back_to_the_default_key_and_tiers_hold() {
        let mut s = ParameterStore::default();
        call(
            &mut s,
            "PutParameter",
            json!({"Name": "/p/k", "Value": "a", "Type": "SecureString", "KeyId": "alias/mine", "Tier": "Advanced"}),
        )
        .unwrap();
        call(
            &mut s,
            "PutParameter",
            json!({"Name": "/p/k", "Value": "b", "Overwrite": true}),
        )
        .unwrap();
        let v = s.find("/p/k").unwrap().latest();
        assert_eq!(v.key_id.as_deref(), Some(DEFAULT_KEY));
        assert_eq!(v.tier, "Advanced");
        let big = "x".repeat(STANDARD_MAX + 1);
        let e = call(
            &mut s,
            "PutParameter",
            json!({"Name": "/p/s", "Value": big, "Type": "SecureString"}),
        )
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(s.find("/p/s").is_none());
    }

    #[test]
    fn ecs_reads_the_latest_by_name_or_arn() {
        let mut s = ParameterStore::default();
        put(&mut s, "/p/db", "a");
        put(&mut s, "/p/db", "b");
        let r = s.resolve_for_ecs("/p/db", REGION, ACCOUNT).unwrap();
        assert_eq!((r.version_id.as_str(), r.value.as_str()), ("2", "b"));
        let arn = "arn:aws:ssm:eu-west-1:123456789012:parameter/p/db";
        assert_eq!(
            s.resolve_for_ecs(arn, REGION, ACCOUNT).unwrap().version_id,
            "2"
        );
        let e = s.resolve_for_ecs("/p/none", REGION, ACCOUNT).unwrap_err();
        assert_eq!(
            e,
            "service call has been retried 1 time(s): invalid parameters: /p/none"
        );
        assert!(s.resolve_for_ecs("/p/db:1", REGION, ACCOUNT).is_err());
        assert!(valid_reference("/p/db") && valid_reference(arn));
        assert!(!valid_reference("/p/db:1") && !valid_reference(&format!("{arn}:label")));
        assert!(is_parameter_reference("/p/db"));
        assert!(is_parameter_reference(arn));
        assert!(!is_parameter_reference("/aws/reference/secretsmanager/x"));
        assert!(!is_parameter_reference(
            "arn:aws:secretsmanager:eu-west-1:1:secret:x-AbCdEf"
        ));
        let debug = format!("{:?}", s.find("/p/db").unwrap());
        assert!(!debug.contains("\"b\""), "Debug shows no value: {debug}");
    }
}
