//! Parameter Store calls, answering in the observations of [`crate::parameter`]. Values
//! travel only as [`SecretValue`] and never reach an error or a log: the SDK's errors
//! carry AWS's code and message, never the request or response body.

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_sdk_ssm::Client;

use super::errors::{AwsError, Fault};
use crate::parameter::{HistoryEntry, WriteSpec};
use crate::value::SecretValue;

/// A parameter as `GetParameterHistory` shows it: every kept version (no values), and what
/// an overwrite must send again.
#[derive(Debug, Clone, PartialEq)]
pub struct ParameterInfo {
    /// The name Parameter Store answers with.
    pub name: String,
    /// The parameter's ARN (from `GetParameter`).
    pub arn: String,
    /// Kept versions, oldest first.
    pub history: Vec<HistoryEntry>,
    /// The latest version's type, key, tier and data type.
    pub spec: WriteSpec,
}

impl ParameterInfo {
    /// The latest version's number and `LastModifiedDate`.
    pub fn latest(&self) -> Option<(u64, f64)> {
        self.history.last().map(|h| (h.version, h.modified))
    }
}

fn epoch(t: Option<&aws_smithy_types::DateTime>) -> f64 {
    t.map(|t| t.as_secs_f64()).unwrap_or(0.0)
}

fn version(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// GetParameterHistory without decryption, every page: the versions and the latest one's
/// write spec. `id` is a name or an ARN.
pub async fn describe(ssm: &Client, id: &str) -> Result<ParameterInfo, AwsError> {
    let mut history = Vec::new();
    let mut name = None;
    let mut spec = None;
    let mut token = None;
    loop {
        let page = ssm
            .get_parameter_history()
            .name(id)
            .with_decryption(false)
            .max_results(50)
            .set_next_token(token)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("GetParameterHistory", "GetParameterHistory", e, |e| {
                    e.is_parameter_not_found().then_some(Fault::NotFound)
                })
            })?;
        for p in page.parameters() {
            name = p.name().map(str::to_string).or(name);
            spec = Some(WriteSpec {
                kind: p
                    .r#type()
                    .map_or("SecureString", ParameterType::as_str)
                    .to_string(),
                key_id: p.key_id().map(str::to_string),
                tier: p
                    .tier()
                    .map_or("Standard", ParameterTier::as_str)
                    .to_string(),
                data_type: p.data_type().unwrap_or("text").to_string(),
            });
            history.push(HistoryEntry {
                version: version(p.version()),
                modified: epoch(p.last_modified_date()),
                user: p.last_modified_user().map(str::to_string),
                labels: p.labels().to_vec(),
            });
        }
        token = page
            .next_token()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    history.sort_by_key(|h| h.version);
    let spec = spec.ok_or_else(|| {
        AwsError::answer(
            "GetParameterHistory",
            format!("GetParameterHistory of {id} listed no version"),
        )
    })?;
    let name = name.unwrap_or_else(|| id.to_string());
    let arn = ssm
        .get_parameter()
        .name(&name)
        .with_decryption(false)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("GetParameter", "GetParameter", e, |e| {
                e.is_parameter_not_found().then_some(Fault::NotFound)
            })
        })?
        .parameter()
        .and_then(|p| p.arn())
        .map(str::to_string)
        .ok_or_else(|| {
            AwsError::answer("GetParameter", format!("GetParameter of {id} gave no ARN"))
        })?;
    Ok(ParameterInfo {
        name,
        arn,
        history,
        spec,
    })
}

/// GetParameter without decryption: the latest version's number and `LastModifiedDate`
/// (the proof's look; it needs no `kms:Decrypt`). `None` when the parameter is gone.
pub async fn latest(ssm: &Client, id: &str) -> Result<Option<(u64, f64)>, AwsError> {
    match ssm
        .get_parameter()
        .name(id)
        .with_decryption(false)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .parameter()
            .map(|p| (version(p.version()), epoch(p.last_modified_date())))),
        Err(e) => {
            let err = AwsError::from_sdk("GetParameter", "GetParameter", e, |e| {
                e.is_parameter_not_found().then_some(Fault::NotFound)
            });
            if err.fault == Fault::NotFound {
                Ok(None)
            } else {
                Err(err)
            }
        }
    }
}

/// GetParameter of one version, decrypted (for a restore or `--json-key` only).
pub async fn value(ssm: &Client, name: &str, version: u64) -> Result<SecretValue, AwsError> {
    let out = ssm
        .get_parameter()
        .name(format!("{name}:{version}"))
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("GetParameter", "GetParameter", e, |e| {
                (e.is_parameter_not_found() || e.is_parameter_version_not_found())
                    .then_some(Fault::NotFound)
            })
        })?;
    out.parameter()
        .and_then(|p| p.value())
        .map(|v| SecretValue::new(v.to_string()))
        .ok_or_else(|| {
            AwsError::answer(
                "GetParameter",
                format!("GetParameter of {name}:{version} returned no value"),
            )
        })
}

/// PutParameter with `Overwrite`, sending the parameter's type, KMS key, tier and data type
/// again (without `KeyId` AWS would switch to the account's default key). There is no
/// request token, so this call is made once, without the SDK's retries: the caller
/// journals its intent first and, after any failure, asks the history
/// ([`crate::parameter::resolve_written`]) rather than writing again. Returns the new
/// version.
pub async fn put(
    ssm: &Client,
    name: &str,
    spec: &WriteSpec,
    value: &SecretValue,
) -> Result<u64, AwsError> {
    let out = ssm
        .put_parameter()
        .name(name)
        .value(value.expose())
        .r#type(ParameterType::from(spec.kind.as_str()))
        .set_key_id(spec.key_id.clone())
        .tier(ParameterTier::from(spec.tier.as_str()))
        .data_type(&spec.data_type)
        .overwrite(true)
        // No retry by the SDK either: a retried write that AWS had already accepted would
        // make a second version. The caller resolves a failed write from the history.
        .customize()
        .config_override(
            aws_sdk_ssm::config::Builder::default()
                .retry_config(aws_sdk_ssm::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
        .map_err(|e| {
            AwsError::from_sdk("PutParameter", "PutParameter", e, |e| {
                e.is_parameter_max_version_limit_exceeded()
                    .then_some(Fault::Rejected)
            })
        })?;
    Ok(version(out.version()))
}
